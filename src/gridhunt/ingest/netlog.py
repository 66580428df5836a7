"""Firewall and VPN logs in the canonical CSVs of docs/FORMATS.md.

firewall.csv  ts,device,action,proto,src_ip,src_port,dst_ip,dst_port,bytes_out,bytes_in,duration,rule
vpn.csv       ts,gateway,user,src_ip,assigned_ip,event,reason,session_id,bytes_in,bytes_out,duration

Other exports are read through a header-mapping YAML, `{their_column: our_column}`, found beside
the CSV as `<file name>.mapping.yaml`, `<stem>.mapping.yaml` or `netlog-mapping.yaml` (first
found wins), or passed to `ingest_mapped()`.

firewall rows -> conn (source 'firewall'). VPN login / login_failed -> auth (source 'vpn', outcome
success / failure); each VPN session -> one conn row (source 'vpn', service 'vpn', uid =
session_id) from the client's public address to the address assigned inside the tunnel (the
gateway name when no address was assigned), so later flows from that inner address can be tied to
the session. A session is closed by its logout row (start = logout ts - duration, or the login ts);
sessions still open at the end of the file are written from their login row.
"""

from __future__ import annotations

import csv
import ipaddress
from pathlib import Path
from typing import Any

import yaml

from gridhunt.ingest._common import (
    BadValue,
    Sink,
    TextSource,
    head_text,
    to_float,
    to_int,
    to_micros,
    to_port,
    to_str,
)
from gridhunt.ingest.base import Advance, FileResult, Tally

FORMAT = "netlog"
FORMATS = ("firewall_csv", "vpn_csv", "netlog_mapping")

FIREWALL_COLUMNS = (
    "ts",
    "device",
    "action",
    "proto",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "bytes_out",
    "bytes_in",
    "duration",
    "rule",
)
VPN_COLUMNS = (
    "ts",
    "gateway",
    "user",
    "src_ip",
    "assigned_ip",
    "event",
    "reason",
    "session_id",
    "bytes_in",
    "bytes_out",
    "duration",
)
_ALL_COLUMNS = frozenset(FIREWALL_COLUMNS) | frozenset(VPN_COLUMNS)
# enough to tell the two apart and to build a useful row; the rest may be missing
_FIREWALL_REQUIRED = frozenset({"ts", "action", "src_ip", "dst_ip"})
_VPN_REQUIRED = frozenset({"ts", "user", "event"})

MAPPING_NAMES = ("{name}.mapping.yaml", "{stem}.mapping.yaml", "netlog-mapping.yaml")

# vendor words for the two canonical actions (Fortinet accept/close, PAN drop/reset-*, iptables ...)
_ACTIONS = {
    **dict.fromkeys(
        ("allow", "allowed", "accept", "accepted", "permit", "permitted", "pass", "close"), "allow"
    ),
    **dict.fromkeys(
        (
            "deny",
            "denied",
            "drop",
            "dropped",
            "block",
            "blocked",
            "reject",
            "rejected",
            "reset-both",
            "reset-client",
            "reset-server",
            "server-rst",
            "client-rst",
        ),
        "deny",
    ),
}
_PROTO_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "icmp"}
_VPN_EVENTS = {"login", "login_failed", "logout"}


def _find_mapping(path: Path) -> Path | None:
    for pattern in MAPPING_NAMES:
        cand = path.with_name(pattern.format(name=path.name, stem=path.stem))
        if cand.is_file():
            return cand
    return None


def _load_mapping(mapping_file: Path, tally: Tally | None) -> dict[str, str]:
    """Their column (lower-cased) -> our column; bad entries are reported and dropped."""
    try:
        with open(mapping_file, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        if tally:
            tally.bad_record(mapping_file.name, f"unreadable header mapping: {exc}")
        return {}
    if not isinstance(data, dict):
        if tally:
            tally.bad_record(mapping_file.name, "header mapping must be a {their_column: our_column} map")
        return {}
    out: dict[str, str] = {}
    for theirs, ours in data.items():
        target = str(ours).strip().lower() if ours is not None else ""
        if target not in _ALL_COLUMNS:
            if tally:
                tally.bad_record(f"{mapping_file.name}: {theirs}", f"unknown target column {ours!r}")
            continue
        out[str(theirs).strip().lower()] = target
    return out


def _header(line: str) -> list[str]:
    return [h.strip().strip('"').strip().lower() for h in next(csv.reader([line]), [])]


def _kind(columns: list[str]) -> str | None:
    names = set(columns)
    if names >= _VPN_REQUIRED and ("session_id" in names or "gateway" in names):
        return "vpn_csv"
    if names >= _FIREWALL_REQUIRED:
        return "firewall_csv"
    return None


def _apply(columns: list[str], mapping: dict[str, str]) -> list[str]:
    return [mapping.get(c, c) for c in columns]


def sniff(head: bytes, path: Path) -> str | None:
    if path.name.endswith("mapping.yaml") and path.name.endswith(
        tuple(p.format(name="", stem="") for p in MAPPING_NAMES)
    ):
        mapping = _load_mapping(path, None)
        if mapping and all(v in _ALL_COLUMNS for v in mapping.values()):
            return "netlog_mapping"
        return None
    text = head_text(head)
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if "," not in first or first.lstrip().startswith(("{", "#", "<")):
        return None
    columns = _header(first)
    kind = _kind(columns)
    if kind is None:
        mapping_file = _find_mapping(path)
        if mapping_file is not None:
            kind = _kind(_apply(columns, _load_mapping(mapping_file, None)))
    return kind


def ingest(case: Any, path: Path, fmt: str, progress: Advance | None = None) -> FileResult:
    path = Path(path).resolve()
    if fmt == "netlog_mapping":
        tally = Tally(path, fmt)
        return tally.result("header mapping for the CSV files beside it; read with them")
    mapping_file = _find_mapping(path)
    return _ingest(case, path, fmt, mapping_file, None, progress)


def ingest_mapped(
    case: Any,
    path: Path,
    mapping: dict[str, str] | Path,
    fmt: str | None = None,
    progress: Advance | None = None,
) -> FileResult:
    """Read a firewall/VPN CSV whose header is mapped by `mapping` (a dict or a YAML file)."""
    path = Path(path).resolve()
    if isinstance(mapping, dict):
        lowered = {str(k).strip().lower(): str(v) for k, v in mapping.items()}
        return _ingest(case, path, fmt, None, lowered, progress)
    return _ingest(case, path, fmt, Path(mapping), None, progress)


def _ingest(
    case: Any,
    path: Path,
    fmt: str | None,
    mapping_file: Path | None,
    mapping: dict[str, str] | None,
    progress: Advance | None,
) -> FileResult:
    tally = Tally(path, fmt)
    if mapping is None:
        mapping = _load_mapping(mapping_file, tally) if mapping_file else {}
    try:
        source = TextSource(path, progress)
    except OSError as exc:
        tally.bad_record("line 1", f"cannot open: {exc}")
        return tally.result()
    with source:
        reader = csv.reader(source.text)
        try:
            raw_header = next(reader)
        except StopIteration:
            return tally.result("empty file")
        except (csv.Error, EOFError, OSError) as exc:
            tally.bad_record("line 1", f"unreadable header: {exc}")
            return tally.result()
        columns = _apply([h.strip().strip('"').strip().lower().lstrip("\ufeff") for h in raw_header], mapping)
        kind = _kind(columns)
        if kind is None or (fmt in ("firewall_csv", "vpn_csv") and kind != fmt):
            want = fmt or "firewall_csv or vpn_csv"
            tally.bad_record("line 1", f"header does not match {want}: {','.join(columns)}")
            return tally.result()
        tally.fmt = kind
        reader_fn = (
            _FirewallReader(case, str(path)) if kind == "firewall_csv" else _VpnReader(case, str(path))
        )
        index = {name: i for i, name in enumerate(columns) if name in _ALL_COLUMNS}
        ncols = len(columns)
        line = 1
        try:
            for record in reader:
                source.tick()
                line = reader.line_num
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                if len(record) != ncols:
                    tally.bad_record(f"line {line}", f"expected {ncols} columns, got {len(record)}")
                    continue
                row = {name: record[i] for name, i in index.items()}
                try:
                    reader_fn.add(row, f"line {line}")
                except BadValue as exc:
                    tally.bad_record(f"line {line}", str(exc))
                    continue
                tally.ok += 1
        except (csv.Error, EOFError, OSError) as exc:
            tally.bad_record(f"line {line + 1}", f"unreadable after line {line}: {exc}")
        reader_fn.close()
    return tally.result()


def _ts(value: str) -> int:
    s = value.strip()
    if len(s) > 10 and s[4] == "/" and s[7] == "/":
        s = s.replace("/", "-", 2)  # 2026/04/12 03:14:15 (PAN-OS and friends)
    try:
        micros = to_micros(s)
    except BadValue as exc:
        raise BadValue(f"ts: {exc}") from None
    if micros is None:
        raise BadValue("ts: missing")
    return micros


def _ip(value: str | None, name: str, required: bool = False) -> str | None:
    s = to_str(value)
    if s is None:
        if required:
            raise BadValue(f"{name}: missing")
        return None
    try:
        return str(ipaddress.ip_address(s))
    except ValueError:
        raise BadValue(f"{name}: not an IP address: {s!r}") from None


def _field(conv: Any, value: Any, name: str) -> Any:
    try:
        return conv(value)
    except BadValue as exc:
        raise BadValue(f"{name}: {exc}") from None


class _FirewallReader:
    def __init__(self, case: Any, source_file: str) -> None:
        self.sink = Sink(case, "conn")
        self.source_file = source_file

    def add(self, r: dict[str, str], ref: str) -> None:
        action_raw = (r.get("action") or "").strip().lower()
        action = _ACTIONS.get(action_raw)
        if action is None:
            raise BadValue(f"action: expected allow|deny, got {r.get('action')!r}")
        proto = (r.get("proto") or "").strip().lower() or None
        proto = _PROTO_NUMBERS.get(proto or "", proto)
        self.sink.add(
            {
                "ts": _ts(r.get("ts") or ""),
                "src_ip": _ip(r.get("src_ip"), "src_ip", required=True),
                "src_port": _field(to_port, r.get("src_port"), "src_port"),
                "dst_ip": _ip(r.get("dst_ip"), "dst_ip", required=True),
                "dst_port": _field(to_port, r.get("dst_port"), "dst_port"),
                "proto": proto,
                "duration": _field(to_float, r.get("duration"), "duration"),
                "bytes_out": _field(lambda v: to_int(v, 0), r.get("bytes_out"), "bytes_out"),
                "bytes_in": _field(lambda v: to_int(v, 0), r.get("bytes_in"), "bytes_in"),
                "action": action,
                "source": "firewall",
                "source_file": self.source_file,
                "source_ref": ref,
            }
        )

    def close(self) -> None:
        self.sink.flush()


class _VpnReader:
    def __init__(self, case: Any, source_file: str) -> None:
        self.auth = Sink(case, "auth")
        self.conn = Sink(case, "conn")
        self.source_file = source_file
        # session_id -> conn row from its login, until its logout arrives
        self.open: dict[str, dict[str, Any]] = {}

    def add(self, r: dict[str, str], ref: str) -> None:
        event = (r.get("event") or "").strip().lower()
        if event not in _VPN_EVENTS:
            raise BadValue(f"event: expected login|login_failed|logout, got {r.get('event')!r}")
        ts = _ts(r.get("ts") or "")
        src_ip = _ip(r.get("src_ip"), "src_ip")
        assigned = _ip(r.get("assigned_ip"), "assigned_ip")
        gateway = to_str(r.get("gateway"))
        session = to_str(r.get("session_id"))
        duration = _field(to_float, r.get("duration"), "duration")
        bytes_in = _field(lambda v: to_int(v, 0), r.get("bytes_in"), "bytes_in")
        bytes_out = _field(lambda v: to_int(v, 0), r.get("bytes_out"), "bytes_out")
        user = to_str(r.get("user"))
        if event != "logout":
            if user is None:
                raise BadValue("user: missing")
            domain = None
            if "\\" in user:  # CORP\jsmith -> domain + user, as Windows logons are stored
                domain, user = user.split("\\", 1)
            failed = event == "login_failed"
            self.auth.add(
                {
                    "ts": ts,
                    "user": user,
                    "domain": domain,
                    "src_ip": src_ip,
                    "dst_host": gateway,
                    "outcome": "failure" if failed else "success",
                    "failure_reason": to_str(r.get("reason")) if failed else None,
                    "source": "vpn",
                    "source_file": self.source_file,
                    "source_ref": ref,
                }
            )
            if failed:
                return
        row = {
            "ts": ts,
            "src_ip": src_ip,
            "dst_ip": assigned or gateway,
            "proto": None,
            "service": "vpn",
            "duration": duration,
            "bytes_out": bytes_out,
            "bytes_in": bytes_in,
            "uid": session,
            "source": "vpn",
            "source_file": self.source_file,
            "source_ref": ref,
        }
        if event == "login":
            if session is None:
                self.conn.add(row)  # no id to pair a logout with: the login is the session
            else:
                self.open[session] = row
            return
        started = self.open.pop(session, None) if session else None
        if duration is not None:
            row["ts"] = ts - round(duration * 1_000_000)
        elif started is not None:
            row["ts"] = started["ts"]
            row["duration"] = (ts - started["ts"]) / 1_000_000
        if started is not None:
            row["src_ip"] = row["src_ip"] or started["src_ip"]
            if row["dst_ip"] is None or (assigned is None and started["dst_ip"] != gateway):
                row["dst_ip"] = started["dst_ip"]
        self.conn.add(row)

    def close(self) -> None:
        for row in self.open.values():
            self.conn.add(row)  # still connected when the log was collected
        self.open.clear()
        self.auth.flush()
        self.conn.flush()
