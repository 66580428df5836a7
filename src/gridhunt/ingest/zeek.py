"""Zeek conn / dns / http / ssl / x509 / files and ICS logs, TSV (ASCII writer) or JSON lines, plain or gzip-rotated.

TSV: the header (`#separator`, `#set_separator`, `#empty_field`, `#unset_field`, `#path`,
`#fields`, `#types`) says what every column is, so columns are located by name, never by
position: Zeek versions and site policies add, drop and reorder fields. A file may hold several
header blocks (concatenated rotations); each `#fields` line starts a new block. `#path` (or the
file name prefix) tells the log type; JSON records may also carry `_path` (Corelight, Security
Onion) or be told apart by their keys.

Rows go to conn / dns / http / tls / x509 / files; the ICS logs (Zeek's modbus / dnp3, ICSNPP's bacnet /
enip / cip / s7comm / c1222) go to `ics` through `zeek_ics`, which maps each protocol's fields. Set and
vector fields are stored comma-joined, as Zeek writes them; a ',' inside one element stays escaped as
`\\x2c` so the list still splits.
Unset (`-`) becomes NULL; `(empty)` becomes '' for text and NULL for numbers. Escaped bytes
(`\\xHH`) are decoded where they are printable text or valid UTF-8 and stay `\\xHH` otherwise;
raw bytes that are not UTF-8 are kept the same way.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from gridhunt.ingest import zeek_ics
from gridhunt.ingest._common import (
    BadValue,
    Sink,
    TextSource,
    epoch_text_micros,
    head_text,
    iter_json_objects,
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
LOG_TABLES = {"conn": "conn", "dns": "dns", "http": "http", "ssl": "tls", "x509": "x509", "files": "files"}
LOG_TABLES.update(dict.fromkeys(zeek_ics.LOG_PROTOCOLS, "ics"))

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
        "status_code": ("count32", ("status_code",)),
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
    "x509": {
        "ts": ("time", ("ts",)),
        "fingerprint": ("str", ("fingerprint",)),  # Zeek >= 5: hash of the certificate
        "fuid": ("str", ("id",)),  # Zeek < 5: file id of the certificate
        "version": ("count32", ("certificate.version",)),
        "serial": ("str", ("certificate.serial",)),
        "subject": ("str", ("certificate.subject",)),
        "issuer": ("str", ("certificate.issuer",)),
        "not_valid_before": ("datetime", ("certificate.not_valid_before",)),
        "not_valid_after": ("datetime", ("certificate.not_valid_after",)),
        "key_alg": ("str", ("certificate.key_alg",)),
        "key_length": ("count32", ("certificate.key_length",)),
        "san_dns": ("list", ("san.dns",)),
        "basic_constraints_ca": ("bool", ("basic_constraints.ca",)),
        "host_cert": ("bool", ("host_cert",)),
        "client_cert": ("bool", ("client_cert",)),
    },
    "files": {
        "ts": ("time", ("ts",)),
        "fuid": ("str", ("fuid",)),
        "uid": ("list", ("uid", "conn_uids")),  # Zeek >= 6: uid; older: the set conn_uids
        "tx_hosts": ("list", ("tx_hosts",)),  # Zeek >= 6 has none: derived from id.* and is_orig
        "rx_hosts": ("list", ("rx_hosts",)),
        "source": ("str", ("source",)),
        "analyzers": ("list", ("analyzers",)),
        "mime_type": ("str", ("mime_type",)),
        "filename": ("str", ("filename",)),
        "duration": ("float", ("duration",)),
        "is_orig": ("bool", ("is_orig",)),
        "seen_bytes": ("count", ("seen_bytes",)),
        "total_bytes": ("count", ("total_bytes",)),
        "missing_bytes": ("count", ("missing_bytes",)),
        "md5": ("str", ("md5",)),
        "sha1": ("str", ("sha1",)),
        "sha256": ("str", ("sha256",)),
        "extracted": ("str", ("extracted",)),
    },
}
# tables with a `source` column meaning "which log source" (files.source is Zeek's own field)
_HAS_SOURCE = {"conn", "dns"}

# ICS names stop at '.' or '-' only: ICSNPP's sibling logs (bacnet_property, cip_io, dnp3_control …) differ
_NAME_TYPE = re.compile(
    r"^(?:(conn|dns|http|ssl|x509|files)(?=[._\-]|$)|(modbus|dnp3|bacnet|enip|cip|s7comm|c1222)(?=[.\-]|$))",
    re.IGNORECASE,
)
_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")
_ESCAPE_RUN = re.compile(r"(?:\\x[0-9a-fA-F]{2})+")
# JSON::TimestampFormat TS_MILLIS writes integer milliseconds; epoch seconds stay below this until 5138
_MILLIS_FROM = 100_000_000_000


def _visible(text: str, keep: str) -> str:
    """Control characters (tab aside) and the characters in `keep` as \\xHH: they must stay visible or
    escaped, as Zeek wrote them."""
    out = []
    for ch in text:
        code = ord(ch)
        if (code < 0x20 and code != 9) or code == 0x7F or ch in keep:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


def _unescape(s: str, keep: str = "") -> str:
    """Zeek's \\xHH escapes back to text. A run of escaped bytes is decoded as UTF-8 (Zeek escapes every
    non-ASCII byte unless LogAscii::enable_utf_8); bytes that are not UTF-8 stay \\xHH."""
    if "\\x" not in s:
        return s

    def run(m: re.Match[str]) -> str:
        data = bytes(int(h, 16) for h in _ESCAPE.findall(m.group(0)))
        return _visible(data.decode("utf-8", "backslashreplace"), keep)

    return _ESCAPE_RUN.sub(run, s)


def _unescape_list(raw: str, set_sep: str) -> str:
    """A TSV set/vector as comma-joined elements; a ',' inside an element stays \\x2c."""
    if set_sep == ",":
        # Zeek escaped every ',' inside an element, so the raw text is already split-safe
        return _unescape(raw, ",")
    return ",".join(_unescape(x, ",").replace(",", "\\x2c") for x in raw.split(set_sep))


def _log_type_from_name(path: Path) -> str | None:
    m = _NAME_TYPE.match(path.name)
    return (m.group(1) or m.group(2)).lower() if m else None


def _json_log_type(obj: dict[str, Any], default: str | None) -> str | None:
    path = obj.get("_path")
    if isinstance(path, str):
        return path.lower()
    if default:
        return default
    # no _path and an uninformative file name: tell logs apart by their own fields
    if "certificate.serial" in obj or "certificate.version" in obj:
        return "x509"
    if "fuid" in obj and ("seen_bytes" in obj or "analyzers" in obj or "mime_type" in obj):
        return "files"
    if "conn_state" in obj or "orig_bytes" in obj:
        return "conn"
    if "qtype_name" in obj or "query" in obj:
        return "dns"
    if "method" in obj or "status_code" in obj:
        return "http"
    if "server_name" in obj or "cipher" in obj or "established" in obj:
        return "ssl"
    return zeek_ics.json_log_type(obj)


def _flatten(obj: dict[str, Any]) -> dict[str, Any]:
    """{"id": {"orig_h": ...}} (some shippers nest records) -> {"id.orig_h": ...}, as Zeek itself writes."""
    if not any(isinstance(v, dict) for v in obj.values()):
        return obj
    flat: dict[str, Any] = {}
    for k, v in obj.items():
        if isinstance(v, dict):
            for k2, v2 in _flatten(v).items():
                flat[f"{k}.{k2}"] = v2
        else:
            flat[k] = v
    return flat


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
            # x509 and Zeek < 6 files records carry no connection id
            if "ts" in obj and ("certificate.serial" in obj or ("fuid" in obj and "seen_bytes" in obj)):
                return "zeek_json"
        return None
    return None


# ---- value conversion -------------------------------------------------------------------------


def _conv_time(v: Any) -> int | None:
    # JSON ts: epoch number (default) or ISO 8601 text (JSON::TimestampFormat / LogAscii::json_timestamps)
    if isinstance(v, float) and v >= 0:
        text = repr(v)  # shortest round-trip text: exact microseconds, no float rounding
        return epoch_text_micros(text) if "e" not in text else to_micros(v)
    return to_micros(v)


def _conv_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return str(v)


def _conv_list(v: Any) -> str | None:
    if isinstance(v, list):  # JSON sets / vectors: comma-joined as in TSV, ',' in an element escaped
        return ",".join(str(x).replace(",", "\\x2c") for x in v)
    return _conv_text(v)


# Column limits: one value past them would fail the whole Arrow batch, so it is a bad line instead
_INT32 = 2**31 - 1
_INT64 = 2**63 - 1
_EPOCH_DIGITS = 12  # seconds up to year 33658; TIMESTAMPTZ reaches 294247
_MAX_MICROS = 10**_EPOCH_DIGITS * 1_000_000

# JSON values by kind; times ("time", "datetime") go through _json_time
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "str": _conv_text,
    "list": _conv_list,
    "port": to_port,
    "count": lambda v: to_int(v, 0, _INT64),
    "count32": lambda v: to_int(v, 0, _INT32),
    "float": to_float,
    "bool": to_bool,
}
_TEXT_KINDS = {"str", "list"}
_TIME_KINDS = {"time", "datetime"}


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


def _tsv_time(raw: str) -> int:
    """'1712891655.123456' -> microseconds, exact; epoch_text_micros with a bound on the seconds."""
    sec, _, frac = raw.partition(".")
    if not sec.isdigit() or len(sec) > _EPOCH_DIGITS or (frac and not frac.isdigit()):
        raise BadValue(f"bad epoch time {raw!r}")
    return int(sec) * 1_000_000 + int((frac + "000000")[:6])


def _tsv_datetime(raw: str) -> int:
    # certificate validity may lie before 1970: Zeek writes a negative epoch
    return -_tsv_time(raw[1:]) if raw.startswith("-") else _tsv_time(raw)


# Converters for TSV text (hot path: millions of lines), same results as the JSON ones
_TSV_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "time": _tsv_time,
    "datetime": _tsv_datetime,
    "port": lambda raw: _tsv_int(raw, 65535),
    "count": lambda raw: _tsv_int(raw, _INT64),
    "count32": lambda raw: _tsv_int(raw, _INT32),
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
        self.types: list[str] | None = None  # the block's `#types` line, if any

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
        if self.table == "files" and "tx_hosts" not in index and "id.orig_h" in index:
            self._bind_files_hosts(index, pos)

    def _bind_files_hosts(self, index: dict[str, int], pos: dict[str, int]) -> None:
        """Zeek >= 6 files.log: the connection's id.* replaced tx_hosts / rx_hosts; is_orig says which
        side sent the file."""
        orig_i, resp_i = index["id.orig_h"], index.get("id.resp_h")
        sent_at, tx_at, rx_at = pos["is_orig"], pos["tx_hosts"], pos["rx_hosts"]
        unsets = (self.unset, self.empty)
        plain = self.row

        def row(parts: list[str], ref: str) -> list[Any]:
            out = plain(parts, ref)
            sent = out[sent_at]
            if sent is not None:
                orig = parts[orig_i]
                resp = parts[resp_i] if resp_i is not None else self.unset
                orig_v = None if orig in unsets else orig
                resp_v = None if resp in unsets else resp
                out[tx_at], out[rx_at] = (orig_v, resp_v) if sent else (resp_v, orig_v)
            return out

        self.row = row  # type: ignore[method-assign]

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
                out[at] = _unescape_list(raw, self.set_sep)
        if out[self.ts_pos] is None:
            raise BadValue("no ts")
        out[self.ref_pos] = ref
        return out


class _IcsTsvBlock(_TsvBlock):
    """A header block of an ICS log: every column is read, typed by `#types` (or by name without one), and the
    protocol's mapper in zeek_ics makes the `ics` row."""

    kinds: list[tuple[str, str]]
    names: list[str]

    def bind(self, names: list[str]) -> None:
        self.bound = True
        self.names = names
        types = self.types if self.types is not None and len(self.types) == self.nfields else None
        self.kinds = [(f, zeek_ics.tsv_kind(types[i] if types else None, f)) for i, f in enumerate(self.fields)]

    def _value(self, name: str, kind: str, raw: str) -> Any:
        if kind == "str":
            return _unescape(raw) if "\\x" in raw else raw
        if kind == "vector":
            return [_unescape(x) for x in raw.split(self.set_sep)]
        if kind == "time":
            return _tsv_time(raw) if name == "ts" else _tsv_float(raw)
        if kind == "int":
            try:
                return int(raw)
            except ValueError:
                raise BadValue(f"not an integer: {raw!r}") from None
        return _TSV_CONVERTERS[kind](raw)

    def row(self, parts: list[str], ref: str) -> list[Any]:  # type: ignore[override]
        rec: dict[str, Any] = {}
        unset, empty = self.unset, self.empty
        for (name, kind), raw in zip(self.kinds, parts, strict=True):
            if raw == unset:
                continue
            if raw == empty:
                rec[name] = [] if kind == "vector" else ("" if kind == "str" else None)
                continue
            try:
                rec[name] = self._value(name, kind, raw)
            except BadValue as exc:
                raise BadValue(f"{name}: {exc}") from None
        if rec.get("ts") is None:
            raise BadValue("no ts")
        out = zeek_ics.build(self.log_type or "", rec)
        out["source_ref"] = ref
        return [out.get(n) for n in self.names]


def _new_block(sep: str, set_sep: str, empty: str, unset: str, log_type: str | None, fields: list[str]) -> _TsvBlock:
    cls = _IcsTsvBlock if LOG_TABLES.get(log_type or "") == "ics" else _TsvBlock
    return cls(sep, set_sep, empty, unset, log_type, fields)


def _finish_row(row: dict[str, Any], ref: str) -> None:
    if row.get("ts") is None:
        raise BadValue("no ts")
    row["source_ref"] = ref


def ingest(case: Any, path: Path, fmt: str, progress: Advance | None = None) -> FileResult:
    path = Path(path).resolve()
    tally = Tally(path, fmt)
    sinks = {}
    for table in dict.fromkeys(LOG_TABLES.values()):
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


class _TsvLines:
    """(line number, line without EOL) of a plain or gzip file, like `iter_lines`, except that bytes that
    are not UTF-8 come through as \\xHH (Zeek's own notation) instead of U+FFFD, and a last line with no
    end of line (a file cut while Zeek wrote it) is held back in `tail` instead of being yielded."""

    def __init__(self, path: Path, tally: Tally, progress: Advance | None) -> None:
        self.path, self.tally, self.progress = path, tally, progress
        self.tail: tuple[int, str] | None = None

    def __iter__(self) -> Iterator[tuple[int, str]]:
        n = 0
        try:
            with TextSource(self.path, self.progress) as src:
                src.text.reconfigure(errors="backslashreplace")
                tick = src.tick
                for n, line in enumerate(src.text, 1):  # noqa: B007 - n is needed after the loop
                    tick()
                    text = line.rstrip("\r\n")
                    if len(text) == len(line):
                        self.tail = (n, text)
                        continue
                    yield n, text
        except (EOFError, OSError, zlib.error) as exc:
            self.tally.bad_record(f"line {n + 1}", f"unreadable after line {n}: {exc}")


def _read_tsv(
    path: Path, tally: Tally, sinks: dict[str, Sink], skipped: dict[str, int], progress: Advance | None
) -> None:
    name_type = _log_type_from_name(path)
    sep, set_sep, empty, unset = "\t", ",", "(empty)", "-"
    log_type: str | None = name_type
    block: _TsvBlock | None = None
    lines = _TsvLines(path, tally, progress)
    for n, line in lines:
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
                block = _new_block(sep, set_sep, empty, unset, log_type, value.split(sep))
            elif key == "types" and block is not None:
                block.types = value.split(sep)  # only ICS blocks use them: the other tables type fields by name
            # '#open', '#close' carry nothing the columns need
            continue
        if block is None and line.startswith("ts\t") and "\tid.orig_h\t" in line:
            block = _new_block("\t", ",", "(empty)", "-", log_type, line.split("\t"))  # tsv=T header
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
    if lines.tail is not None:
        _tsv_tail(*lines.tail, block, tally, skipped)


def _tsv_tail(n: int, line: str, block: _TsvBlock | None, tally: Tally, skipped: dict[str, int]) -> None:
    """The last line had no end of line: Zeek ends every line, so the file was cut inside this one and its
    last value may be cut short. It is reported, not loaded."""
    if not line or line.startswith("#"):
        return  # a cut '#close' footer: nothing lost
    if block is None:
        tally.bad_record(f"line {n}", "data line before any #fields header")
    elif block.table is None:
        kind = block.log_type or "unknown"
        skipped[kind] = skipped.get(kind, 0) + 1
    else:
        got = len(line.split(block.sep))
        tally.bad_record(f"line {n}", f"truncated last line (no end of line): {got} of {block.nfields} fields")


def _read_json(
    path: Path, tally: Tally, sinks: dict[str, Sink], skipped: dict[str, int], progress: Advance | None
) -> None:
    name_type = _log_type_from_name(path)
    for n, record in iter_json_objects(path, tally, progress):
        obj = _flatten(record)
        log_type = _json_log_type(obj, name_type)
        table = LOG_TABLES.get(log_type or "")
        if table is None:
            kind = log_type or "unknown"
            skipped[kind] = skipped.get(kind, 0) + 1
            continue
        if table == "ics":
            try:
                sinks[table].add(_json_ics_row(log_type or "", obj, f"line {n}"))
            except BadValue as exc:
                tally.bad_record(f"line {n}", str(exc))
                continue
            tally.ok += 1
            continue
        if table == "files" and "tx_hosts" not in obj and "id.orig_h" in obj:
            _json_files_hosts(obj)
        ts = obj.get("ts")
        millis = isinstance(ts, int | float) and not isinstance(ts, bool) and ts >= _MILLIS_FROM
        try:
            row: dict[str, Any] = {}
            for col, (kind, names) in _FIELD_MAP[table].items():
                value = next((obj[k] for k in names if obj.get(k) is not None), None)
                try:
                    if value is None:
                        row[col] = None
                    elif kind in _TIME_KINDS:
                        row[col] = _json_time(value, millis)
                    else:
                        row[col] = _CONVERTERS[kind](value)
                except BadValue as exc:
                    raise BadValue(f"{col}: {exc}") from None
            _finish_row(row, f"line {n}")
        except BadValue as exc:
            tally.bad_record(f"line {n}", str(exc))
            continue
        sinks[table].add(row)
        tally.ok += 1


def _json_time(value: Any, millis: bool) -> int | None:
    if millis and type(value) in (int, float):
        micros: int | None = round(value * 1000)  # JSON::TimestampFormat TS_MILLIS: every time field
    else:
        micros = _conv_time(value)
    if micros is not None and not -_MAX_MICROS < micros < _MAX_MICROS:
        raise BadValue(f"out of range: {value!r}")
    return micros


def _json_ics_row(log_type: str, obj: dict[str, Any], ref: str) -> dict[str, Any]:
    """An `ics` row from a JSON record: ts and ports converted here, everything else by zeek_ics."""
    rec = dict(obj)
    ts = obj.get("ts")
    millis = isinstance(ts, int | float) and not isinstance(ts, bool) and ts >= _MILLIS_FROM
    for name in ("ts", "id.orig_p", "id.resp_p"):
        value = obj.get(name)
        try:
            if value is None:
                rec[name] = None
            elif name == "ts":
                rec[name] = _json_time(value, millis)
            else:
                rec[name] = to_port(value)
        except BadValue as exc:
            raise BadValue(f"{name}: {exc}") from None
    if rec["ts"] is None:
        raise BadValue("no ts")
    row = zeek_ics.build(log_type, rec)
    row["source_ref"] = ref
    return row


def _json_files_hosts(obj: dict[str, Any]) -> None:
    """Zeek >= 6 files.log: tx_hosts / rx_hosts from the connection id and is_orig (see _TsvBlock)."""
    sent = obj.get("is_orig")
    if isinstance(sent, bool):
        orig, resp = obj.get("id.orig_h"), obj.get("id.resp_h")
        obj["tx_hosts"], obj["rx_hosts"] = (orig, resp) if sent else (resp, orig)
