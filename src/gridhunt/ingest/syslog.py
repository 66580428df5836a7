"""Vendor VPN and firewall logs in syslog files -> auth (source 'vpn') and conn (source 'vpn' for
VPN sessions, 'firewall' for flows).

Each line is framed once (syslog_frame: RFC 5424, RFC 3164, Cisco, ISO-first or no header) and
handed to the first message parser that recognises it, so one file may mix vendors:

    Cisco ASA / FTD (syslog_asa), FortiGate (syslog_fortigate), PAN-OS GlobalProtect / SYSTEM /
    TRAFFIC (syslog_panos), Linux netfilter LOG (syslog_netfilter), pfSense / OPNsense
    filterlog (syslog_filterlog).

A recognised message that no table needs (ASA 302013, FortiGate UTM logs, ...) is counted in
records_ignored, with a note per kind; a line no parser recognises, or a recognised one that
cannot be read, is a bad record with its line number. Sniffing claims a file when at least one
line of its head is a vendor message and at least half of its lines are syslog or vendor lines.

VPN sessions come from a start message (ASA 113039 / 716001 / 722022, FortiGate tunnel-up,
GlobalProtect gateway-connected) and an end message (ASA 113019, tunnel-down, gateway-logout):
one conn row per session, public address -> tunnel address, ts = session start (end - duration
when the end message says the duration). Sessions still open at the end of the file are written
from what is known.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from gridhunt.ingest import syslog_asa, syslog_filterlog, syslog_fortigate, syslog_netfilter, syslog_panos
from gridhunt.ingest._common import BadValue, Sink, head_text, iter_lines
from gridhunt.ingest.base import Advance, FileResult, Tally
from gridhunt.ingest.syslog_frame import (
    DAY_MICROS,
    Auth,
    Conn,
    Context,
    Frame,
    Ignored,
    Parsed,
    SessionClose,
    SessionEnd,
    SessionOpen,
    parse_frame,
)

FORMAT = "syslog"
# cheapest and most specific first; each returns None for a message that is not its own
PARSERS = (syslog_filterlog, syslog_asa, syslog_fortigate, syslog_panos, syslog_netfilter)
UNKNOWN = "not a Cisco ASA / FortiGate / PAN-OS / netfilter / filterlog message"
SNIFF_LINES = 200


def _ref_micros(path: Path) -> int:
    """Newest plausible record time: the file's mtime plus a day (local-time slack)."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        mtime = time.time()
    return round(mtime * 1_000_000) + DAY_MICROS


def _parse(frame: Frame, ctx: Context) -> tuple[Any, Parsed | Ignored | None]:
    for parser in PARSERS:
        result = parser.parse(frame, ctx)
        if result is not None:
            return parser, result
    return None, None


def sniff(head: bytes, path: Path) -> str | None:
    text = head_text(head)
    lines = text.splitlines()
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines.pop()  # the head cut the last line
    ctx = Context(_ref_micros(path))
    seen = syslog_like = recognised = 0
    for line in lines:
        if not line.strip():
            continue
        seen += 1
        try:
            frame = parse_frame(line, ctx)
        except BadValue:
            continue  # an impossible date: neither kind of evidence
        try:
            ours = _parse(frame, ctx)[0] is not None
        except (ValueError, IndexError, KeyError):
            ours = True  # a vendor message with a bad field is still a vendor message
        recognised += ours
        syslog_like += ours or frame.framed
        if seen >= SNIFF_LINES:
            break
    return FORMAT if recognised and syslog_like * 2 >= seen else None


class _Sessions:
    """Open VPN sessions by key until their end message; each becomes one conn row. Rows may carry
    `_gateway` (the dst_ip when no tunnel address is known) and `_end` (a known end time)."""

    KEEP = ("ts", "source_ref")  # a later message never moves the session's start or evidence line

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.open: dict[tuple, dict[str, Any]] = {}

    def start(self, key: tuple, row: dict[str, Any]) -> None:
        current = self.open.get(key)
        if current is None:
            self.open[key] = dict(row)
            return
        for name, value in row.items():  # later messages fill in, say, the tunnel address
            if value is not None and name not in self.KEEP and (current.get(name) is None or name == "dst_ip"):
                current[name] = value

    def end_hint(self, key: tuple, ts: int) -> None:
        if key in self.open:
            self.open[key]["_end"] = ts

    def close(self, key: tuple, row: dict[str, Any]) -> None:
        started = self.open.pop(key, None)
        out = dict(row)
        if row.get("duration") is not None:
            out["ts"] = row["ts"] - round(row["duration"] * 1_000_000)
        elif started is not None:
            out["ts"] = started["ts"]
            out["duration"] = (row["ts"] - started["ts"]) / 1_000_000
        if started is not None:
            for name, value in started.items():
                if out.get(name) is None:
                    out[name] = value
        self._write(out)

    def flush(self) -> None:
        for row in self.open.values():
            end = row.get("_end")
            if end is not None and row.get("duration") is None:
                row["duration"] = (end - row["ts"]) / 1_000_000
            self._write(row)  # still connected when the log was collected
        self.open.clear()

    def _write(self, row: dict[str, Any]) -> None:
        if row.get("dst_ip") is None:
            row["dst_ip"] = row.get("_gateway")
        self.sink.add(row)


def ingest(case: Any, path: Path, fmt: str, progress: Advance | None = None) -> FileResult:
    path = Path(path).resolve()
    tally = Tally(path, fmt)
    ctx = Context(_ref_micros(path))
    source_file = str(path)
    auth = Sink(case, "auth", {"source": "vpn", "source_file": source_file})
    conn = Sink(case, "conn", {"source_file": source_file})
    sessions = _Sessions(conn)
    ignored: dict[str, int] = {}
    lines_by_parser: dict[str, int] = {}
    for n, line in iter_lines(path, tally, progress):
        if not line.strip():
            continue
        ref = f"line {n}"
        try:
            frame = parse_frame(line, ctx)
            parser, result = _parse(frame, ctx)
        except BadValue as exc:
            tally.bad_record(ref, str(exc))
            continue
        except (ValueError, IndexError, KeyError) as exc:  # a layout no parser foresaw: this line only
            tally.bad_record(ref, f"unreadable: {type(exc).__name__}: {exc}")
            continue
        if parser is None:
            tally.bad_record(ref, UNKNOWN)
            continue
        lines_by_parser[parser.NAME] = lines_by_parser.get(parser.NAME, 0) + 1
        if isinstance(result, Ignored):
            tally.ignored += 1
            ignored[result.what] = ignored.get(result.what, 0) + 1
            continue
        assert isinstance(result, Parsed)
        for record in result.records:
            if isinstance(record, Auth):
                record.row["source_ref"] = ref
                auth.add(record.row)
            elif isinstance(record, Conn):
                record.row["source_ref"] = ref
                conn.add(record.row)
            elif isinstance(record, SessionOpen):
                record.row["source_ref"] = ref
                sessions.start(record.key, record.row)
            elif isinstance(record, SessionClose):
                record.row["source_ref"] = ref
                sessions.close(record.key, record.row)
            elif isinstance(record, SessionEnd):
                sessions.end_hint(record.key, record.ts)
        tally.ok += 1
    sessions.flush()
    auth.flush()
    conn.flush()
    tally.notes.extend(_notes(lines_by_parser, ignored, ctx))
    return tally.result()


def _notes(by_parser: dict[str, int], ignored: dict[str, int], ctx: Context) -> list[str]:
    notes = []
    if by_parser:
        notes.append("lines by source: " + ", ".join(f"{k} {v}" for k, v in sorted(by_parser.items())))
    if ignored:
        shown = sorted(ignored.items(), key=lambda kv: (-kv[1], kv[0]))
        notes.append("ignored (recognised, nothing to store): " + ", ".join(f"{k} ×{v}" for k, v in shown))
    notes.extend(f"{text} ({count})" for text, count in sorted(ctx.notes.items()))
    return notes
