"""gridhunt's own Sigma pack (src/gridhunt/rules/gridhunt/): every rule fires on its fixture and stays quiet on
its benign twin, over real case files.

Fixtures: tests/data/rules_gridhunt/*.jsonl, hand-made evtx_dump-style events, one scenario per file (source_ref
is "line N"). Each file is hunted on its own with the pack alone, the way `hunt` runs Sigma: base rules that feed a
correlation with `generate: false` give no findings. EXPECTED lists, per file, every finding the pack gives
(rule name, entity, number of evidence events) and every building-block match, exactly.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.validation import SigmaValidator
from sigma.validators.core import validators

from gridhunt.case import Case
from gridhunt.hunt import hunt
from gridhunt.ingest import ingest_paths
from gridhunt.report.findings import Finding, read_jsonl
from gridhunt.sigma.correlation import base_rules_used, plan_correlations, run_correlations
from gridhunt.sigma.findings import sigma_findings
from gridhunt.sigma.ruleset import LEVELS, RuleSet, load_rules, packaged_rule_dirs
from gridhunt.sigma.runner import match_counts, run_rules

PACK = Path(__file__).resolve().parents[1] / "src" / "gridhunt" / "rules" / "gridhunt"
DATA = Path(__file__).resolve().parent / "data" / "rules_gridhunt"
DC = "dc01.corp.example"
NEW_ADMIN_SID = "S-1-5-21-3623811015-3361044348-30300820-9123"

# fixture → ({(rule name, entity): evidence count} for every pack finding, {building block: matched events})
EXPECTED: dict[str, tuple[dict[tuple[str, str], int], dict[str, int]]] = {
    "logon_spray_pos": (
        {("gh_password_spray_windows", "IpAddress=10.20.30.40, WorkstationName=KALI"): 12},
        {"gh_bb_logon_failure": 14},
    ),
    "logon_spray_neg": ({}, {"gh_bb_logon_failure": 9, "gh_bb_logon_success": 9}),
    "brute_force_pos": (
        {("gh_brute_force_one_account", "TargetUserName=svc_backup"): 12},
        {"gh_bb_logon_failure": 12},
    ),
    "brute_force_neg": ({}, {"gh_bb_logon_failure": 21}),
    "failures_then_success_pos": (
        {("gh_failures_then_success", "TargetUserName=ops.admin"): 7},
        {"gh_bb_logon_failure": 6, "gh_bb_logon_success": 1},
    ),
    "failures_then_success_neg": ({}, {"gh_bb_logon_failure": 18, "gh_bb_logon_success": 4}),
    "lockout_pos": ({("gh_account_lockout_burst", ""): 6}, {"gh_bb_account_lockout": 6}),
    "lockout_neg": ({}, {"gh_bb_account_lockout": 9}),
    "kerberoast_pos": (
        {("gh_kerberoasting_sweep", "TargetUserName=dmiller@CORP.EXAMPLE"): 6},
        {"gh_bb_tgs_rc4_user_service": 6},
    ),
    "kerberoast_neg": ({}, {"gh_bb_tgs_rc4_user_service": 8}),
    "asrep_pos": ({("gh_asrep_roasting_sweep", "IpAddress=::ffff:10.20.30.43"): 3}, {"gh_bb_asrep_no_preauth": 3}),
    "asrep_neg": ({}, {"gh_bb_asrep_no_preauth": 2}),
    "privileged_pos": (
        {
            ("gh_privileged_group_member_added", DC): 2,
            ("gh_new_account_made_privileged", f"NewAccountSid={NEW_ADMIN_SID}"): 3,
        },
        {"gh_bb_user_created": 1, "gh_privileged_group_member_added": 2},
    ),
    "privileged_neg": ({}, {"gh_bb_user_created": 1}),
    # existing staff made Domain Admin; a service account made admin three hours after its creation
    "privileged_slow_or_existing": (
        {("gh_privileged_group_member_added", DC): 2},
        {"gh_bb_user_created": 1, "gh_privileged_group_member_added": 2},
    ),
    "gpo_pos": (
        {("gh_gpo_structure_changed", DC): 1, ("gh_new_account_changes_gpo", "Account=adm-support7"): 2},
        {"gh_bb_user_created": 1, "gh_gpo_structure_changed": 1},
    ),
    # the directory team's planned GPO work; a joiner created that day only bumps versionNumber
    "gpo_existing_admin": (
        {("gh_gpo_structure_changed", DC): 3},
        {"gh_bb_user_created": 1, "gh_gpo_structure_changed": 3},
    ),
    "gpo_neg": ({}, {}),
    "lsass_pos": ({("gh_lsass_suspicious_reader", "fs01.corp.example"): 4}, {"gh_lsass_suspicious_reader": 4}),
    "lsass_neg": ({}, {}),
    "psexec_pos": (
        {
            ("gh_psexec_fanout_targets", "IpAddress=10.20.30.50, SubjectUserName=adm-support7"): 5,
            ("gh_psexec_fanout_client", "Computer=ws17.corp.example"): 3,
        },
        {"gh_bb_psexec_service_installed": 2, "gh_bb_psexec_share_access": 5, "gh_bb_psexec_client": 3},
    ),
    "psexec_neg": (
        {},
        {"gh_bb_psexec_service_installed": 2, "gh_bb_psexec_share_access": 5, "gh_bb_psexec_client": 3},
    ),
    # the window of an ordered sequence ends at the event that completes it: the 104 three seconds later is out
    "log_cleared_after_psexec_pos": (
        {("gh_log_cleared_after_psexec", "Computer=fs01.corp.example"): 2},
        {"gh_bb_psexec_service_installed": 1, "gh_bb_event_log_cleared": 2},
    ),
    "log_clearing_sweep_pos": (
        {("gh_log_clearing_sweep", "SubjectUserName=adm-support7"): 3},
        {"gh_bb_event_log_cleared": 3},
    ),
    "log_clearing_neg": ({}, {"gh_bb_psexec_service_installed": 1, "gh_bb_event_log_cleared": 5}),
    "powershell_pos": (
        {
            ("gh_powershell_encoded_command", "ws17.corp.example"): 4,
            ("gh_powershell_scriptblock_decode_and_run", "ws17.corp.example"): 2,
            ("gh_shell_cmdline_insertion_obfuscation", "ws17.corp.example"): 3,
        },
        {
            "gh_powershell_encoded_command": 4,
            "gh_powershell_scriptblock_decode_and_run": 2,
            "gh_shell_cmdline_insertion_obfuscation": 3,
        },
    ),
    "powershell_neg": ({}, {}),
    # one near miss for every building block: nothing matches
    "near_misses": ({}, {}),
}

# rule name → (fixture it fires on, benign twin it stays quiet on)
TWINS: dict[str, tuple[str, str]] = {
    "gh_bb_logon_failure": ("brute_force_pos", "near_misses"),
    "gh_bb_logon_success": ("failures_then_success_pos", "near_misses"),
    "gh_password_spray_windows": ("logon_spray_pos", "logon_spray_neg"),
    "gh_brute_force_one_account": ("brute_force_pos", "brute_force_neg"),
    "gh_bb_logon_failure_run": ("failures_then_success_pos", "logon_spray_neg"),
    "gh_failures_then_success": ("failures_then_success_pos", "failures_then_success_neg"),
    "gh_bb_account_lockout": ("lockout_pos", "near_misses"),
    "gh_account_lockout_burst": ("lockout_pos", "lockout_neg"),
    "gh_bb_tgs_rc4_user_service": ("kerberoast_pos", "near_misses"),
    "gh_kerberoasting_sweep": ("kerberoast_pos", "kerberoast_neg"),
    "gh_bb_asrep_no_preauth": ("asrep_pos", "near_misses"),
    "gh_asrep_roasting_sweep": ("asrep_pos", "asrep_neg"),
    "gh_bb_user_created": ("privileged_pos", "near_misses"),
    "gh_privileged_group_member_added": ("privileged_pos", "privileged_neg"),
    "gh_bb_privileged_add_by_member": ("privileged_pos", "privileged_neg"),
    "gh_new_account_made_privileged": ("privileged_pos", "privileged_slow_or_existing"),
    "gh_gpo_structure_changed": ("gpo_pos", "gpo_neg"),
    "gh_bb_gpo_change_by_subject": ("gpo_pos", "gpo_neg"),
    "gh_new_account_changes_gpo": ("gpo_pos", "gpo_existing_admin"),
    "gh_lsass_suspicious_reader": ("lsass_pos", "lsass_neg"),
    "gh_bb_psexec_service_installed": ("psexec_pos", "near_misses"),
    "gh_bb_psexec_share_access": ("psexec_pos", "near_misses"),
    "gh_bb_psexec_client": ("psexec_pos", "near_misses"),
    "gh_psexec_fanout_targets": ("psexec_pos", "psexec_neg"),
    "gh_psexec_fanout_client": ("psexec_pos", "psexec_neg"),
    "gh_bb_event_log_cleared": ("log_clearing_sweep_pos", "near_misses"),
    "gh_log_cleared_after_psexec": ("log_cleared_after_psexec_pos", "log_clearing_neg"),
    "gh_log_clearing_sweep": ("log_clearing_sweep_pos", "log_clearing_neg"),
    "gh_powershell_encoded_command": ("powershell_pos", "powershell_neg"),
    "gh_powershell_scriptblock_decode_and_run": ("powershell_pos", "powershell_neg"),
    "gh_shell_cmdline_insertion_obfuscation": ("powershell_pos", "powershell_neg"),
}

TECHNIQUE = re.compile(r"^attack\.t\d{4}(\.\d{3})?$")
# ATT&CK enterprise tactics as Sigma tags (v18 split defense-evasion into stealth and defense-impairment)
TACTICS = {
    "reconnaissance", "resource-development", "initial-access", "execution", "persistence", "privilege-escalation",
    "defense-evasion", "stealth", "defense-impairment", "credential-access", "discovery", "lateral-movement",
    "collection", "command-and-control", "exfiltration", "impact",
}  # fmt: skip
STATUSES = {"stable", "test", "experimental"}
# correlations that only feed another correlation (its generate: false hides their findings)
INNER = {"gh_bb_logon_failure_run", "gh_bb_privileged_add_by_member", "gh_bb_gpo_change_by_subject"}
# pySigma validators that download MITRE data at run time; the rest run offline
ONLINE_VALIDATORS = {"attacktag", "d3_fendtag"}


def _docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for f in sorted(PACK.glob("*.yml")):
        for doc in yaml.safe_load_all(f.read_text(encoding="utf-8")):
            if doc:
                out.append((f.name, doc))
    return out


DOCS = _docs()
DOC_IDS = [str(d["name"]) for _, d in DOCS]


@dataclass
class Outcome:
    findings: dict[tuple[str, str], Finding]  # (rule name, entity) → finding
    matches: dict[str, int]  # building block / base rule name → events matched
    inner: set[str]  # building-block correlations (hidden by the outer one) that fire when run on their own


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    return load_rules([PACK], use_cache=False)


@pytest.fixture(scope="module")
def names(pack: RuleSet) -> dict[str, str]:
    return {r.rule_id: str(r.name) for r in pack.rules} | {c.rule_id: str(c.name) for c in pack.correlations}


@pytest.fixture(scope="module")
def outcome(pack: RuleSet, names: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """fixture name → what the pack finds in it, as `hunt` runs Sigma (each file in its own case)."""
    _, hidden = base_rules_used(pack.rules, pack.correlations)
    done: dict[str, Outcome] = {}

    def get(fixture: str) -> Outcome:
        if fixture not in done:
            with Case.open(tmp_path_factory.mktemp(fixture) / "case.duckdb") as case:
                report = ingest_paths(case, [DATA / f"{fixture}.jsonl"])
                assert report.files_skipped == 0 and report.records_bad == 0
                stats = run_rules(case, pack.rules)
                assert stats.rule_errors == []
                single = [f for f in sigma_findings(case, pack.rules) if f.rule_id not in hidden]
                corr, skipped = run_correlations(case, pack.rules, pack.correlations)
                assert skipped == []
                matches = {names[k]: v for k, v in match_counts(case.con).items()}
                inner, _ = run_correlations(case, pack.rules, [c for c in pack.correlations if c.name in INNER])
            found = {(names[f.rule_id], f.entity): f for f in single + corr}
            assert len(found) == len(single) + len(corr)
            done[fixture] = Outcome(found, matches, {names[f.rule_id] for f in inner})
        return done[fixture]

    return get


def refs(f: Finding) -> list[str]:
    return [e["source_ref"] for e in f.evidence]


# -- the pack as Sigma -----------------------------------------------------------------------------


def test_pack_loads_with_nothing_skipped(pack: RuleSet) -> None:
    files = sorted(PACK.glob("*.yml"))
    assert pack.files_read == len(files) and not list(PACK.glob("*.yaml"))
    assert pack.skipped == []
    assert pack.unmapped == []  # every detection rule has a Windows event source
    assert len(pack.rules) + len(pack.correlations) == len(DOCS) == len(TWINS)
    plans, skipped = plan_correlations(pack.rules, pack.correlations)
    assert skipped == [] and len(plans) == len(pack.correlations)


@pytest.mark.parametrize("file", sorted(p.name for p in PACK.glob("*.yml")))
def test_each_file_loads_with_nothing_skipped(file: str) -> None:
    rs = load_rules([PACK / file], use_cache=False)
    assert rs.skipped == []
    assert len(rs.rules) + len(rs.correlations) == sum(1 for f, _ in DOCS if f == file)


@pytest.mark.parametrize(("file", "doc"), DOCS, ids=DOC_IDS)
def test_rule_metadata(file: str, doc: dict[str, Any]) -> None:
    assert uuid.UUID(doc["id"]).version == 4 and str(uuid.UUID(doc["id"])) == doc["id"]
    assert str(doc["name"]).startswith("gh_")
    assert doc["title"] and doc["description"] and doc["falsepositives"]
    assert doc["status"] in STATUSES
    assert doc["author"] == "gridhunt"
    assert isinstance(doc["date"], dt.date)
    assert doc["references"] and all(str(r).startswith("https://") for r in doc["references"])
    assert doc["level"] in LEVELS
    tags = doc["tags"]
    techniques = [t for t in tags if t.startswith("attack.t")]
    assert techniques and all(TECHNIQUE.match(t) for t in techniques), tags
    tactics = [t.split(".", 1)[1] for t in tags if not t.startswith("attack.t")]
    assert tactics and set(tactics) <= TACTICS, tags
    assert len(set(tags)) == len(tags)
    if "correlation" in doc:
        assert "logsource" not in doc and "detection" not in doc
    else:
        assert doc["logsource"]["product"] == "windows"
    if str(doc["name"]).startswith("gh_bb_"):  # building blocks are informational and say so
        assert doc["level"] == "informational" and "(Building Block)" in doc["title"]
    else:
        assert doc["level"] != "informational"


def test_ids_names_and_titles_are_unique() -> None:
    for key in ("id", "name", "title"):
        values = [d[key] for _, d in DOCS]
        assert len(values) == len(set(values)), key


def test_pysigma_validators_find_no_issue() -> None:
    rules = SigmaCollection.load_ruleset([str(f) for f in sorted(PACK.glob("*.yml"))]).rules
    offline = {cls for name, cls in validators.items() if name not in ONLINE_VALIDATORS}
    issues = SigmaValidator(offline).validate_rules(rules)
    assert [(type(i).__name__, [getattr(r, "title", "") for r in i.rules]) for i in issues] == []


def test_building_blocks_stay_silent_and_the_rest_report(pack: RuleSet, names: dict[str, str]) -> None:
    needed, hidden = base_rules_used(pack.rules, pack.correlations)
    silent = {names[i] for i in hidden}
    assert silent == {str(r.name) for r in pack.rules if str(r.name).startswith("gh_bb_")}
    # the group-add, GPO and every other non-building-block rule keep their own findings
    assert {str(r.name) for r in pack.rules} - silent == {
        "gh_privileged_group_member_added",
        "gh_gpo_structure_changed",
        "gh_lsass_suspicious_reader",
        "gh_powershell_encoded_command",
        "gh_powershell_scriptblock_decode_and_run",
        "gh_shell_cmdline_insertion_obfuscation",
    }
    assert {"gh_privileged_group_member_added", "gh_gpo_structure_changed"} <= {names[i] for i in needed}


def test_readme_lists_every_rule() -> None:
    text = (PACK / "README.md").read_text(encoding="utf-8")
    missing = [n for n in DOC_IDS if f"`{n}`" not in text]
    assert missing == []
    assert "Detection Rule License" in text


# -- every rule on its fixture and its benign twin ---------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_fixture_gives_exactly_the_expected_findings(fixture: str, outcome: Any) -> None:
    want_findings, want_matches = EXPECTED[fixture]
    got = outcome(fixture)
    assert {k: f.count for k, f in got.findings.items()} == want_findings
    blocks = {k: v for k, v in got.matches.items() if k.startswith("gh_bb_") or k in want_matches}
    assert blocks == want_matches


def test_every_fixture_is_used_and_every_rule_has_twins(names: dict[str, str]) -> None:
    assert sorted(p.stem for p in DATA.glob("*.jsonl")) == sorted(EXPECTED)
    assert sorted(TWINS) == sorted(names.values())


@pytest.mark.parametrize("rule", sorted(TWINS))
def test_rule_fires_on_its_fixture_and_not_on_its_twin(rule: str, outcome: Any, pack: RuleSet) -> None:
    pos, neg = TWINS[rule]
    is_corr = any(c.name == rule for c in pack.correlations)
    reports = not rule.startswith("gh_bb_")

    def fired(fixture: str) -> bool:
        got = outcome(fixture)
        if is_corr and not reports:  # an inner correlation, run on its own
            return rule in got.inner
        if reports:
            return any(name == rule for name, _ in got.findings)
        return got.matches.get(rule, 0) > 0

    assert fired(pos), f"{rule} does not fire on {pos}"
    assert not fired(neg), f"{rule} fires on its benign twin {neg}"


# -- details an analyst reads ---------------------------------------------------------------------


def test_spray_names_every_account_tried(outcome: Any) -> None:
    [f] = outcome("logon_spray_pos").findings.values()
    d = f.details
    assert d["type"] == "value_count" and d["field"] == "TargetUserName"
    assert d["distinct_count"] == 12 and len(d["values"]) == 12
    assert d["group_by"] == {"IpAddress": "10.20.30.40", "WorkstationName": "KALI"}
    assert set(refs(f)) == {f"line {n}" for n in range(1, 13)}  # not the try 45 minutes later (13), not jdoe (14)
    assert f.attack == ["T1110.003"] and f.severity == "high"


def test_failures_then_success_evidence_ends_with_the_success(outcome: Any) -> None:
    [f] = outcome("failures_then_success_pos").findings.values()
    assert refs(f) == [f"line {n}" for n in range(1, 8)]
    assert f.details["window"]["end"] == "2026-04-07T03:05:00Z"
    assert [(r["reference"], r["correlation"]) for r in f.details["rules"]] == [
        ("gh_bb_logon_failure_run", True),
        ("gh_bb_logon_success", False),
    ]


def test_kerberoasting_lists_the_roasted_services(outcome: Any) -> None:
    [f] = outcome("kerberoast_pos").findings.values()
    assert f.details["values"] == ["svc_ami", "svc_backup", "svc_historian", "svc_sccm", "svc_sql", "svc_web"]
    assert f.attack == ["T1558.003"]


def test_new_admin_correlation_joins_creation_and_group_adds(outcome: Any) -> None:
    got = outcome("privileged_pos").findings
    corr = got[("gh_new_account_made_privileged", f"NewAccountSid={NEW_ADMIN_SID}")]
    assert refs(corr) == ["line 1", "line 2", "line 3"]  # 4720, then 4728 Domain Admins, 4756 Enterprise Admins
    assert corr.severity == "critical" and corr.attack == ["T1078.002", "T1098", "T1136.002"]
    single = got[("gh_privileged_group_member_added", DC)]
    assert refs(single) == ["line 2", "line 3"]
    assert single.details["rule"]["author"] == "gridhunt"


def test_gpo_correlation_joins_account_name_across_events(outcome: Any) -> None:
    got = outcome("gpo_pos").findings
    corr = got[("gh_new_account_changes_gpo", "Account=adm-support7")]
    assert refs(corr) == ["line 1", "line 3"]  # 4720, then the extension added (not the removal, not versionNumber)
    assert refs(got[("gh_gpo_structure_changed", DC)]) == ["line 3"]


def test_psexec_fanout_counts_hosts_not_pipes(outcome: Any) -> None:
    got = outcome("psexec_pos").findings
    targets = got[("gh_psexec_fanout_targets", "IpAddress=10.20.30.50, SubjectUserName=adm-support7")]
    assert targets.details["values"] == ["fs01.corp.example", "sql01.corp.example"]
    client = got[("gh_psexec_fanout_client", "Computer=ws17.corp.example")]
    assert client.details["distinct_count"] == 2 and client.count == 3  # Sysmon 1 + 4688 of one run count once


# -- `gridhunt hunt` runs the pack by default -----------------------------------------------------------


def test_packaged_rule_dirs_include_the_pack() -> None:
    dirs = packaged_rule_dirs()
    assert [d.name for d in dirs] == ["sigmahq", "gridhunt"]
    assert dirs[1].resolve() == PACK.resolve()


def test_hunt_with_default_rules_runs_the_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDHUNT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    evidence = [DATA / "privileged_pos.jsonl", DATA / "psexec_pos.jsonl", DATA / "powershell_neg.jsonl"]
    result = hunt(evidence, rule_paths=None, out_dir=out)
    pack_ids = {str(d["id"]): str(d["name"]) for _, d in DOCS}
    assert pack_ids.keys() <= {r.rule_id for r in result.rules.rules} | {c.rule_id for c in result.rules.correlations}
    assert not [s for s in result.rules.skipped if "rules/gridhunt" in s.path.replace("\\", "/")]
    assert not [s for s in result.correlations_skipped if s.rule in pack_ids]
    rows = read_jsonl(out / "findings.jsonl")
    ours = sorted((pack_ids[r["rule_id"]], r["entity"], r["count"]) for r in rows if r["rule_id"] in pack_ids)
    assert ours == [
        ("gh_new_account_made_privileged", f"NewAccountSid={NEW_ADMIN_SID}", 3),
        ("gh_privileged_group_member_added", DC, 2),
        ("gh_psexec_fanout_client", "Computer=ws17.corp.example", 3),
        ("gh_psexec_fanout_targets", "IpAddress=10.20.30.50, SubjectUserName=adm-support7", 5),
    ]
    # findings name the pack's file, so an analyst can open the rule
    paths = {r["details"]["rule"]["rule_path"] for r in rows if r["rule_id"] in pack_ids}
    assert {Path(p).parent.resolve() for p in paths} == {PACK.resolve()}
