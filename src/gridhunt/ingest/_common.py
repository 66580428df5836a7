"""Shared plumbing for the line/record readers (zeek, netlog, ami, context).

Private: readers only. Rows are buffered per column and written to DuckDB as one Arrow
table per batch (`INSERT ... BY NAME`), never row by row.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from gridhunt.ingest.base import Advance, Tally

BATCH_ROWS = 50_000
GZIP_MAGIC = b"\x1f\x8b"

TS = pa.timestamp("us", tz="UTC")
STR = pa.string()
INT = pa.int32()
BIGINT = pa.int64()
DOUBLE = pa.float64()
BOOL = pa.bool_()
STR_LIST = pa.list_(pa.string())

# Arrow types of the case tables this package writes; must match case.py column types.
SCHEMAS: dict[str, dict[str, pa.DataType]] = {
    "auth": {
        "ts": TS,
        "user": STR,
        "domain": STR,
        "src_ip": STR,
        "src_host": STR,
        "dst_host": STR,
        "outcome": STR,
        "logon_type": STR,
        "auth_package": STR,
        "failure_reason": STR,
        "source": STR,
        "source_file": STR,
        "source_ref": STR,
        "event_id": INT,
        "status": STR,
        "sub_status": STR,
        "service": STR,
        "ticket_options": STR,
        "ticket_encryption": STR,
        "pre_auth_type": STR,
        "subject_user": STR,
    },
    "geo_networks": {
        "cidr": STR,
        "country": STR,
        "asn": STR,
        "org": STR,
        "lat": DOUBLE,
        "lon": DOUBLE,
        "source_file": STR,
        "source_ref": STR,
    },
    "conn": {
        "ts": TS,
        "src_ip": STR,
        "src_port": INT,
        "dst_ip": STR,
        "dst_port": INT,
        "proto": STR,
        "service": STR,
        "duration": DOUBLE,
        "bytes_out": BIGINT,
        "bytes_in": BIGINT,
        "action": STR,
        "uid": STR,
        "source": STR,
        "source_file": STR,
        "source_ref": STR,
    },
    "dns": {
        "ts": TS,
        "src_ip": STR,
        "query": STR,
        "qtype": STR,
        "rcode": STR,
        "answers": STR,
        "uid": STR,
        "source": STR,
        "source_file": STR,
        "source_ref": STR,
    },
    "http": {
        "ts": TS,
        "uid": STR,
        "src_ip": STR,
        "dst_ip": STR,
        "dst_port": INT,
        "method": STR,
        "host": STR,
        "uri": STR,
        "user_agent": STR,
        "status_code": INT,
        "request_body_len": BIGINT,
        "response_body_len": BIGINT,
        "resp_mime_types": STR,
        "source_file": STR,
        "source_ref": STR,
    },
    "tls": {
        "ts": TS,
        "uid": STR,
        "src_ip": STR,
        "dst_ip": STR,
        "dst_port": INT,
        "version": STR,
        "server_name": STR,
        "subject": STR,
        "issuer": STR,
        "ja3": STR,
        "established": BOOL,
        "source_file": STR,
        "source_ref": STR,
    },
    "ami_audit": {
        "ts": TS,
        "system": STR,
        "user": STR,
        "src_ip": STR,
        "action": STR,
        "target_type": STR,
        "target_id": STR,
        "target_count": BIGINT,
        "params": STR,
        "result": STR,
        "source_file": STR,
        "source_ref": STR,
    },
    "assets": {
        "asset_id": STR,
        "hostname": STR,
        "ips": STR_LIST,
        "zone": STR,
        "role": STR,
        "owner": STR,
        "vendor": STR,
        "criticality": STR,
        "source_file": STR,
        "source_ref": STR,
    },
    "zones": {
        "name": STR,
        "cidrs": STR_LIST,
        "level": INT,
        "source_file": STR,
        "source_ref": STR,
        "kind": STR,
        "assets": STR_LIST,
        "roles": STR_LIST,
    },
    "conduits": {
        "from_zone": STR,
        "to_zone": STR,
        "proto": STR,
        "ports": STR,
        "via_host": STR,
        "source_file": STR,
        "source_ref": STR,
    },
    "vendors": {
        "vendor": STR,
        "incident_start": TS,
        "incident_end": TS,
        "source_file": STR,
        "source_ref": STR,
        "contact": STR,
    },
    "vendor_access": {
        "vendor": STR,
        "kind": STR,
        "identifier": STR,
        "owner": STR,
        "last_rotated": TS,
        "source_file": STR,
        "source_ref": STR,
        "rotate_by": TS,
        "expires": TS,
        "attrs": STR,
    },
    "secrets": {
        "secret_id": STR,
        "kind": STR,
        "owner_vendor": STR,
        "last_rotated": TS,
        "expires": TS,
        "source_file": STR,
        "source_ref": STR,
        "attrs": STR,
    },
    "updates": {
        "ts_applied": TS,
        "target": STR,
        "product": STR,
        "version": STR,
        "vendor": STR,
        "artifact_sha256": STR,
        "signature_ref": STR,
        "channel": STR,
        "artifact_path": STR,
        "source_file": STR,
        "source_ref": STR,
    },
    "change_windows": {
        "window_start": TS,
        "window_end": TS,
        "ticket": STR,
        "system": STR,
        "description": STR,
        "source_file": STR,
        "source_ref": STR,
    },
    "x509": {
        "ts": TS,
        "fingerprint": STR,
        "fuid": STR,
        "version": INT,
        "serial": STR,
        "subject": STR,
        "issuer": STR,
        "not_valid_before": TS,
        "not_valid_after": TS,
        "key_alg": STR,
        "key_length": INT,
        "san_dns": STR,
        "basic_constraints_ca": BOOL,
        "host_cert": BOOL,
        "client_cert": BOOL,
        "source_file": STR,
        "source_ref": STR,
    },
    "files": {
        "ts": TS,
        "fuid": STR,
        "uid": STR,
        "tx_hosts": STR,
        "rx_hosts": STR,
        "source": STR,
        "analyzers": STR,
        "mime_type": STR,
        "filename": STR,
        "duration": DOUBLE,
        "is_orig": BOOL,
        "seen_bytes": BIGINT,
        "total_bytes": BIGINT,
        "missing_bytes": BIGINT,
        "md5": STR,
        "sha1": STR,
        "sha256": STR,
        "extracted": STR,
        "source_file": STR,
        "source_ref": STR,
    },
    "ics": {
        "ts": TS,
        "uid": STR,
        "src_ip": STR,
        "src_port": INT,
        "dst_ip": STR,
        "dst_port": INT,
        "protocol": STR,
        "function": STR,
        "direction": STR,
        "is_write": BOOL,
        "is_control": BOOL,
        "unit_or_address": STR,
        "status": STR,
        "details": STR,
        "source_file": STR,
        "source_ref": STR,
    },
}


class BadValue(ValueError):
    """A field that cannot be converted; the caller turns it into a counted bad record."""


class Sink:
    """Column buffers for one case table; flushed as an Arrow table every BATCH_ROWS rows.

    `constants` (say source_file, source) are the same for every row of a file: they are filled
    in at flush time instead of being appended per row."""

    def __init__(self, case: Any, table: str, constants: dict[str, Any] | None = None) -> None:
        self.case = case
        self.table = table
        self.types = SCHEMAS[table]
        self.constants = constants or {}
        self.cols: dict[str, list[Any]] = {n: [] for n in self.types if n not in self.constants}
        self._appends = [(n, buf.append) for n, buf in self.cols.items()]
        self.pending = 0
        self.written = 0

    @property
    def names(self) -> list[str]:
        """Order of the values `add_values` takes (the non-constant columns)."""
        return list(self.cols)

    def add_values(self, values: list[Any]) -> None:
        """One row as values in `names` order: the hot path of the Zeek TSV reader."""
        for (_, append), value in zip(self._appends, values, strict=True):
            append(value)
        self.pending += 1
        if self.pending >= BATCH_ROWS:
            self.flush()

    def add(self, row: dict[str, Any]) -> None:
        get = row.get
        for name, append in self._appends:
            append(get(name))
        self.pending += 1
        if self.pending >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        n = self.pending
        if not n:
            return
        arrays = {}
        for name, typ in self.types.items():
            values = self.cols[name] if name in self.cols else [self.constants[name]] * n
            arrays[name] = pa.array(values, type=typ)
        tbl = pa.table(arrays)
        view = f"_gridhunt_batch_{self.table}"
        con = self.case.con
        con.register(view, tbl)
        try:
            con.execute(f"INSERT INTO {self.table} BY NAME SELECT * FROM {view}")
        finally:
            con.unregister(view)
        self.written += n
        self.pending = 0
        for buf in self.cols.values():
            buf.clear()


def head_text(head: bytes, limit: int = 65536) -> str:
    """The start of a file as text, gunzipping a gzip head (sniffers see raw bytes)."""
    if head.startswith(GZIP_MAGIC):
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, limit)
        except zlib.error:
            return ""
    return head[:limit].decode("utf-8", errors="replace").lstrip("\ufeff")


class TextSource:
    """Text stream over a plain or gzip file (by magic bytes, not by extension) that reports
    progress in bytes of the file on disk (compressed bytes for gzip) to an optional callback."""

    EVERY = 4096  # records between progress calls

    def __init__(self, path: Path, progress: Advance | None = None) -> None:
        self.raw = open(path, "rb")  # noqa: SIM115 - closed in close()
        gz = self.raw.read(2) == GZIP_MAGIC
        self.raw.seek(0)
        binary: Any = gzip.GzipFile(fileobj=self.raw, mode="rb") if gz else self.raw
        self.text = io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="")
        self.progress = progress
        self.reported = 0
        self.count = 0

    def tick(self) -> None:
        self.count += 1
        if self.progress is not None and self.count % self.EVERY == 0:
            self._report()

    def _report(self) -> None:
        if self.progress is None or self.raw.closed:
            return
        pos = self.raw.tell()
        if pos > self.reported:
            self.progress(pos - self.reported)
            self.reported = pos

    def close(self) -> None:
        self._report()
        self.text.close()
        self.raw.close()

    def __enter__(self) -> TextSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_lines(path: Path, tally: Tally, progress: Advance | None = None) -> Iterator[tuple[int, str]]:
    """(line number, line without EOL). A truncated/corrupt gzip ends the file with one bad record
    instead of an exception, so what was read before it is kept."""
    n = 0
    try:
        with TextSource(path, progress) as src:
            for n, line in enumerate(src.text, 1):  # noqa: B007 - n is needed after the loop
                src.tick()
                yield n, line.rstrip("\r\n")
    except (EOFError, OSError, zlib.error) as exc:
        tally.bad_record(f"line {n + 1}", f"unreadable after line {n}: {exc}")


def iter_json_objects(path: Path, tally: Tally, progress: Advance | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each JSON-object line; blank lines skipped, bad ones counted."""
    for n, line in iter_lines(path, tally, progress):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            tally.bad_record(f"line {n}", f"invalid JSON: {exc}")
            continue
        if not isinstance(obj, dict):
            tally.bad_record(f"line {n}", "not a JSON object")
            continue
        yield n, obj


def iter_csv_records(
    path: Path,
    tally: Tally,
    progress: Advance | None,
    required: Iterable[str],
    wanted: Iterable[str],
    rename: dict[str, str] | None = None,
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: text}) of the `wanted` columns for each CSV row with the header's
    width; a header lacking a `required` column is one bad record and nothing more is read.
    `rename` maps a vendor's own (lower-cased) column names to ours before either is checked."""
    line = 1
    try:
        with TextSource(path, progress) as source:
            reader = csv.reader(source.text)
            header = [h.strip().strip('"').lower().lstrip("\ufeff") for h in next(reader, [])]
            if rename:
                header = [rename.get(h, h) for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                tally.bad_record("line 1", f"header lacks {', '.join(missing)}")
                return
            keep = set(wanted)
            index = {name: i for i, name in enumerate(header) if name in keep}
            for record in reader:
                source.tick()
                line = reader.line_num
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                if len(record) != len(header):
                    tally.bad_record(f"line {line}", f"expected {len(header)} columns, got {len(record)}")
                    continue
                yield line, {k: record[i] for k, i in index.items()}
    except (csv.Error, EOFError, OSError) as exc:
        tally.bad_record(f"line {line + 1}", f"unreadable after line {line}: {exc}")


_ISO_FRACTION = re.compile(r"(\.\d{6})\d+")


def to_micros(value: Any) -> int | None:
    """Epoch microseconds (UTC) from ISO 8601 text, epoch seconds, date or datetime.
    Naive times are taken as UTC (FORMATS.md: all timestamps are UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadValue(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return round(value * 1_000_000)
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        s = str(value).strip()
        if not s:
            return None
        if s[0].isdigit() and s.replace(".", "", 1).isdigit():
            return epoch_text_micros(s)
        try:
            # fromisoformat takes 'Z' since 3.11 but at most 6 fraction digits
            dt = datetime.fromisoformat(_ISO_FRACTION.sub(r"\1", s))
        except ValueError:
            raise BadValue(f"bad timestamp {s!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def epoch_text_micros(s: str) -> int:
    """'1712891655.123456' -> microseconds, exact (no float rounding)."""
    sec, _, frac = s.partition(".")
    if not sec.isdigit() or (frac and not frac.isdigit()):
        raise BadValue(f"bad epoch time {s!r}")
    return int(sec) * 1_000_000 + int((frac + "000000")[:6])


def to_int(value: Any, lo: int | None = None, hi: int | None = None) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadValue(f"not an integer: {value!r}")
    try:
        n = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        n = None
    if n is None:
        # "12.0" from spreadsheets is still an integer
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise BadValue(f"not an integer: {value!r}") from None
        if not f.is_integer():
            raise BadValue(f"not an integer: {value!r}")
        n = int(f)
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise BadValue(f"out of range: {value!r}")
    return n


def to_port(value: Any) -> int | None:
    return to_int(value, 0, 65535)


def to_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadValue(f"not a number: {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BadValue(f"not a number: {value!r}") from None


def to_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("t", "true", "1", "yes", "y"):
        return True
    if s in ("f", "false", "0", "no", "n"):
        return False
    raise BadValue(f"not a boolean: {value!r}")


def to_str(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None
