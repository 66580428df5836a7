"""Binary EVTX ingest: every real sample (some damaged), base columns, field columns, progress."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import orjson
import pytest

from gridhunt.case import Case
from gridhunt.ingest import ingest_paths
from gridhunt.ingest.base import IngestReport
from tests.conftest import SAMPLES, needs_samples, rows


@pytest.fixture(scope="module")
def all_samples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, IngestReport]:
    if not SAMPLES.is_dir():
        pytest.skip(f"{SAMPLES} not present")
    c = Case.open(tmp_path_factory.mktemp("all") / "c.duckdb")
    report = ingest_paths(c, [SAMPLES])
    yield c, report
    c.close()


@needs_samples
def test_every_sample_recovers_all_recoverable_records(all_samples: tuple[Case, IngestReport]) -> None:
    case, report = all_samples
    expected = {r["file"]: r for r in csv.DictReader((SAMPLES / "EXPECTED.csv").open())}
    by_name = {Path(f.path).name: f for f in report.files}
    assert set(expected) <= set(by_name)
    for name, exp in expected.items():
        f = by_name[name]
        assert f.format == "evtx", name
        assert f.skipped_reason is None, name
        assert f.records_ok >= int(exp["records_recoverable"]), name
        assert f.records_bad == int(exp["record_errors"]), name
        stored = rows(case, "SELECT count(*) FROM win_events WHERE source_file = ?", [f.path])[0][0]
        assert stored == f.records_ok, name
    # far more than a reader that stops at the first error would get
    stop_first = sum(int(e["records_if_stopping_at_first_error"]) for e in expected.values())
    assert report.records_ok > stop_first


@needs_samples
def test_each_error_is_reported_with_file_and_position(all_samples: tuple[Case, IngestReport]) -> None:
    _, report = all_samples
    messages = report.messages()
    errors = [m for m in messages if "skipped" not in m]
    assert len(errors) == report.records_bad  # under MAX_ERRORS per file: every error listed
    for m in errors:
        assert re.match(
            r"^\S+\.evtx: (chunk \d+|chunk \d+ record \d+|record \d+|(chunk \d+ )?after record \d+): .+", m
        ), m
    assert any(m.startswith("sample_with_a_bad_chunk_magic.evtx: chunk 6: ") for m in messages)
    assert any("sysmon.evtx: chunk 9: " in m for m in messages)
    assert any(
        re.match(r"sample-with-zero-data-size-event\.evtx: chunk 0 after record 2: ", m) for m in messages
    )
    # the non-EVTX files in the folder are reported, not silently dropped
    assert "README.md: skipped: unrecognised format" in messages
    assert "EXPECTED.csv: skipped: unrecognised format" in messages


@needs_samples
def test_ingest_log_has_one_row_per_file(all_samples: tuple[Case, IngestReport]) -> None:
    case, report = all_samples
    log = rows(
        case, "SELECT path, format, records_ok, records_bad, first_error, skipped_reason FROM ingest_log"
    )
    assert len(log) == len(report.files)
    by_path = {r[0]: r for r in log}
    chunk = next(f for f in report.files if f.path.endswith("sample_with_a_bad_chunk_magic.evtx"))
    assert by_path[chunk.path][1:4] == ("evtx", 270, 2)
    assert by_path[chunk.path][4].startswith("chunk 6: ")
    readme = next(f for f in report.files if f.path.endswith("README.md"))
    assert by_path[readme.path][5] == "unrecognised format"


@needs_samples
def test_event_uid_is_unique_and_monotonic_across_files(all_samples: tuple[Case, IngestReport]) -> None:
    case, report = all_samples
    n, lo, hi, distinct = rows(
        case, "SELECT count(*), min(event_uid), max(event_uid), count(DISTINCT event_uid) FROM win_events"
    )[0]
    assert (n, lo, hi, distinct) == (report.records_ok, 1, report.records_ok, report.records_ok)


@needs_samples
def test_base_columns_of_security_log(case: Case) -> None:
    path = SAMPLES / "security.evtx"
    report = ingest_paths(case, [path])
    assert report.records_ok == 2261 and report.records_bad == 0
    first = rows(
        case,
        "SELECT event_uid, ts, computer, channel, provider, event_id, record_id, level, task, opcode,"
        " keywords, user_sid, process_id, thread_id, source_file, source_ref"
        " FROM win_events ORDER BY event_uid LIMIT 1",
    )[0]
    assert first[0] == 1
    assert first[1].isoformat() == "2016-07-08T18:12:51.681640+00:00"
    assert first[2:11] == (
        "37L4247F27-25", "Security", "Microsoft-Windows-Security-Auditing", 4608, 1, 0, 12288, 0,
        "0x8020000000000000",
    )  # fmt: skip
    assert first[12:] == (456, 460, str(path.resolve()), "1")
    # nothing lost on the way: every row has its time, id and record id; source_ref = record id
    assert rows(
        case,
        "SELECT count(*) FROM win_events"
        " WHERE ts IS NULL OR event_id IS NULL OR source_ref <> record_id::VARCHAR",
    ) == [(0,)]
    raw = orjson.loads(rows(case, "SELECT raw FROM win_events WHERE record_id = 1")[0][0])
    assert raw["Event"]["System"]["EventRecordID"] == 1


@needs_samples
def test_eventdata_fields_become_columns(case: Case) -> None:
    ingest_paths(case, [SAMPLES / "security.evtx"])
    cols = set(case.columns("win_events"))
    assert {"SubjectUserName", "TargetUserName", "LogonType", "IpAddress"} <= cols
    # compare with the record's own JSON: values stringified as evtx_dump prints them
    for raw, logon_type, user in rows(
        case, "SELECT raw, LogonType, TargetUserName FROM win_events WHERE event_id = 4624 LIMIT 20"
    ):
        ed = orjson.loads(raw)["Event"]["EventData"]
        assert logon_type == str(ed["LogonType"])
        assert user == ed["TargetUserName"]


@needs_samples
def test_userdata_and_unnamed_data(case: Case) -> None:
    ingest_paths(
        case,
        [SAMPLES / "2-vss_0-Microsoft-Windows-TerminalServices-RemoteConnectionManager%4Operational.evtx"],
    )
    ingest_paths(case, [SAMPLES / "2-vss_7-System.evtx"])
    # UserData.EventXML.listenerName -> column listenerName
    assert rows(case, "SELECT count(*) FROM win_events WHERE listenerName = 'RDP-Tcp'")[0][0] > 0
    # unnamed <Data> elements -> column Data holding the JSON list
    data = rows(case, "SELECT Data FROM win_events WHERE event_id = 6009 ORDER BY event_uid LIMIT 1")[0][0]
    assert orjson.loads(data) == ["10.00.", "17134", "", "Multiprocessor Free", "0"]


@needs_samples
def test_boolean_and_numeric_values_are_text(case: Case) -> None:
    ingest_paths(case, [SAMPLES / "sample-with-irregular-bool-values.evtx"])
    vals = {
        v
        for (raw,) in rows(case, "SELECT raw FROM win_events")
        for v in (orjson.loads(raw)["Event"].get("EventData") or {}).values()
        if isinstance(v, bool)
    }
    assert vals  # the sample has booleans
    cols = [c for c in case.columns("win_events") if c not in {"raw"}]
    texts = set()
    for c in cols[17:]:
        texts |= {
            r[0]
            for r in rows(case, f"SELECT DISTINCT \"{c}\" FROM win_events WHERE \"{c}\" IN ('true', 'false')")
        }
    assert texts <= {"true", "false"} and texts


@needs_samples
def test_progress_reaches_total_bytes(case: Case) -> None:
    from rich.progress import Progress

    files = [SAMPLES / "security.evtx", SAMPLES / "README.md"]
    with Progress(disable=True) as progress:
        ingest_paths(case, files, progress=progress)
        task = progress.tasks[0]
        assert task.total == sum(f.stat().st_size for f in files)
        assert task.completed == task.total
