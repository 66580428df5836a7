"""Bad input: each case gives a one-line message naming file and reason, counts in the report,
and the other files of the same run still ingest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gridhunt.case import Case
from gridhunt.ingest import ingest_paths
from tests.conftest import SAMPLES, TEST_DATA, needs_samples

DATA = TEST_DATA / "ingest"


@pytest.fixture
def good(tmp_path: Path) -> Path:
    """A good file that must still be ingested next to the bad one."""
    p = tmp_path / "good" / "winlogbeat.ndjson"
    p.parent.mkdir()
    shutil.copy(DATA / "winlogbeat.ndjson", p)
    return p


def count(case: Case) -> int:
    return case.con.execute("SELECT count(*) FROM win_events").fetchone()[0]


def log(case: Case, path: Path) -> tuple:
    return case.con.execute(
        "SELECT format, records_ok, records_bad, first_error, skipped_reason FROM ingest_log WHERE path = ?",
        [str(path.absolute())],
    ).fetchone()


def test_not_an_evtx_file_named_evtx(case: Case, tmp_path: Path, good: Path) -> None:
    evil = tmp_path / "evil.evtx"
    evil.write_bytes(b"MZ\x90\x00" + b"\x00" * 4000)
    report = ingest_paths(case, [evil, good])
    assert "evil.evtx: skipped: unrecognised format" in report.messages()
    assert (report.files_read, report.files_skipped, report.records_ok) == (1, 1, 3)
    assert count(case) == 3
    assert log(case, evil) == (None, 0, 0, None, "unrecognised format")


@needs_samples
def test_truncated_evtx(case: Case, tmp_path: Path, good: Path) -> None:
    src = (SAMPLES / "security.evtx").read_bytes()
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(src[: 4096 + 3 * 65536 + 30000])  # header, 3 whole chunks, part of the 4th
    report = ingest_paths(case, [cut, good])
    f = report.files[0]
    assert f.format == "evtx" and f.skipped_reason is None
    assert f.records_ok > 0 and f.records_bad >= 1
    assert any(m.startswith("cut.evtx: chunk 3") for m in report.messages()), report.messages()
    assert count(case) == f.records_ok + 3
    assert log(case, cut)[3].startswith("chunk 3")


@needs_samples
def test_evtx_header_only(case: Case, tmp_path: Path, good: Path) -> None:
    head = tmp_path / "head.evtx"
    head.write_bytes((SAMPLES / "security.evtx").read_bytes()[:100])
    report = ingest_paths(case, [head, good])
    msg = [m for m in report.messages() if m.startswith("head.evtx: ")]
    assert len(msg) == 1 and ("skipped" in msg[0] or "before the first record" in msg[0]), msg
    assert report.records_ok == 3


def test_empty_file(case: Case, tmp_path: Path, good: Path) -> None:
    empty = tmp_path / "empty.evtx"
    empty.write_bytes(b"")
    report = ingest_paths(case, [empty, good])
    assert "empty.evtx: skipped: empty file" in report.messages()
    assert (report.files_skipped, report.records_ok) == (1, 3)


def test_jsonl_with_one_malformed_line(case: Case, tmp_path: Path, good: Path) -> None:
    bad = DATA / "evtx_dump_bad_line.jsonl"
    report = ingest_paths(case, [bad, good])
    f = report.files[0]
    assert (f.records_ok, f.records_bad) == (3, 1)
    msgs = report.messages()
    assert any(m.startswith("evtx_dump_bad_line.jsonl: line 2: malformed JSON") for m in msgs), msgs
    refs = case.con.execute(
        "SELECT source_ref FROM win_events WHERE source_file = ? ORDER BY event_uid", [str(bad.resolve())]
    ).fetchall()
    assert refs == [("line 1",), ("line 3",), ("line 5",)]
    assert report.records_ok == 6 and report.records_bad == 1
    assert log(case, bad)[:3] == ("evtx_json", 3, 1)


def test_json_record_that_is_not_an_event(case: Case, tmp_path: Path, good: Path) -> None:
    p = tmp_path / "mixed.jsonl"
    line = (DATA / "evtx_dump.jsonl").read_text().splitlines()[0]
    p.write_text(line + "\n" + '{"hello": "world"}\n' + "[1, 2]\n" + line + "\n")
    report = ingest_paths(case, [p, good])
    f = report.files[0]
    assert (f.records_ok, f.records_bad) == (2, 2)
    assert "mixed.jsonl: line 2: not a Windows event (no Event, winlog or Splunk result)" in report.messages()
    assert "mixed.jsonl: line 3: not a JSON object but list" in report.messages()


def test_missing_path(case: Case, tmp_path: Path, good: Path) -> None:
    missing = tmp_path / "nope" / "gone.evtx"
    report = ingest_paths(case, [missing, good])
    assert "gone.evtx: skipped: No such file or directory" in report.messages()
    assert (report.files_skipped, report.records_ok) == (1, 3)


def test_path_through_a_file(case: Case, tmp_path: Path, good: Path) -> None:
    # root reads any file, but no one can open a path that runs through a regular file
    through = good / "child.evtx"
    report = ingest_paths(case, [through, good])
    assert "child.evtx: skipped: Not a directory" in report.messages()
    assert report.records_ok == 3


def test_unreadable_file_and_folder(case: Case, tmp_path: Path, good: Path) -> None:
    locked_dir = tmp_path / "locked"
    locked_dir.mkdir()
    shutil.copy(DATA / "evtx_dump.jsonl", locked_dir / "a.jsonl")
    locked_file = tmp_path / "locked.jsonl"
    shutil.copy(DATA / "evtx_dump.jsonl", locked_file)
    locked_file.chmod(0)
    locked_dir.chmod(0o600)  # no exec bit: entries cannot be reached
    try:
        if os.access(locked_file, os.R_OK) and os.access(locked_dir / "a.jsonl", os.R_OK):
            pytest.skip("running with privileges that read mode-000 files and non-searchable folders (root)")
        report = ingest_paths(case, [locked_file, locked_dir, good])
        msgs = report.messages()
        assert any(m.endswith("skipped: Permission denied") for m in msgs), msgs
        assert report.records_ok == 3
    finally:
        locked_dir.chmod(0o700)
        locked_file.chmod(0o600)


def test_fifo_is_not_opened(case: Case, tmp_path: Path, good: Path) -> None:
    fifo = tmp_path / "pipe.evtx"
    os.mkfifo(fifo)
    report = ingest_paths(case, [fifo, good])  # would block forever if opened
    assert "pipe.evtx: skipped: not a regular file" in report.messages()
    assert report.records_ok == 3


def test_folder_mixing_good_and_bad(case: Case, tmp_path: Path) -> None:
    d = tmp_path / "evidence"
    (d / "sub").mkdir(parents=True)
    shutil.copy(DATA / "winlogbeat.ndjson", d / "sub" / "wlb.ndjson")
    shutil.copy(DATA / "evtx_dump_bad_line.jsonl", d / "a.jsonl")
    (d / "empty.json").write_bytes(b"")
    (d / "notes.txt").write_text("not evidence\n")
    report = ingest_paths(case, [d])
    names = [Path(f.path).name for f in report.files]
    assert names == ["a.jsonl", "empty.json", "notes.txt", "wlb.ndjson"]  # sorted, recursive
    assert (report.files_read, report.files_skipped, report.records_ok, report.records_bad) == (2, 2, 6, 1)
    msgs = report.messages()
    assert len(msgs) == 3 and msgs[0].startswith("a.jsonl: line 2: malformed JSON: ")
    assert msgs[1:] == ["empty.json: skipped: empty file", "notes.txt: skipped: unrecognised format"]
