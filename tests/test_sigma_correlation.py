"""Sigma correlation rules over real case files: each type fires on its fixture and stays quiet on its twin.

Fixtures: tests/data/sigma/correlation/rules (base rules + one correlation per file) and events/
(evtx_dump-style JSONL, one scenario per file; source_ref is "line N").
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gridhunt.case import Case
from gridhunt.hunt import hunt
from gridhunt.ingest import ingest_paths
from gridhunt.report.findings import Finding, read_jsonl
from gridhunt.sigma.correlation import DETECTOR, base_rules_used, run_correlations
from gridhunt.sigma.ruleset import CorrelationSpec, RuleSet, Skipped, load_rules
from gridhunt.sigma.runner import run_rules

DATA = Path(__file__).parent / "data" / "sigma" / "correlation"
RULES = DATA / "rules"
EVENTS = DATA / "events"
FAILED_LOGON = "5a1b0f2e-4c6d-4e8f-9a01-000000004625"
SUCCESSFUL_LOGON = "5a1b0f2e-4c6d-4e8f-9a01-000000004624"


def load(*files: str) -> RuleSet:
    rs = load_rules([RULES / "base.yml", *(RULES / f for f in files)], use_cache=False)
    return rs


def correlate(
    tmp_path: Path, events: str, *files: str, correlations: list[CorrelationSpec] | None = None
) -> tuple[list[Finding], list[Skipped]]:
    rs = load(*files)
    with Case.open(tmp_path / "case.duckdb") as case:
        report = ingest_paths(case, [EVENTS / events])
        assert report.files_skipped == 0 and report.records_bad == 0
        run_rules(case, rs.rules)
        return run_correlations(case, rs.rules, rs.correlations if correlations is None else correlations)


def refs(f: Finding) -> list[str]:
    return [e["source_ref"] for e in f.evidence]


def at(hms: str) -> datetime:
    return datetime.fromisoformat(f"2024-03-05T{hms}+00:00").astimezone(UTC)


def by_title(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.title, []).append(f)
    return out


# -- event_count ---------------------------------------------------------------------------------


def test_event_count_burst_fires_once(tmp_path: Path) -> None:
    findings, skipped = correlate(tmp_path, "event_count_pos.jsonl", "event_count.yml")
    assert skipped == []
    # alice: 6 failures 10:00-10:05 (two firing windows, merged); her 12:00 failure and bob's 2 stay out
    [f] = findings
    assert f.detector == DETECTOR
    assert f.rule_id == "0c7e1a52-1d3b-4f43-9a6e-2b1f7d000001"
    assert f.entity == "TargetUserName=alice"
    assert f.count == 6
    assert refs(f) == ["line 1", "line 2", "line 4", "line 5", "line 6", "line 7"]
    assert all(set(e) == {"source_file", "source_ref", "ts", "event_uid"} for e in f.evidence)
    assert Path(f.evidence[0]["source_file"]).name == "event_count_pos.jsonl"
    assert (f.ts_first, f.ts_last) == (at("10:00:00"), at("10:05:00"))
    assert f.severity == "medium" and f.attack == ["T1110"]
    d = f.details
    assert d["type"] == "event_count"
    assert d["group_by"] == {"TargetUserName": "alice"}
    assert d["value"] == d["event_count"] == 6  # the first window that fired held all six
    assert d["condition"] == {"gte": 5} and d["timespan_seconds"] == 600
    assert d["window"] == {"start": "2024-03-05T10:00:00Z", "end": "2024-03-05T10:11:00Z"}
    assert d["rules"] == [
        {"reference": "failed_logon", "rule_id": FAILED_LOGON, "correlation": False, "occurrences": 6}
    ]
    assert d["rule"] == {
        "author": "gridhunt tests",
        "references": ["https://github.com/SigmaHQ/sigma-specification"],
        "rule_path": str(RULES / "event_count.yml"),
    }


def test_event_count_same_failures_spread_over_two_hours_stay_quiet(tmp_path: Path) -> None:
    assert correlate(tmp_path, "event_count_neg.jsonl", "event_count.yml") == ([], [])


# -- value_count ---------------------------------------------------------------------------------


def test_value_count_password_spray_fires(tmp_path: Path) -> None:
    findings, skipped = correlate(tmp_path, "value_count_pos.jsonl", "value_count.yml")
    assert skipped == []
    [f] = findings  # 10.1.1.5 tried one account twice: quiet
    assert f.entity == "IpAddress=10.9.9.66"
    assert f.count == 5  # u.adams twice; u.frank at 10:30 is outside the window
    assert refs(f) == ["line 1", "line 2", "line 3", "line 4", "line 5"]
    assert f.severity == "high" and f.attack == ["T1110.003"]
    d = f.details
    assert d["value"] == d["distinct_count"] == 4
    assert d["field"] == "TargetUserName"
    assert d["values"] == ["u.adams", "u.baker", "u.clark", "u.davis"]
    assert d["condition"] == {"field": "TargetUserName", "gte": 4}


def test_value_count_many_tries_on_one_account_stay_quiet(tmp_path: Path) -> None:
    assert correlate(tmp_path, "value_count_neg.jsonl", "value_count.yml") == ([], [])


# -- temporal ------------------------------------------------------------------------------------


def test_temporal_fires_in_any_order(tmp_path: Path) -> None:
    findings, skipped = correlate(tmp_path, "temporal_pos.jsonl", "temporal.yml")
    assert skipped == []
    [f] = findings  # carol's success came 20 minutes after her failure: quiet
    assert f.entity == "TargetUserName=bob"
    assert f.count == 2
    assert refs(f) == ["line 1", "line 2"]  # the success (line 1) came first
    assert f.details["rules_matched"] == 2
    assert f.details["condition"] == {"gte": 2}
    assert [r["occurrences"] for r in f.details["rules"]] == [1, 1]


def test_temporal_too_far_apart_stays_quiet(tmp_path: Path) -> None:
    assert correlate(tmp_path, "temporal_neg.jsonl", "temporal.yml") == ([], [])


# -- temporal_ordered ----------------------------------------------------------------------------


def test_temporal_ordered_failures_then_success_fires(tmp_path: Path) -> None:
    findings, skipped = correlate(tmp_path, "ordered_pos.jsonl", "temporal_ordered.yml")
    assert skipped == []
    [f] = findings
    assert f.entity == "TargetUserName=dave"
    assert f.count == 3
    assert refs(f) == ["line 1", "line 2", "line 3"]
    assert f.severity == "high"
    # the window runs from the first failure to the success that completes the sequence
    assert f.details["window"] == {"start": "2024-03-05T10:00:00Z", "end": "2024-03-05T10:02:00Z"}


def test_temporal_ordered_reversed_stays_quiet_while_unordered_fires(tmp_path: Path) -> None:
    findings, skipped = correlate(tmp_path, "ordered_neg.jsonl", "temporal_ordered.yml", "temporal.yml")
    assert skipped == []
    [f] = findings
    assert f.rule_id == "0c7e1a52-1d3b-4f43-9a6e-2b1f7d000003"  # only the unordered twin
    assert f.entity == "TargetUserName=dave" and f.count == 3


# -- aliases, chaining ---------------------------------------------------------------------------


def test_group_by_alias_joins_different_field_names(tmp_path: Path) -> None:
    findings, skipped = correlate(tmp_path, "alias_pos.jsonl", "aliases.yml")
    assert skipped == []
    [f] = findings  # failed_logon.TargetUserName == special_privileges.SubjectUserName; SYSTEM's 4672 is out
    assert f.entity == "user=erin, Computer=dc01"
    assert f.details["group_by"] == {"user": "erin", "Computer": "dc01"}
    assert refs(f) == ["line 1", "line 2"]


def test_group_by_alias_other_host_stays_quiet(tmp_path: Path) -> None:
    assert correlate(tmp_path, "alias_neg.jsonl", "aliases.yml") == ([], [])


def test_chained_correlation(tmp_path: Path) -> None:
    rs = load("chain.yml", "temporal_ordered.yml")
    with Case.open(tmp_path / "case.duckdb") as case:
        ingest_paths(case, [EVENTS / "chain.jsonl"])
        run_rules(case, rs.rules)
        findings, skipped = run_correlations(case, rs.rules, rs.correlations)
        again = run_correlations(case, rs.rules, rs.correlations)
    assert skipped == []
    assert [f.to_dict() for f in again[0]] == [f.to_dict() for f in findings]  # deterministic
    got = by_title(findings)
    # the inner event_count has generate: false (the default), so only the outer one reports
    assert "Multiple failed logons" not in got
    [chained] = got["Correlation - multiple failed logons followed by a successful logon"]
    assert chained.entity == "TargetUserName=hank"  # ivan failed once only: the plain rule fires, this not
    assert chained.count == 4
    assert refs(chained) == ["line 1", "line 2", "line 3", "line 4"]
    assert chained.severity == "critical"
    assert [(r["reference"], r["correlation"]) for r in chained.details["rules"]] == [
        ("many_failed_logons", True),
        ("successful_logon", False),
    ]
    plain = got["Failed logons followed by a successful logon"]
    assert sorted(f.entity for f in plain) == ["TargetUserName=hank", "TargetUserName=ivan"]


# -- what cannot run is skipped with a reason; the rest still runs -------------------------------


def test_bad_correlations_are_skipped_and_the_rest_runs(tmp_path: Path) -> None:
    rs = load("bad_reference.yml", "bad_timespan.yml", "event_count.yml")
    # the unreadable timespan is refused when the rules load
    [bad_ts] = rs.skipped
    assert bad_ts.path.endswith("bad_timespan.yml") and "Timespan '10 minutes' is invalid" in bad_ts.reason
    findings, skipped = correlate(tmp_path, "event_count_pos.jsonl", "bad_reference.yml", "event_count.yml")
    assert [(Path(s.path).name, s.rule, s.reason) for s in skipped] == [
        ("bad_reference.yml", "0c7e1a52-1d3b-4f43-9a6e-2b1f7d0000b1", "references unknown rule no_such_rule")
    ]
    [f] = findings
    assert f.entity == "TargetUserName=alice" and f.count == 6


def test_specs_that_cannot_run_say_why(tmp_path: Path) -> None:
    rs = load("event_count.yml", "value_count.yml", "aliases.yml")
    ec = next(c for c in rs.correlations if c.type == "event_count")
    vc = next(c for c in rs.correlations if c.type == "value_count")
    al = next(c for c in rs.correlations if c.aliases)
    bad = [
        dataclasses.replace(ec, rule_id="zero-span", timespan_seconds=0),
        dataclasses.replace(ec, rule_id="odd-type", type="sequence"),
        dataclasses.replace(ec, rule_id="no-cond", condition={}),
        dataclasses.replace(ec, rule_id="bad-op", condition={"above": 3}),
        dataclasses.replace(vc, rule_id="no-field", condition={"gte": 4}),
        dataclasses.replace(al, rule_id="alias-gap", aliases={"user": {"failed_logon": "TargetUserName"}}),
        dataclasses.replace(al, rule_id="expr", condition={"expression": "failed_logon and special_privileges"}),
        dataclasses.replace(ec, rule_id="loop-a", name="loop_a", rules=["loop_b"]),
        dataclasses.replace(ec, rule_id="loop-b", name="loop_b", rules=["loop_a"]),
        dataclasses.replace(ec, rule_id="on-loop", rules=["loop_a"]),
        ec,
    ]
    findings, skipped = correlate(tmp_path, "event_count_pos.jsonl", "event_count.yml", correlations=bad)
    reasons = {s.rule: s.reason for s in skipped}
    assert reasons == {
        "zero-span": "bad timespan (0 s): must be a positive number of s, m, h or d",
        "odd-type": "unsupported correlation type 'sequence'",
        "no-cond": "event_count needs a condition (gt, gte, lt, lte, eq or neq)",
        "bad-op": "unknown condition operator 'above'",
        "no-field": "value_count needs condition.field",
        "alias-gap": "alias user names no field for rule special_privileges",
        "expr": "extended (string) conditions are not supported: 'failed_logon and special_privileges'",
        "loop-a": "correlation chain loops back on itself",
        "loop-b": "correlation chain loops back on itself",
        "on-loop": "references correlation loop_a, which was skipped",
    }
    assert [f.rule_id for f in findings] == [ec.rule_id]


def test_conditions_other_than_gte(tmp_path: Path) -> None:
    rs = load("event_count.yml")
    ec = rs.correlations[0]
    specs = [
        dataclasses.replace(ec, rule_id="exactly-two", condition={"eq": 2}),  # bob: 2 failures within 10m
        dataclasses.replace(ec, rule_id="range", condition={"gt": 5, "lte": 6}),
        dataclasses.replace(ec, rule_id="not-one", condition={"neq": 1, "lt": 3}),
    ]
    findings, skipped = correlate(tmp_path, "event_count_pos.jsonl", "event_count.yml", correlations=specs)
    assert skipped == []
    got = sorted((f.rule_id, f.entity, f.count) for f in findings)
    # windows anchored at each failure: alice's at 10:00 holds 6, at 10:04 holds 2 (10:04, 10:05); bob's holds 2
    assert got == [
        ("exactly-two", "TargetUserName=alice", 2),
        ("exactly-two", "TargetUserName=bob", 2),
        ("not-one", "TargetUserName=alice", 2),
        ("not-one", "TargetUserName=bob", 2),
        ("range", "TargetUserName=alice", 6),
    ]


def test_no_group_by_makes_the_whole_case_one_group(tmp_path: Path) -> None:
    ec = load("event_count.yml").correlations[0]
    spec = dataclasses.replace(ec, group_by=[])
    findings, skipped = correlate(tmp_path, "event_count_pos.jsonl", "event_count.yml", correlations=[spec])
    assert skipped == []
    [f] = findings  # bob's failures now count with alice's; the 12:00 failure stays alone
    assert f.entity == "" and f.details["group_by"] == {}
    assert refs(f) == [f"line {n}" for n in range(1, 9)]


def test_base_rules_used() -> None:
    rs = load("event_count.yml", "temporal.yml", "bad_reference.yml")
    needed, hidden = base_rules_used(rs.rules, rs.correlations)
    assert needed == hidden == {FAILED_LOGON, SUCCESSFUL_LOGON}
    rs = load("event_count_generate.yml")
    assert base_rules_used(rs.rules, rs.correlations) == ({FAILED_LOGON}, set())


# -- end to end ----------------------------------------------------------------------------------


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRIDHUNT_CACHE", str(tmp_path / "cache"))  # keep the rule cache out of $HOME
    return tmp_path / "cache"


def test_hunt_end_to_end(tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "out"
    rules = [RULES / "base.yml", RULES / "event_count.yml", RULES / "bad_reference.yml", RULES / "bad_timespan.yml"]
    result = hunt([EVENTS / "event_count_pos.jsonl"], rule_paths=rules, out_dir=out)
    rows = read_jsonl(out / "findings.jsonl")
    corr = [r for r in rows if r["detector"] == DETECTOR]
    [c] = corr
    assert c["entity"] == "TargetUserName=alice" and c["count"] == 6
    assert [e["source_ref"] for e in c["evidence"]] == ["line 1", "line 2", "line 4", "line 5", "line 6", "line 7"]
    assert c["ts_first"] == "2024-03-05T10:00:00Z" and c["ts_last"] == "2024-03-05T10:05:00Z"
    assert c["details"]["event_count"] == 6
    # failed_logon feeds a correlation with generate: false: no findings of its own; successful_logon does
    sigma = [(r["rule_id"], r["count"]) for r in rows if r["detector"] == "sigma"]
    assert sigma == [(SUCCESSFUL_LOGON, 1)]
    assert [f.finding_id for f in result.findings] == [r["finding_id"] for r in rows]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rules"]["correlation_rules_run"] == 1
    assert summary["rules"]["correlation_rules_skipped"] == 1
    assert summary["rules"]["correlation_skipped"][0]["reason"] == "references unknown rule no_such_rule"
    assert any("bad_timespan.yml" in s["path"] for s in summary["rules"]["skipped"])
    assert summary["findings"]["total"] == 2


def test_hunt_generate_true_keeps_base_findings(tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "out"
    hunt(
        [EVENTS / "event_count_pos.jsonl"],
        rule_paths=[RULES / "base.yml", RULES / "event_count_generate.yml"],
        out_dir=out,
    )
    rows = read_jsonl(out / "findings.jsonl")
    assert sorted((r["detector"], r["rule_id"], r["count"]) for r in rows) == [
        ("sigma", SUCCESSFUL_LOGON, 1),
        ("sigma", FAILED_LOGON, 9),
        ("sigma-correlation", "0c7e1a52-1d3b-4f43-9a6e-2b1f7d000011", 6),
    ]


def test_hunt_min_level_still_feeds_correlations_their_low_rules(tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "out"
    hunt(
        [EVENTS / "value_count_pos.jsonl"],
        rule_paths=[RULES / "base.yml", RULES / "value_count.yml", RULES / "event_count.yml"],
        out_dir=out,
        min_level="high",
    )
    rows = read_jsonl(out / "findings.jsonl")
    # failed_logon is low, yet the high value_count correlation over it fires; nothing below high shows
    assert [(r["detector"], r["entity"], r["count"]) for r in rows] == [(DETECTOR, "IpAddress=10.9.9.66", 5)]
