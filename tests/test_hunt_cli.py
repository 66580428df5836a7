"""`gridhunt hunt` and `gridhunt rules check` end to end, through the real command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridhunt.cli import app
from gridhunt.report.findings import read_jsonl
from tests.conftest import SHARED

RUNNER = CliRunner()
REG = SHARED / "sigma" / "regression_data" / "rules" / "windows" / "process_creation"


def _entry(name: str) -> dict:
    index = json.loads((SHARED / "sigma" / "regression_index.json").read_text())
    return next(e for e in index if e["rule_path"].endswith(name))


def test_hunt_writes_findings_and_summary(tmp_path: Path, shared: Path) -> None:
    e = _entry("proc_creation_win_sc_stop_service.yml")
    evtx = shared / "sigma" / e["evtx_path"]
    out = tmp_path / "out"
    case = tmp_path / "new" / "dir" / "c.duckdb"  # a folder that does not exist yet
    res = RUNNER.invoke(app, ["hunt", str(evtx), "--out", str(out), "--case", str(case)])
    assert res.exit_code == 0, res.output
    findings = read_jsonl(out / "findings.jsonl")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rules"]["rules_converted"] >= 2872
    assert summary["ingest"]["files_read"] == 1
    hit = [f for f in findings if f["rule_id"] == e["rule_id"]]
    assert hit and sum(f["count"] for f in hit) >= (e["match_count"] or 1)
    for f in findings:  # the findings contract
        assert set(f) >= {
            "finding_id",
            "detector",
            "rule_id",
            "title",
            "severity",
            "attack",
            "entity",
            "ts_first",
            "ts_last",
            "count",
            "evidence",
        }
        assert f["evidence"] and all({"source_file", "source_ref"} <= set(ev) for ev in f["evidence"])
        assert f["details"]["rule"]["author"]  # DRL attribution travels with each finding
    assert "findings" in res.output and "rules converted" in res.output
    assert case.exists()


def test_count_sums_to_matching_events_and_order_is_stable(tmp_path: Path, shared: Path) -> None:
    samples = shared / "evtx-samples"
    files = [samples / "security.evtx", samples / "new-user-security.evtx", samples / "sysmon.evtx"]
    runs = []
    for i in range(2):
        out = tmp_path / f"out{i}"
        res = RUNNER.invoke(app, ["hunt", *map(str, files), "--out", str(out), "--case", str(tmp_path / f"{i}.duckdb")])
        assert res.exit_code == 0, res.output
        runs.append((out / "findings.jsonl").read_bytes())
    assert runs[0] == runs[1]  # same inputs → same findings in the same order
    import duckdb

    con = duckdb.connect(str(tmp_path / "0.duckdb"), read_only=True)
    per_rule = dict(
        con.execute(
            "SELECT r.rule_id, count(*) FROM sigma_matches m JOIN sigma_rules r USING (rule_idx) GROUP BY 1"
        ).fetchall()
    )
    # base rules that only feed correlations (generate: false) match events but show no findings
    from gridhunt.sigma.correlation import base_rules_used
    from gridhunt.sigma.ruleset import load_rules, packaged_rule_dirs

    rs = load_rules(packaged_rule_dirs())
    _, hidden = base_rules_used(rs.rules, rs.correlations)
    per_rule = {k: v for k, v in per_rule.items() if k not in hidden}
    summed: dict[str, int] = {}
    for f in read_jsonl(tmp_path / "out0" / "findings.jsonl"):
        if f["detector"] == "sigma":
            summed[f["rule_id"]] = summed.get(f["rule_id"], 0) + f["count"]
    assert summed == per_rule and summed


def test_bad_input_is_reported_and_the_run_goes_on(tmp_path: Path, shared: Path) -> None:
    ev = tmp_path / "evidence"
    ev.mkdir()
    shutil.copy(shared / "evtx-samples" / "new-user-security.evtx", ev / "good.evtx")
    (ev / "not-really.evtx").write_text("this is a text file, not an event log\n")
    (ev / "empty.evtx").write_bytes(b"")
    data = (shared / "evtx-samples" / "security.evtx").read_bytes()
    (ev / "truncated.evtx").write_bytes(data[: 4096 + 65536 + 1000])
    shutil.copy(Path(__file__).parent / "data" / "ingest" / "evtx_dump_bad_line.jsonl", ev / "export.jsonl")
    rules = tmp_path / "rules"
    shutil.copytree(shared / "sigma" / "rules" / "windows" / "builtin" / "security" / "account_management", rules)
    (rules / "broken.yml").write_text("title: broken\ndetection: {sel: [\n")
    out = tmp_path / "out"
    res = RUNNER.invoke(
        app, ["hunt", str(ev), str(tmp_path / "missing-folder"), "--rules", str(rules), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    s = json.loads((out / "summary.json").read_text())
    files = {Path(f["path"]).name: f for f in s["ingest"]["files"]}
    assert files["not-really.evtx"]["skipped_reason"] == "unrecognised format"
    assert files["empty.evtx"]["skipped_reason"] == "empty file"
    assert files["missing-folder"]["skipped_reason"]
    assert files["truncated.evtx"]["records_ok"] > 0 and files["truncated.evtx"]["records_bad"] >= 1
    assert files["export.jsonl"]["records_bad"] == 1 and files["export.jsonl"]["records_ok"] == 3  # + a blank line
    assert files["good.evtx"]["records_ok"] == 4
    assert s["ingest"]["files_skipped"] == 3
    skipped = {Path(x["path"]).name: x["reason"] for x in s["rules"]["skipped"]}
    assert skipped["broken.yml"].startswith("broken YAML")
    out_text = " ".join(res.output.split())
    for needle in (
        "not-really.evtx: skipped: unrecognised format",
        "empty.evtx: skipped: empty file",
        "export.jsonl: line 2",
        "truncated.evtx",
    ):
        assert needle in out_text, needle


def test_rules_check_lists_skips(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("title: broken\ndetection: {sel: [\n")
    res = RUNNER.invoke(app, ["rules", "check", str(tmp_path)])
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "broken.yml: broken YAML" in text and "1 skipped" in text


@pytest.mark.parametrize("args", [["--help"], ["hunt", "--help"], ["demo", "--help"], ["rules", "check", "--help"]])
def test_help_teaches(args: list[str]) -> None:
    res = RUNNER.invoke(app, args)
    assert res.exit_code == 0 and "Usage" in res.output
