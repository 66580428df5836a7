"""Windows events as JSON: evtx_dump (lines / pretty), Winlogbeat / ECS, Splunk export."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gridhunt.case import WIN_EVENTS_BASE_NAMES, Case
from gridhunt.ingest import ami, context, evtx, ingest_paths, jsonlog, netlog, zeek
from tests.conftest import SHARED, TEST_DATA, rows

DATA = TEST_DATA / "ingest"
REGRESSION = SHARED / "sigma" / "regression_data"


def test_sniff_formats() -> None:
    def sniff(name: str) -> str | None:
        p = DATA / name
        return jsonlog.sniff(p.read_bytes()[:65536], p)

    assert sniff("evtx_dump.jsonl") == "evtx_json"
    assert sniff("evtx_dump_pretty.json") == "evtx_json"
    assert sniff("winlogbeat.ndjson") == "winlogbeat"
    assert sniff("splunk_export.json") == "splunk"
    assert jsonlog.sniff(b'{"ts": 1712891655.1, "uid": "C1", "id.orig_h": "10.0.0.1"}\n', Path("x")) is None
    assert jsonlog.sniff(b"ts,system,user\n", Path("x")) is None
    # the other readers leave our files alone
    for name in ("evtx_dump.jsonl", "evtx_dump_pretty.json", "winlogbeat.ndjson", "splunk_export.json"):
        head = (DATA / name).read_bytes()[:8192]
        for reader in (zeek, ami, netlog, context, evtx):
            assert reader.sniff(head, DATA / name) is None, (reader.__name__, name)


def test_evtx_dump_jsonl_fields(case: Case) -> None:
    report = ingest_paths(case, [DATA / "evtx_dump.jsonl"])
    assert (report.records_ok, report.records_bad) == (5, 0)
    assert report.files[0].format == "evtx_json"
    got = rows(case, "SELECT record_id, source_ref, channel, level, ts FROM win_events ORDER BY event_uid")
    assert [r[:4] for r in got] == [
        (1, "line 1", "Application", 4), (2, "line 2", "Application", 4), (3, "line 3", "System", 4),
        (4, "line 4", "Application", 4), (5, "line 5", "Application", 4),
    ]  # fmt: skip
    assert got[0][4].isoformat() == "2024-01-02T03:04:05.678901+00:00"
    # EventData names equal to base columns are prefixed; System values stay in the base columns
    assert rows(case, "SELECT channel, ed_Channel, ed_Level FROM win_events WHERE record_id = 1") == [
        ("Application", "inner-channel", "inner-level")
    ]
    # case-variant names share one column; numbers / booleans / objects as text
    assert rows(
        case, "SELECT TargetUserName, Count, Flag, Nested FROM win_events ORDER BY record_id LIMIT 2"
    ) == [
        ("alice", "3", "true", '{"a":[1,2]}'),
        ("bob", None, None, None),
    ]
    lower = [c.lower() for c in case.columns("win_events")]
    assert len(lower) == len(set(lower))
    # EventID with Qualifiers, unnamed Data list, single unnamed Data, UserData child fields
    assert rows(case, "SELECT event_id, Data FROM win_events WHERE record_id = 3") == [
        (6009, '["10.00.","17134","","Multiprocessor Free","0"]')
    ]
    assert rows(case, "SELECT Data FROM win_events WHERE record_id = 5") == [("only one unnamed value",)]
    assert rows(case, "SELECT SubjectUserName, SubjectLogonId FROM win_events WHERE record_id = 4") == [
        ("carol", "0x1")
    ]


def test_winlogbeat(case: Case) -> None:
    report = ingest_paths(case, [DATA / "winlogbeat.ndjson"])
    assert (report.records_ok, report.records_bad) == (3, 0)
    got = rows(
        case,
        "SELECT event_id, channel, computer, provider, record_id, level, user_sid, process_id, thread_id,"
        " strftime(ts, '%Y-%m-%dT%H:%M:%S.%g'), source_ref FROM win_events ORDER BY event_uid",
    )
    assert got[0] == (
        4624, "Security", "vagrant-2016", "Microsoft-Windows-Security-Auditing", 5010, 4, None, 640, 3456,
        "2019-05-29T13:09:46.000", "line 1",
    )  # fmt: skip
    assert got[1][:5] == (4688, "Security", "ws01.corp.example", "Microsoft-Windows-Security-Auditing", 72001)
    assert got[1][6] == "S-1-5-18"
    assert got[2][:5] == (
        1102,
        "Security",
        "dc01.corp.example",
        "Microsoft-Windows-Eventlog",
        880,
    )  # dotted keys
    assert rows(
        case, "SELECT TargetUserName, LogonType, IpAddress FROM win_events WHERE event_id = 4624"
    ) == [("Administrator", "10", "10.0.2.2")]
    assert rows(case, "SELECT CommandLine FROM win_events WHERE event_id = 4688") == [
        ("cmd.exe /c whoami /all",)
    ]
    assert rows(case, "SELECT SubjectUserName FROM win_events WHERE event_id = 1102") == [("Administrator",)]


def test_splunk_xml_and_flat(case: Case) -> None:
    report = ingest_paths(case, [DATA / "splunk_export.json"])
    assert (report.records_ok, report.records_bad) == (4, 0)
    got = rows(
        case,
        "SELECT event_id, channel, computer, provider, record_id, process_id, user_sid, ts::VARCHAR"
        " FROM win_events ORDER BY event_uid",
    )
    assert got[0] == (
        4688, "Security", "ws01.corp.example", "Microsoft-Windows-Security-Auditing", 72001, 4, None,
        "2023-03-01 12:00:01.123456+00",
    )  # fmt: skip
    assert got[1][:5] == (1102, "Security", "dc01.corp.example", "Microsoft-Windows-Eventlog", 72050)
    assert got[2][:5] == (7045, "System", "ws01.corp.example", "Service Control Manager", 5511)
    assert got[2][6] == "S-1-5-21-1-2-3-1104"
    assert got[3][:5] == (
        4625,
        "Security",
        "dc01.corp.example",
        "Microsoft Windows security auditing.",
        998877,
    )
    assert rows(case, "SELECT CommandLine, NewProcessName FROM win_events WHERE event_id = 4688") == [
        ("cmd.exe /c whoami /all", "C:\\Windows\\System32\\cmd.exe")
    ]
    assert rows(case, "SELECT SubjectUserName FROM win_events WHERE event_id = 1102") == [("Administrator",)]
    assert rows(case, "SELECT ServiceName, ImagePath FROM win_events WHERE event_id = 7045") == [
        ("PSEXESVC", "%SystemRoot%\\PSEXESVC.exe")
    ]
    # flat Splunk fields: multivalue as JSON list, Splunk's own fields (host, date_*, linecount) not columns
    assert rows(case, "SELECT Account_Name, Logon_Type FROM win_events WHERE event_id = 4625") == [
        ('["-","baduser"]', "3")
    ]
    cols = {c.lower() for c in case.columns("win_events")}
    assert not {"host", "date_hour", "linecount", "sourcetype"} & cols


def test_pretty_concatenated_objects_with_one_bad(case: Case) -> None:
    report = ingest_paths(case, [DATA / "evtx_dump_pretty.json"])
    f = report.files[0]
    assert (f.format, f.records_ok, f.records_bad) == ("evtx_json", 2, 1)
    assert rows(case, "SELECT record_id, source_ref FROM win_events ORDER BY event_uid") == [
        (1, "object 1 line 1"),
        (3, "object 3 line 94"),
    ]
    assert f.errors[0][0] == "object 2 line 54"
    assert f.errors[0][1].startswith("malformed JSON")


def _regression_pairs(k: int = 20) -> list[Path]:
    if not REGRESSION.is_dir():
        return []
    pairs = sorted(p for p in REGRESSION.rglob("*.json") if p.with_suffix(".evtx").is_file())
    # several concatenated objects are the interesting case: take all of those, fill up at random
    multi = [p for p in pairs if p.read_bytes().count(b'\n{\n  "Event"') >= 1]
    rest = [p for p in pairs if p not in multi]
    random.Random(7).shuffle(rest)
    return (multi + rest)[:k]


FIELD_SQL = "SELECT * FROM win_events WHERE source_file = ? ORDER BY record_id, event_uid"


def _events(case: Case, path: Path) -> list[tuple[tuple, dict[str, str]]]:
    cur = case.con.execute(FIELD_SQL, [str(path.resolve())])
    names = [d[0] for d in cur.description]
    out = []
    for row in cur.fetchall():
        rec = dict(zip(names, row, strict=True))
        key = (rec["channel"], rec["event_id"], rec["record_id"])
        # the upstream JSON exports trim trailing blanks (e.g. CommandLine 'tasklist  '): not ours to fix
        fields = {
            k: v.rstrip() for k, v in rec.items() if k.lower() not in WIN_EVENTS_BASE_NAMES and v is not None
        }
        out.append((key, fields))
    return out


@pytest.mark.skipif(not _regression_pairs(), reason=f"{REGRESSION} not present")
@pytest.mark.parametrize("json_path", _regression_pairs(), ids=lambda p: p.stem[:8])
def test_regression_json_equals_evtx(tmp_path: Path, json_path: Path) -> None:
    with Case.open(tmp_path / "a.duckdb") as a, Case.open(tmp_path / "b.duckdb") as b:
        ra = ingest_paths(a, [json_path.with_suffix(".evtx")])
        rb = ingest_paths(b, [json_path])
        assert rb.files[0].format == "evtx_json"
        assert ra.records_bad == rb.records_bad == 0
        assert ra.records_ok == rb.records_ok > 0
        assert _events(a, json_path.with_suffix(".evtx")) == _events(b, json_path)
