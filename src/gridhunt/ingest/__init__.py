"""Evidence files in, case tables out.

    report = ingest_paths(case, [Path("evidence/")], progress=None)

Files and folders (recursive, sorted) are sniffed by content and handed to the reader that
recognises them (registry.READERS). Bad input never raises and is never silent: every file gets
a FileResult and one row in `ingest_log`; unreadable, empty and unrecognised files are skipped
with the reason.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from gridhunt.ingest import winevents
from gridhunt.ingest.base import FileResult, IngestReport
from gridhunt.ingest.detect import detect, read_head
from gridhunt.ingest.windows_auth import derive_windows_auth

__all__ = ["FileResult", "IngestReport", "ingest_paths", "iter_files"]


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def iter_files(paths: Iterable[Path]) -> Iterator[tuple[Path, str | None]]:
    """(path, skip reason or None) for every file under `paths`, in sorted order per folder.

    Missing or unlistable paths come out with their OS reason instead of raising."""
    for p in paths:
        p = Path(p)
        try:
            st = p.stat()
        except OSError as exc:
            yield p, _os_reason(exc)
            continue
        if not stat.S_ISDIR(st.st_mode):
            yield p, None
            continue
        errors: list[OSError] = []
        walk = os.walk(p, onerror=errors.append)
        for root, dirs, files in walk:
            dirs.sort()
            # a folder we cannot list is reported where it would have been read
            for exc in errors:
                yield Path(exc.filename or root), _os_reason(exc)
            errors.clear()
            for name in sorted(files):
                yield Path(root) / name, None
        for exc in errors:
            yield Path(exc.filename or p), _os_reason(exc)


def _accepts_progress(fn: Any) -> bool:
    try:
        return "progress" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _ingest_one(case: Any, path: Path, advance: Any) -> FileResult:
    shown = str(path.absolute())
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            # FIFOs and devices would block or never end
            return FileResult(shown, None, skipped_reason="not a regular file")
        if st.st_size == 0:
            return FileResult(shown, None, skipped_reason="empty file")
        head = read_head(path)
    except OSError as exc:
        return FileResult(shown, None, skipped_reason=_os_reason(exc))
    found = detect(path, head)
    if found is None:
        return FileResult(shown, None, skipped_reason="unrecognised format")
    name, fmt = found
    from gridhunt.ingest.registry import READERS

    reader = READERS[name]
    started = time.perf_counter()
    try:
        if advance is not None and _accepts_progress(reader.ingest):
            result = reader.ingest(case, path, fmt, progress=advance)  # type: ignore[call-arg]
        else:
            result = reader.ingest(case, path, fmt)
    except OSError as exc:
        return FileResult(shown, fmt, skipped_reason=_os_reason(exc), seconds=time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - a reader bug must not stop the run, nor be silent
        reason = f"reader failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        seconds = time.perf_counter() - started
        return FileResult(shown, fmt, records_bad=1, errors=[("", reason)], seconds=seconds)
    return result


def _log(case: Any, results: list[FileResult]) -> None:
    if not results:
        return
    cols = (
        "path",
        "format",
        "records_ok",
        "records_bad",
        "first_error",
        "seconds",
        "skipped_reason",
        "records_ignored",
        "notes",
    )
    tbl = pa.table(
        {
            "path": pa.array([r.path for r in results], pa.string()),
            "format": pa.array([r.format for r in results], pa.string()),
            "records_ok": pa.array([r.records_ok for r in results], pa.int64()),
            "records_bad": pa.array([r.records_bad for r in results], pa.int64()),
            "first_error": pa.array([r.first_error for r in results], pa.string()),
            "seconds": pa.array([r.seconds for r in results], pa.float64()),
            "skipped_reason": pa.array([r.skipped_reason for r in results], pa.string()),
            "records_ignored": pa.array([r.records_ignored for r in results], pa.int64()),
            "notes": pa.array([r.notes for r in results], pa.list_(pa.string())),
        }
    )
    name = "_gh_ingest_log"
    case.con.register(name, tbl)
    try:
        case.con.execute(f"INSERT INTO ingest_log ({', '.join(cols)}) SELECT {', '.join(cols)} FROM {name}")
    finally:
        case.con.unregister(name)


def ingest_paths(case: Any, paths: Iterable[Path], progress: Any = None) -> IngestReport:
    """Ingest files and folders into `case`. `progress`: an optional rich.progress.Progress;
    one task advances by bytes as batches are written.

    Windows events of all files go through one WinEventSink (shared batches, INSERTs in a
    background thread, one transaction per ~COMMIT_RECORDS rows). If the database fails, the
    files whose rows were not committed yet are read again one transaction per file, exactly as
    without the sink, and the rest of the run continues that way."""
    files = list(iter_files(paths))
    task = None
    if progress is not None:
        total = 0
        for p, reason in files:
            if reason is None:
                with contextlib.suppress(OSError):
                    total += p.stat().st_size
        task = progress.add_task("ingest", total=total or None)
    report = IngestReport()
    first_uid = case.next_event_uid()
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(winevents.run_sink(case)) if _can_share_transaction(case) else None

        def recover() -> None:
            # the database failed under the sink: redo its uncommitted files one by one
            nonlocal sink
            assert sink is not None
            redo = list(sink.uncommitted)
            sink.abort()
            winevents.detach_sink(case, sink)
            sink = None
            for i in redo:
                report.files[i] = _timed(case, files[i][0], None)

        for index, (path, reason) in enumerate(files):
            if reason is not None:
                result = FileResult(str(path.absolute()), None, skipped_reason=reason)
            else:
                advance = None
                before = 0
                if task is not None:
                    progress.update(task, description=f"ingest {path.name}")
                    before = progress.tasks[task].completed if hasattr(progress, "tasks") else 0

                    def advance(n: int) -> None:
                        progress.advance(task, n)

                if sink is not None:
                    sink.current = index
                result = _timed(case, path, advance)
                if task is not None:
                    # readers without byte progress (or skipped files) still move the bar by their size
                    try:
                        size = path.stat().st_size
                    except OSError:
                        size = 0
                    done = (progress.tasks[task].completed - before) if hasattr(progress, "tasks") else 0
                    if size > done:
                        progress.advance(task, size - done)
            report.files.append(result)
            if sink is not None:
                if sink.error is None and sink.since_commit >= winevents.COMMIT_RECORDS:
                    sink.commit()
                if sink.error is not None:
                    recover()
        if sink is not None:
            sink.close()
            if sink.error is not None:
                recover()
    _log(case, report.files)
    if case.next_event_uid() > first_uid:
        case.register_win_fields(first_uid)
        report.auth_rows_from_windows = derive_windows_auth(case, first_uid)
    return report


def _timed(case: Any, path: Path, advance: Any) -> FileResult:
    started = time.perf_counter()
    result = _ingest_one(case, path, advance)
    if not result.seconds:
        result.seconds = time.perf_counter() - started
    return result


def _can_share_transaction(case: Any) -> bool:
    """False when the caller holds a transaction on case.con: writers then write inside it."""
    try:
        case.con.execute("BEGIN TRANSACTION")
    except Exception:  # noqa: BLE001 - duckdb.TransactionException: already in one
        return False
    case.con.execute("ROLLBACK")
    return True
