"""Zeek conn / dns / http / ssl logs, TSV (ASCII writer) or JSON lines, plain or gzip-rotated.

TSV: the header (`#separator`, `#set_separator`, `#empty_field`, `#unset_field`, `#path`,
`#fields`, `#types`) says what every column is, so columns are located by name, never by
position: Zeek versions and site policies add, drop and reorder fields. A file may hold several
header blocks (concatenated rotations); each `#fields` line starts a new block. `#path` (or the
file name prefix) tells the log type; JSON records may also carry `_path` (Corelight, Security
Onion) or be told apart by their keys.

Rows go to conn / dns / http / tls. Set and vector fields are stored comma-joined, as Zeek writes
them. Unset (`-`) becomes NULL; `(empty)` becomes '' for text and NULL for numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from gridhunt.ingest._common import (
    BadValue,
    Sink,
    epoch_text_micros,
    head_text,
    iter_json_objects,
    iter_lines,
    to_bool,
    to_float,
    to_int,
    to_micros,
    to_port,
)
from gridhunt.ingest.base import Advance, FileResult, Tally

FORMAT = "zeek"
FORMATS = ("zeek_tsv", "zeek_json")

# Zeek log path -> case table
LOG_TABLES = {"conn": "conn", "dns": "dns", "http": "http", "ssl": "tls"}

# table column -> (kind, zeek fields to try in order). Kinds are converters below.
_FIELD_MAP: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "conn": {
        "ts": ("time", ("ts",)),
        "uid": ("str", ("uid",)),
        "src_ip": ("str", ("id.orig_h",)),
        "src_port": ("port", ("id.orig_p",)),
        "dst_ip": ("str", ("id.resp_h",)),
        "dst_port": ("port", ("id.resp_p",)),
        "proto": ("str", ("proto",)),
        "service": ("str", ("service",)),
        "duration": ("float", ("duration",)),
        "bytes_out": ("count", ("orig_bytes",)),
        "bytes_in": ("count", ("resp_bytes",)),
    },
    "dns": {
        "ts": ("time", ("ts",)),
        "uid": ("str", ("uid",)),
        "src_ip": ("str", ("id.orig_h",)),
        "query": ("str", ("query",)),
        "qtype": ("str", ("qtype_name", "qtype")),
        "rcode": ("str", ("rcode_name", "rcode")),
        "answers": ("list", ("answers",)),
    },
    "http": {
        "ts": ("time", ("ts",)),
        "uid": ("str", ("uid",)),
        "src_ip": ("str", ("id.orig_h",)),
        "dst_ip": ("str", ("id.resp_h",)),
        "dst_port": ("port", ("id.resp_p",)),
        "method": ("str", ("method",)),
        "host": ("str", ("host",)),
        "uri": ("str", ("uri",)),
        "user_agent": ("str", ("user_agent",)),
        "status_code": ("count", ("status_code",)),
        "request_body_len": ("count", ("request_body_len",)),
        "response_body_len": ("count", ("response_body_len",)),
        "resp_mime_types": ("list", ("resp_mime_types",)),
    },
    "tls": {
        "ts": ("time", ("ts",)),
        "uid": ("str", ("uid",)),
        "src_ip": ("str", ("id.orig_h",)),
        "dst_ip": ("str", ("id.resp_h",)),
        "dst_port": ("port", ("id.resp_p",)),
        "version": ("str", ("version",)),
        "server_name": ("str", ("server_name",)),
        # subject/issuer: Zeek < 6 ssl.log, or ssl-log-ext; ja3: the ja3 / ja4 packages
        "subject": ("str", ("subject",)),
        "issuer": ("str", ("issuer",)),
        "ja3": ("str", ("ja3",)),
        "established": ("bool", ("established",)),
    },
}
# tables that have a `source` column
_HAS_SOURCE = {"conn", "dns"}

_NAME_TYPE = re.compile(r"^(conn|dns|http|ssl)(?=[._\-]|$)", re.IGNORECASE)
_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


def _unescape_match(m: re.Match[str]) -> str:
    code = int(m.group(1), 16)
    # printable ASCII and tab come back as themselves; other bytes stay visible as \xHH
    return chr(code) if code == 9 or 0x20 <= code < 0x7F else m.group(0)


def _unescape(s: str) -> str:
    return _ESCAPE.sub(_unescape_match, s) if "\\x" in s else s


def _log_type_from_name(path: Path) -> str | None:
    m = _NAME_TYPE.match(path.name)
    return m.group(1).lower() if m else None


def _json_log_type(obj: dict[str, Any], default: str | None) -> str | None:
    path = obj.get("_path")
    if isinstance(path, str):
        return path.lower()
    if default:
        return default
    # no _path and an uninformative file name: tell logs apart by their own fields
    if "conn_state" in obj or "orig_bytes" in obj:
        return "conn"
    if "qtype_name" in obj or "query" in obj:
        return "dns"
    if "method" in obj or "status_code" in obj:
        return "http"
    if "server_name" in obj or "cipher" in obj or "established" in obj:
        return "ssl"
    return None


def sniff(head: bytes, path: Path) -> str | None:
    text = head_text(head)
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#separator") or line.startswith("#fields") or line.startswith("#path"):
            return "zeek_tsv"
        if "\tid.orig_h\t" in line and line.startswith("ts\t"):
            return "zeek_tsv"  # LogAscii tsv=T: one bare header row, no '#' meta lines
        if line.startswith("{"):
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                return None
            if not isinstance(obj, dict):
                return None
            ident = obj.get("id")
            if "id.orig_h" in obj or (isinstance(ident, dict) and "orig_h" in ident):
                return "zeek_json"
            if isinstance(obj.get("_path"), str) and "ts" in obj and "uid" in obj:
                return "zeek_json"
        return None
    return None


# ---- value conversion -------------------------------------------------------------------------


def _conv_time(v: Any) -> int | None:
    # JSON ts: epoch number (default) or ISO 8601 text (LogAscii::json_timestamps = TS_ISO8601)
    if isinstance(v, float):
        text = repr(v)  # shortest round-trip text: exact microseconds, no float rounding
        return epoch_text_micros(text) if "e" not in text else to_micros(v)
    return to_micros(v)


def _conv_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, list):  # JSON sets / vectors: comma-joined as in TSV
        return ",".join(str(x) for x in v)
    return str(v)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "time": _conv_time,
    "str": _conv_text,
    "list": _conv_text,
    "port": to_port,
    "count": lambda v: to_int(v, 0),
    "float": to_float,
    "bool": to_bool,
}
_TEXT_KINDS = {"str", "list"}


def _tsv_int(raw: str, hi: int) -> int:
    try:
        n = int(raw)
    except ValueError:
        raise BadValue(f"not an integer: {raw!r}") from None
    if n < 0 or n > hi:
        raise BadValue(f"out of range: {raw!r}")
    return n


def _tsv_float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise BadValue(f"not a number: {raw!r}") from None


_TSV_BOOL = {"T": True, "F": False}


def _tsv_bool(raw: str) -> bool:
    try:
        return _TSV_BOOL[raw]
    except KeyError:
        raise BadValue(f"not a boolean: {raw!r}") from None


# Converters for TSV text (hot path: millions of lines), same results as _CONVERTERS
_TSV_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "time": epoch_text_micros,
    "port": lambda raw: _tsv_int(raw, 65535),
    "count": lambda raw: _tsv_int(raw, 2**63 - 1),
    "float": _tsv_float,
    "bool": _tsv_bool,
}


class _TsvBlock:
    """One header block of a TSV file: where each wanted column sits and how to convert it."""

    def __init__(self, sep: str, set_sep: str, empty: str, unset: str, log_type: str | None, fields: list[str]) -> None:
        self.sep = sep
        self.set_sep = set_sep
        self.empty = empty
        self.unset = unset
        self.log_type = log_type
        self.nfields = len(fields)
        self.table = LOG_TABLES.get(log_type or "")
        self.fields = fields
        self.plan: list[tuple[str, int, int, str, Callable[[str], Any] | None]] = []
        self.template: list[Any] = []
        self.ts_pos = self.ref_pos = -1
        self.bound = False

    def bind(self, names: list[str]) -> None:
        """Plan the conversion into the value order of the table's Sink (`Sink.names`)."""
        assert self.table is not None
        self.bound = True
        pos = {name: i for i, name in enumerate(names)}
        self.template = [None] * len(names)
        self.ts_pos, self.ref_pos = pos["ts"], pos["source_ref"]
        index = {name: i for i, name in enumerate(self.fields)}
        for col, (kind, zeek_names) in _FIELD_MAP[self.table].items():
            for name in zeek_names:
                if name in index:
                    self.plan.append((col, index[name], pos[col], kind, _TSV_CONVERTERS.get(kind)))
                    break

    def row(self, parts: list[str], ref: str) -> list[Any]:
        out = self.template.copy()  # unset ('-') fields simply stay None
        unset, empty = self.unset, self.empty
        for col, i, at, kind, conv in self.plan:
            raw = parts[i]
            if raw == unset:
                continue
            if raw == empty:
                out[at] = "" if kind in _TEXT_KINDS else None
            elif conv is not None:
                try:
                    out[at] = conv(raw)
                except BadValue as exc:
                    raise BadValue(f"{col}: {exc}") from None
            elif kind == "str":
                out[at] = _unescape(raw) if "\\x" in raw else raw
            else:
                out[at] = ",".join(_unescape(x) for x in raw.split(self.set_sep))
        if out[self.ts_pos] is None:
            raise BadValue("no ts")
        out[self.ref_pos] = ref
        return out


def _finish_row(row: dict[str, Any], ref: str) -> None:
    if row.get("ts") is None:
        raise BadValue("no ts")
    row["source_ref"] = ref


def ingest(case: Any, path: Path, fmt: str, progress: Advance | None = None) -> FileResult:
    path = Path(path).resolve()
    tally = Tally(path, fmt)
    sinks = {}
    for table in LOG_TABLES.values():
        constants = {"source_file": str(path)}
        if table in _HAS_SOURCE:
            constants["source"] = "zeek"
        sinks[table] = Sink(case, table, constants)
    skipped: dict[str, int] = {}
    if fmt == "zeek_json":
        _read_json(path, tally, sinks, skipped, progress)
    else:
        _read_tsv(path, tally, sinks, skipped, progress)
    for sink in sinks.values():
        sink.flush()
    reason = None
    if tally.ok == 0 and tally.bad == 0 and skipped:
        kinds = ", ".join(sorted(skipped))
        reason = f"zeek log type not loaded by gridhunt: {kinds}"
    return tally.result(reason)


def _read_tsv(
    path: Path, tally: Tally, sinks: dict[str, Sink], skipped: dict[str, int], progress: Advance | None
) -> None:
    name_type = _log_type_from_name(path)
    sep, set_sep, empty, unset = "\t", ",", "(empty)", "-"
    log_type: str | None = name_type
    block: _TsvBlock | None = None
    for n, line in iter_lines(path, tally, progress):
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#separator"):
                # '#separator \x09': the only header line split by a space
                sep = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), line[len("#separator") :].strip())
                sep = sep or "\t"
                log_type, block = name_type, None
                continue
            key, _, value = line[1:].partition(sep)
            if key == "set_separator":
                set_sep = value
            elif key == "empty_field":
                empty = value
            elif key == "unset_field":
                unset = value
            elif key == "path":
                log_type = value.strip().lower()
            elif key == "fields":
                block = _TsvBlock(sep, set_sep, empty, unset, log_type, value.split(sep))
            # '#types', '#open', '#close' carry nothing the columns need: fields are typed by name
            continue
        if block is None and line.startswith("ts\t") and "\tid.orig_h\t" in line:
            block = _TsvBlock("\t", ",", "(empty)", "-", log_type, line.split("\t"))  # tsv=T header
            continue
        if block is None:
            tally.bad_record(f"line {n}", "data line before any #fields header")
            continue
        if block.table is None:
            kind = block.log_type or "unknown"
            skipped[kind] = skipped.get(kind, 0) + 1
            continue
        parts = line.split(block.sep)
        if len(parts) != block.nfields:
            tally.bad_record(f"line {n}", f"expected {block.nfields} fields, got {len(parts)}")
            continue
        if not block.bound:
            block.bind(sinks[block.table].names)
        try:
            values = block.row(parts, f"line {n}")
        except BadValue as exc:
            tally.bad_record(f"line {n}", str(exc))
            continue
        sinks[block.table].add_values(values)
        tally.ok += 1


def _read_json(
    path: Path, tally: Tally, sinks: dict[str, Sink], skipped: dict[str, int], progress: Advance | None
) -> None:
    name_type = _log_type_from_name(path)
    for n, obj in iter_json_objects(path, tally, progress):
        ident = obj.get("id")
        if isinstance(ident, dict):  # nested form {"id": {"orig_h": ...}}
            for k, v in ident.items():
                obj[f"id.{k}"] = v
        log_type = _json_log_type(obj, name_type)
        table = LOG_TABLES.get(log_type or "")
        if table is None:
            kind = log_type or "unknown"
            skipped[kind] = skipped.get(kind, 0) + 1
            continue
        try:
            row: dict[str, Any] = {}
            for col, (kind, names) in _FIELD_MAP[table].items():
                value = next((obj[k] for k in names if obj.get(k) is not None), None)
                try:
                    row[col] = None if value is None else _CONVERTERS[kind](value)
                except BadValue as exc:
                    raise BadValue(f"{col}: {exc}") from None
            _finish_row(row, f"line {n}")
        except BadValue as exc:
            tally.bad_record(f"line {n}", str(exc))
            continue
        sinks[table].add(row)
        tally.ok += 1
