"""A Sigma field named like a System field reads the event's own data field when it has one.

System 104 names the cleared log in UserData's `Channel` (the event itself is in System); Sysmon's
EventData `ProcessId` is the observed process, System/Execution's the Sysmon service. SigmaHQ's
rules mean the data field (e.g. "Important Windows Eventlog Cleared" lists cleared channels).
"""

from __future__ import annotations

from pathlib import Path

from gridhunt.case import Case
from gridhunt.ingest import ingest_paths
from gridhunt.sigma.ruleset import load_rules
from gridhunt.sigma.runner import run_rules
from tests.conftest import TEST_DATA

EVENTS = TEST_DATA / "sigma" / "system_fields" / "events.jsonl"
RULE = """title: {title}
id: {id}
logsource: {{product: windows, service: {service}}}
detection: {{sel: {sel}, condition: sel}}
level: low
"""


def matches(tmp_path: Path, service: str, sel: str) -> list[str]:
    p = tmp_path / "r.yml"
    p.write_text(RULE.format(title="t", id="0f6c2a39-2bb4-4a8e-9d1a-7e5c1f0a9b01", service=service, sel=sel))
    rs = load_rules([p], use_cache=False)
    with Case.open(tmp_path / "c.duckdb") as case:
        ingest_paths(case, [EVENTS])
        run_rules(case, rs.rules)
        return [
            r[0]
            for r in case.con.execute(
                "SELECT e.source_ref FROM sigma_matches m JOIN win_events_data e USING (event_uid) ORDER BY 1"
            ).fetchall()
        ]


def test_104_channel_is_the_cleared_log(tmp_path: Path) -> None:
    assert matches(tmp_path, "system", "{EventID: 104, Channel: Application}") == ["line 1"]
    assert matches(tmp_path, "system", "{EventID: 104, Channel: Security}") == []


def test_events_without_a_data_field_keep_the_system_value(tmp_path: Path) -> None:
    assert matches(tmp_path, "sysmon", "{EventID: 1, Channel: Microsoft-Windows-Sysmon/Operational}") == ["line 2"]


def test_sysmon_process_id_is_the_observed_process(tmp_path: Path) -> None:
    assert matches(tmp_path, "sysmon", "{EventID: 1, ProcessId: 4242}") == ["line 2"]
    assert matches(tmp_path, "sysmon", "{EventID: 1, ProcessId: 3000}") == []
