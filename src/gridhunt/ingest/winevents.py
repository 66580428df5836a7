"""The one place that turns evtx_dump-shaped JSON text into `win_events` rows.

Every Windows-event reader (EVTX, evtx_dump JSON, Winlogbeat, Splunk) hands batches of
`{"Event": {...}}` JSON strings to `WinEventWriter.write`; DuckDB does all JSON work in C++ in
one INSERT per batch: `json_extract_string(data, [paths])` pulls the System fields plus the
EventData / UserData sub-objects, and `json_keys` + a `$.*` wildcard turn those into the key and
value lists of the `fields` MAP. `ingest_paths` registers the new field names once per run
and rebuilds the `win_events` view (one column per field) then.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from gridhunt.case import WIN_EVENTS_TABLE

TABLE = WIN_EVENTS_TABLE
_BATCH = "_gh_win_batch"

# Index (1-based, DuckDB lists) into the stage list `b`.
_PATHS = (
    "$.Event.System.EventID",  # 1
    '$.Event.System.EventID."#text"',  # 2  EventID with Qualifiers attribute
    '$.Event.System.TimeCreated."#attributes".SystemTime',  # 3
    "$.Event.System.Computer",  # 4
    "$.Event.System.Channel",  # 5
    '$.Event.System.Provider."#attributes".Name',  # 6
    "$.Event.System.EventRecordID",  # 7
    "$.Event.System.Level",  # 8
    "$.Event.System.Task",  # 9
    "$.Event.System.Opcode",  # 10
    "$.Event.System.Keywords",  # 11
    '$.Event.System.Security."#attributes".UserID',  # 12
    '$.Event.System.Execution."#attributes".ProcessID',  # 13
    '$.Event.System.Execution."#attributes".ThreadID',  # 14
    "$.Event.EventData",  # 15
    "$.Event.UserData",  # 16
)

# Base columns.
_BASE_SELECT = """uid AS event_uid,
    TRY_CAST(b[3] AS TIMESTAMPTZ) AS ts,
    b[4] AS computer,
    b[5] AS channel,
    b[6] AS provider,
    TRY_CAST(coalesce(b[2], b[1]) AS INTEGER) AS event_id,
    TRY_CAST(b[7] AS BIGINT) AS record_id,
    TRY_CAST(b[8] AS INTEGER) AS level,
    TRY_CAST(b[9] AS INTEGER) AS task,
    TRY_CAST(b[10] AS INTEGER) AS opcode,
    b[11] AS keywords,
    b[12] AS user_sid,
    TRY_CAST(b[13] AS BIGINT) AS process_id,
    TRY_CAST(b[14] AS BIGINT) AS thread_id,
    src AS source_file,
    coalesce(ref, b[7]) AS source_ref,
    data AS raw"""


def _arrow_strings(values: Sequence[str]) -> pa.Array:
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowException, UnicodeEncodeError):
        # Lone surrogates from broken UTF-16 in a record: keep the record, replace the bad units.
        return pa.array(
            [v.encode("utf-8", "replace").decode("utf-8") if isinstance(v, str) else v for v in values],
            pa.string(),
        )


class WinEventWriter:
    """Appends evtx_dump-shaped JSON records of one source file to `win_events`.

    Use as a context manager. Inside `ingest_paths` (a `WinEventSink` is open for the case) the
    records join the run's shared batches; otherwise the whole file is one transaction of its own.
    Either way a file whose reader raises leaves no rows behind and its event_uids are reused by
    the next file, and a file that completes keeps consecutive event_uids in reading order."""

    def __init__(self, case: Any, source_file: str) -> None:
        self.case = case
        self.con: duckdb.DuckDBPyConnection = case.con
        self.source_file = source_file
        self.sink: WinEventSink | None = _SINKS.get(id(case))
        if self.sink is not None and self.sink.case is not case:
            self.sink = None
        self.next_uid = 0
        self.written = 0
        self.notes: list[str] = []  # one-off warnings for the file's report
        self._own_tx = False
        self._mark: tuple[int, int, int] | None = None

    # -- transaction -------------------------------------------------------------------------

    def __enter__(self) -> WinEventWriter:
        if self.sink is not None:
            self._mark = self.sink.begin_file()
            return self
        self.next_uid = self.case.next_event_uid()
        try:
            self.con.execute("BEGIN TRANSACTION")
            self._own_tx = True
        except duckdb.TransactionException:
            self._own_tx = False  # the caller already holds a transaction; write inside it
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.sink is not None:
            if exc_type is not None and self._mark is not None:
                self.sink.discard_file(self._mark)
                self.written = 0
            return
        if not self._own_tx:
            return
        if exc_type is None:
            self.con.execute("COMMIT")
        else:
            self.con.execute("ROLLBACK")
            self.written = 0

    # -- writing -----------------------------------------------------------------------------

    def write(self, data: Sequence[str], refs: Sequence[str | None] | None = None) -> int:
        """Insert one batch. `refs` (source_ref per record) defaults to the EventRecordID."""
        n = len(data)
        if n == 0:
            return 0
        if self.sink is not None:
            self.sink.add(self.source_file, data, refs)
        else:
            uid0 = self.next_uid
            _insert(self.con, _batch_table(uid0, [(self.source_file, n, refs)], data))
            self.next_uid += n
        self.written += n
        return n


def _batch_table(uid0: int, segments: Sequence[tuple[str, int, Sequence[str | None] | None]], data: Any) -> pa.Table:
    """Arrow batch: consecutive uids from uid0; `segments` = (source_file, records, refs or None)
    in order; `data` the JSON texts of all segments (a list or an Arrow string array)."""
    n = sum(count for _, count, _ in segments)
    names = [src for src, _, _ in segments]
    if len(set(names)) == 1:
        src = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array(names[:1], pa.string()))
    else:
        codes: dict[str, int] = {}
        idx = np.repeat(
            np.array([codes.setdefault(s, len(codes)) for s in names], np.int32),
            [count for _, count, _ in segments],
        )
        src = pa.DictionaryArray.from_arrays(pa.array(idx), pa.array(list(codes), pa.string()))
    if all(refs is None for _, _, refs in segments):
        ref = pa.nulls(n, pa.string())
    else:
        flat: list[str | None] = []
        for _, count, refs in segments:
            flat.extend(refs if refs is not None else [None] * count)
        ref = pa.array(flat, pa.string())
    return pa.table(
        {
            "uid": pa.array(np.arange(uid0, uid0 + n, dtype=np.int64)),
            "src": src,
            "ref": ref,
            "data": data if isinstance(data, pa.Array) else _arrow_strings(data),
        }
    )


def _insert(con: duckdb.DuckDBPyConnection, tbl: pa.Table) -> None:
    # DuckDB scans one Arrow record batch per thread: split so both cores do the JSON work
    # (measured 0.55 s -> 0.35 s for 72k records); preserve_insertion_order keeps uid order.
    tbl = pa.Table.from_batches(tbl.to_batches(max_chunksize=max(4096, tbl.num_rows // 4 + 1)))
    con.register(_BATCH, tbl)
    try:
        con.execute(_INSERT_SQL)
    finally:
        con.unregister(_BATCH)


# Records of all files are buffered and written in batches of about this size (a DuckDB INSERT
# has a fixed cost of a few ms, so one per small file dominated runs of many small files).
FLUSH_RECORDS = 32_768
FLUSH_BYTES = 48 << 20
# The run's transaction is committed at the first file boundary after this many rows; a
# database failure then costs at most this much re-reading (see ingest_paths).
COMMIT_RECORDS = 250_000


class WinEventSink:
    """Run-level buffer behind every `WinEventWriter` of one `ingest_paths` run.

    Records of consecutive files share batches; a background thread INSERTs them on its own
    cursor (DuckDB releases the GIL, so parsing the next file overlaps the INSERT) in one
    transaction that `commit()` ends at a file boundary. Uids are allocated in reading order, so
    the rows are the same as with one transaction per file. A database error is kept in `error`
    (never raised into a reader); the caller then calls `abort()` and redoes the files in
    `uncommitted` one transaction per file."""

    def __init__(self, case: Any) -> None:
        self.case = case
        self.cur: duckdb.DuckDBPyConnection = case.con.cursor()
        self.next_uid = case.next_event_uid()
        self._flushed_uid = self.next_uid  # uids below this were handed to the writer thread
        self._segments: list[tuple[str, int, Sequence[str | None] | None]] = []
        self._data: list[str] = []
        self._bytes = 0
        self._file_seg0 = 0  # segments from this index on belong to the file being read
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(1)
        self._thread: threading.Thread | None = None
        self._in_tx = False
        self.since_commit = 0
        self.error: BaseException | None = None
        self.current: Any = None  # the caller's tag for the file being read
        self.uncommitted: list[Any] = []  # tags of files with rows not yet committed

    # -- per file ----------------------------------------------------------------------------

    def begin_file(self) -> tuple[int, int, int]:
        if not self.uncommitted or self.uncommitted[-1] is not self.current:
            self.uncommitted.append(self.current)
        self._file_seg0 = len(self._segments)
        return self.next_uid, len(self._segments), len(self._data)

    def discard_file(self, mark: tuple[int, int, int]) -> None:
        """Drop every row written since `mark` and give their uids back."""
        uid, nseg, ndata = mark
        if uid < self._flushed_uid:
            # part of the file was flushed: everything still pending is the rest of it
            self._segments, self._data, self._bytes = [], [], 0
            self._drain()
            if self.error is None:
                try:
                    self.cur.execute(f"DELETE FROM {TABLE} WHERE event_uid >= ?", [uid])
                except Exception as exc:  # noqa: BLE001 - kept for the caller, see class doc
                    self.error = exc
            self._flushed_uid = uid
        else:
            del self._segments[nseg:]
            del self._data[ndata:]
            self._bytes = sum(map(len, self._data))
        self.since_commit -= self.next_uid - uid
        self.next_uid = uid

    def add(self, source_file: str, data: Sequence[str], refs: Sequence[str | None] | None) -> None:
        n = len(data)
        last = self._segments[-1] if len(self._segments) > self._file_seg0 else None
        if last is not None and last[0] == source_file and (last[2] is None) == (refs is None):
            _, count, old = self._segments[-1]
            merged = None if refs is None else [*old, *refs]  # type: ignore[misc]
            self._segments[-1] = (source_file, count + n, merged)
        else:
            self._segments.append((source_file, n, list(refs) if refs is not None else None))
        self._data.extend(data)
        self._bytes += sum(map(len, data))
        self.next_uid += n
        self.since_commit += n
        if len(self._data) >= FLUSH_RECORDS or self._bytes >= FLUSH_BYTES:
            self.flush()

    # -- batches -----------------------------------------------------------------------------

    def flush(self) -> None:
        if not self._data:
            return
        tbl = _batch_table(self._flushed_uid, self._segments, self._data)
        self._flushed_uid += tbl.num_rows
        self._segments = []
        self._data = []
        self._bytes = 0
        self._file_seg0 = 0
        if self.error is not None:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="gridhunt-winevents", daemon=True)
            self._thread.start()
        self._queue.put(tbl)

    def _work(self) -> None:
        while True:
            tbl = self._queue.get()
            try:
                if tbl is None:
                    return
                if self.error is not None:
                    continue
                try:
                    if not self._in_tx:
                        self.cur.execute("BEGIN TRANSACTION")
                        self._in_tx = True
                    _insert(self.cur, tbl)
                except Exception as exc:  # noqa: BLE001 - kept for the caller, see class doc
                    self.error = exc
            finally:
                self._queue.task_done()

    def _drain(self) -> None:
        """Wait until the writer thread has inserted every batch handed to it."""
        if self._thread is not None:
            self._queue.join()

    def commit(self) -> None:
        """Flush and commit; afterwards `uncommitted` is empty unless `error` is set."""
        self.flush()
        self._drain()
        if self.error is None and self._in_tx:
            try:
                self.cur.execute("COMMIT")
                self._in_tx = False
            except Exception as exc:  # noqa: BLE001 - kept for the caller, see class doc
                self.error = exc
        if self.error is None:
            self.since_commit = 0
            self.uncommitted = []

    def abort(self) -> None:
        """Roll back everything not committed; the sink is unusable afterwards."""
        self._segments, self._data = [], []
        if self.error is None:
            self.error = RuntimeError("aborted")
        self._stop()
        if self._in_tx:
            with contextlib.suppress(Exception):
                self.cur.execute("ROLLBACK")
            self._in_tx = False

    def _stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Commit what is left and stop the writer thread (check `error` afterwards)."""
        if self.error is None:
            self.commit()
        self._stop()
        with contextlib.suppress(Exception):
            self.cur.close()


_SINKS: dict[int, WinEventSink] = {}


@contextlib.contextmanager
def run_sink(case: Any) -> Iterator[WinEventSink]:
    """Route every WinEventWriter of `case` through one WinEventSink while the block runs."""
    sink = WinEventSink(case)
    _SINKS[id(case)] = sink
    try:
        yield sink
    except BaseException:
        sink.abort()
        raise
    finally:
        if _SINKS.get(id(case)) is sink:
            del _SINKS[id(case)]
        sink._stop()


def detach_sink(case: Any, sink: WinEventSink) -> None:
    """Stop routing writers of `case` through `sink` (after a database failure)."""
    if _SINKS.get(id(case)) is sink:
        del _SINKS[id(case)]


_INSERT_SQL = f"""
INSERT INTO {TABLE} BY NAME
SELECT {_BASE_SELECT},
    -- a record whose keys cannot form a map (duplicates) keeps its fields in raw only
    try(map(list_transform(k, lambda x: CASE WHEN x = '#text' THEN 'Data' ELSE x END),
            list_transform(v, lambda x: CASE WHEN starts_with(x, '{{"#text":')
                THEN coalesce(try(json_extract_string(x, '$."#text"')), x) ELSE x END))) AS fields
FROM (
    SELECT uid, src, ref, data, b,
        CASE
            WHEN ek IS NOT NULL THEN list_filter(ek, lambda x: x <> '#attributes')
            WHEN b[15] IS NOT NULL THEN ['Data']  -- EventData that is text or a list
            WHEN uk IS NOT NULL AND len(uk) = len(uv) THEN uk
            WHEN b[16] IS NOT NULL THEN ['UserData']
        END AS k,
        CASE
            WHEN ek IS NOT NULL THEN list_filter(ev, lambda x, i: ek[i] <> '#attributes')
            WHEN b[15] IS NOT NULL THEN [b[15]]
            WHEN uk IS NOT NULL AND len(uk) = len(uv) THEN uv
            WHEN b[16] IS NOT NULL THEN [b[16]]
        END AS v
    FROM (
        SELECT uid, src, ref, data, b,
            -- try(): a text value that merely starts with a brace must not fail the batch
            CASE WHEN starts_with(b[15], '{{') THEN try(json_keys(b[15])) END AS ek,
            CASE WHEN starts_with(b[15], '{{') THEN try(json_extract_string(b[15], '$.*')) END AS ev,
            CASE WHEN starts_with(b[16], '{{') THEN try(flatten(json_keys(b[16], '$.*'))) END AS uk,
            CASE WHEN starts_with(b[16], '{{') THEN try(json_extract_string(b[16], '$.*.*')) END AS uv
        FROM (
            SELECT uid, src, ref, data, json_extract_string(data, [{", ".join(repr(p) for p in _PATHS)}]) AS b
            FROM {_BATCH}
        )
    )
)
"""
