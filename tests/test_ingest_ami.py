"""AMI head-end / DMS audit reader: vocabularies checked, JSONL and CSV forms."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import orjson

from gridhunt.case import Case
from gridhunt.ingest import ami
from tests.conftest import TEST_DATA, data_files, rows, sniff_and_ingest, utc

DATA = TEST_DATA / "ami"
OTHER = data_files("zeek", "netlog", "context")
load = partial(sniff_and_ingest, ami)


def test_sniff() -> None:
    assert ami.sniff((DATA / "headend-audit.jsonl").read_bytes(), DATA / "headend-audit.jsonl") == "ami_jsonl"
    assert ami.sniff((DATA / "dms-audit.csv").read_bytes(), DATA / "dms-audit.csv") == "ami_csv"
    for path in OTHER:
        assert ami.sniff(path.read_bytes()[:8192], path) is None, path


def test_jsonl_rows_and_vocabulary_errors(case: Case) -> None:
    path = DATA / "headend-audit.jsonl"
    res = load(case, path)
    assert (res.format, res.records_ok, res.records_bad) == ("ami_jsonl", 4, 6)
    assert res.errors[:5] == [
        ("line 5", "action: unknown value 'EndDeviceControl:reboot'"),
        ("line 6", "target_type: unknown value 'transformer'"),
        ("line 7", "result: unknown value 'maybe'"),
        ("line 8", "system: unknown value 'scada'"),
        ("line 9", "params: not a JSON object"),
    ]
    assert res.errors[5][0] == "line 10" and res.errors[5][1].startswith("invalid JSON")
    got = rows(
        case,
        'SELECT ts, system, "user", src_ip, action, target_type, target_id, target_count, params, '
        "result, source_file, source_ref FROM ami_audit ORDER BY ts",
    )
    assert got[1] == (
        utc(2026, 4, 12, 3, 21, 10, 250000),
        "headend",
        "svc_meterco",
        "10.99.0.12",
        "EndDeviceControl:disconnect",
        "meter",
        "MTR-000123",
        1500,
        '{"ticket":"CHG-1042","job":"disconnect-batch-7"}',
        "ok",
        str(path.resolve()),
        "line 2",
    )
    # case-insensitive vocabulary -> canonical spelling; "20" count -> 20
    assert got[2][4:8] == ("EndDeviceControl:load_limit", "meter", "MTR-000124", 20)
    assert got[2][9] == "rejected"
    # a login has no target: null / '' target fields are NULL, not errors
    assert got[0][4:8] == ("login", None, None, None)
    assert got[3][4:10] == ("login_failed", None, None, None, '{"reason":"bad password"}', "failed")


def test_csv_params_json_string(case: Case) -> None:
    res = load(case, DATA / "dms-audit.csv")
    assert (res.format, res.records_ok, res.records_bad) == ("ami_csv", 3, 2)
    assert res.errors == [
        ("line 5", "params: not JSON: '{not json}'"),
        ("line 6", "target_count: not an integer: 'many'"),
    ]
    got = rows(
        case,
        "SELECT system, action, target_type, target_id, target_count, params, result, source_ref "
        "FROM ami_audit ORDER BY ts",
    )
    assert got[0] == ("dms", "login", None, None, None, None, "ok", "line 2")
    assert got[1][:5] == ("dms", "config_change", "switch", "SW-FDR12-3", 1)
    assert orjson.loads(got[1][5]) == {"ticket": "CHG-1050", "state": "open"}
    assert got[2][:4] == ("mdm", "grant_role", "user", "op-temp")
    # params is queryable JSON in DuckDB
    assert rows(case, "SELECT params->>'role' FROM ami_audit WHERE action = 'grant_role'") == [("admin",)]


def test_logins_also_to_auth(case: Case) -> None:
    load(case, DATA / "headend-audit.jsonl")
    load(case, DATA / "dms-audit.csv")
    got = rows(
        case,
        'SELECT ts, "user", src_ip, dst_host, outcome, failure_reason, source, source_ref '
        "FROM auth ORDER BY ts",
    )
    assert got == [
        (utc(2026, 4, 12, 3, 20), "svc_meterco", "10.99.0.12", "headend", "success", None, "ami", "line 1"),
        (utc(2026, 4, 12, 3, 22), "op-kim", "10.10.4.20", "dms", "failure", "bad password", "ami", "line 4"),
        (utc(2026, 4, 12, 3, 30), "op-kim", "10.10.4.20", "dms", "success", None, "ami", "line 2"),
    ]


def test_csv_missing_required_columns(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "audit.csv"
    path.write_text("ts,system,user,action,target_type\n2026-04-12T00:00:00Z,dms,x,login,\n")
    res = ami.ingest(case, path, "ami_csv")
    assert (res.records_ok, res.records_bad) == (0, 1)
    assert res.errors == [("line 1", "header lacks result")]
