"""Binary EVTX files via the Rust `evtx` parser.

Python only collects each record's JSON text into a list; `WinEventWriter` does the rest in
DuckDB. Inside `ingest_paths` the INSERTs run in the WinEventSink's writer thread, so the Rust
parser (this thread) and DuckDB work overlap, across file boundaries too.

Damaged files: the `evtx` iterator raises on a bad record or chunk and the next `next()` goes on
with the rest, so each error is counted and reading continues (stopping at the first error loses
up to 95% of a damaged file).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import evtx as _evtx

from gridhunt.ingest.base import Advance, FileResult, Tally
from gridhunt.ingest.detect import EVTX_MAGIC
from gridhunt.ingest.winevents import WinEventWriter

FORMAT = "evtx"
FORMATS = ("evtx",)

BATCH_RECORDS = 20_000
# A reader that raises this often in a row without one good record is not going to recover.
MAX_CONSECUTIVE_ERRORS = 100_000

_CHUNK_MAGIC = b"ElfChnk\x00"
_CHUNK_SIZE = 65536
_HEADER_SIZE = 4096
_RE_CHUNK = re.compile(r"chunk number (\d+)")
_RE_RECORD = re.compile(r"record number (\d+)")


def sniff(head: bytes, path: Path) -> str | None:
    return "evtx" if head.startswith(EVTX_MAGIC) else None


@dataclass(frozen=True)
class _Chunk:
    index: int
    first_id: int
    last_id: int


def chunk_table(path: Path) -> list[_Chunk]:
    """Record-id range of every chunk whose header is intact (reads 40 bytes per 64 KiB).

    Used to size progress and to name the chunk of an error the parser reports without one."""
    out: list[_Chunk] = []
    with open(path, "rb") as f:
        index = 0
        while True:
            f.seek(_HEADER_SIZE + index * _CHUNK_SIZE)
            head = f.read(40)
            if len(head) < 40:
                break
            if head[:8] == _CHUNK_MAGIC:
                first_id, last_id = struct.unpack_from("<QQ", head, 24)
                if first_id <= last_id and last_id - first_id < 1_000_000:
                    out.append(_Chunk(index, first_id, last_id))
            index += 1
    return out


def _chunk_of(chunks: list[_Chunk], record_id: int | None) -> int | None:
    if record_id is None:
        return None
    for c in chunks:
        if c.first_id <= record_id <= c.last_id:
            return c.index
    return None


def truncation(path: Path, size: int) -> tuple[str, str] | None:
    """(position, reason) when the file ends before the chunks its header lists.

    The parser stops quietly at a cut-off chunk; this makes the loss visible."""
    with open(path, "rb") as f:
        header = f.read(_HEADER_SIZE)
    if len(header) < 44:
        return "file header", f"file is {size} bytes, shorter than the EVTX header"
    (n_chunks,) = struct.unpack_from("<H", header, 42)
    body = size - _HEADER_SIZE
    whole, part = divmod(max(body, 0), _CHUNK_SIZE)
    if part:
        return f"chunk {whole}", f"file truncated: ends {part} bytes into chunk {whole}"
    if whole < n_chunks:
        return f"chunk {whole}", f"file truncated: header lists {n_chunks} chunks, file holds {whole}"
    return None


def _position(message: str, last_id: int | None, chunks: list[_Chunk]) -> str:
    """'chunk C record R' from what the parser says, else from the last good record."""
    m = _RE_CHUNK.search(message)
    if m:
        return f"chunk {m.group(1)}"
    m = _RE_RECORD.search(message)
    if m:
        rid = int(m.group(1))
        chunk = _chunk_of(chunks, rid)
        return f"chunk {chunk} record {rid}" if chunk is not None else f"record {rid}"
    if last_id is None:
        return "before the first record"
    chunk = _chunk_of(chunks, last_id)
    where = f"chunk {chunk} " if chunk is not None else ""
    return f"{where}after record {last_id}"


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    # The parser prefixes most messages with the position we already report.
    text = re.sub(r"^Failed to parse (chunk|record) number \d+: ", "", text)
    return text[:500]


_Batch = tuple[list[str], int | None]  # (record JSON texts, last record id)
_Error = tuple[str, str]  # (position, reason)


def _records(path: Path, chunks: list[_Chunk]) -> Iterator[_Batch | _Error]:
    """Batches of record JSON, with errors in between, in file order; never raises for bad data."""
    parser = _evtx.PyEvtxParser(str(path))
    it = parser.records_json()
    data: list[str] = []
    append = data.append
    last_id: int | None = None
    r: dict[str, Any] | None = None
    r_at_error: dict[str, Any] | None = None
    consecutive = 0
    while True:
        try:
            # Fast path: a plain for loop, no per-record try. On an error the for loop exits with
            # the exception and the while loop re-enters it, resuming the same iterator.
            for r in it:
                append(r["data"])
                if len(data) >= BATCH_RECORDS:
                    last_id = r["event_record_id"]
                    yield data, last_id
                    data = []
                    append = data.append
            break
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - pyo3 PanicException is a BaseException
            if r is not None:
                last_id = r["event_record_id"]
            if data:
                yield data, last_id
                data = []
                append = data.append
            yield _position(str(exc), last_id, chunks), _reason(exc)
            # no good record since the previous error: count towards giving up
            consecutive = consecutive + 1 if r is r_at_error else 1
            r_at_error = r
            if consecutive >= MAX_CONSECUTIVE_ERRORS:
                yield "", f"gave up after {consecutive} consecutive errors"
                break
    if data:
        yield data, (r["event_record_id"] if r is not None else last_id)


def ingest(case: Any, path: Path, fmt: str = "evtx", progress: Advance | None = None) -> FileResult:
    path = Path(path).resolve()
    tally = Tally(path, fmt)
    try:
        chunks = chunk_table(path)
        size = path.stat().st_size
    except OSError as exc:
        return tally.result(f"unreadable: {exc.strerror or exc}")
    expected = sum(c.last_id - c.first_id + 1 for c in chunks) or 1
    done_bytes = 0

    def advance(records: int) -> None:
        nonlocal done_bytes
        if progress is None:
            return
        target = min(size, size * tally.ok // expected) if records >= 0 else size
        if target > done_bytes:
            progress(target - done_bytes)
            done_bytes = target

    try:
        _evtx.PyEvtxParser(str(path))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the parser rejects the header
        return tally.result(f"not a readable EVTX file: {_reason(exc)}")

    with WinEventWriter(case, str(path)) as writer:
        for item in _records(path, chunks):
            if isinstance(item[0], list):
                batch = item[0]
                writer.write(batch)
                tally.ok += len(batch)
                advance(len(batch))
            else:
                pos, reason = item  # type: ignore[misc]
                tally.bad_record(pos, reason)
        for note in writer.notes:
            tally.errors.append(("", note))
    cut = truncation(path, size)
    if cut is not None:
        tally.bad_record(*cut)
    advance(-1)
    return tally.result()
