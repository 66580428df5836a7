"""Syslog framing: one line of a syslog file -> Frame(ts, host, app, msg), plus what the vendor
message parsers (syslog_asa, syslog_fortigate, syslog_panos, syslog_netfilter, syslog_filterlog)
share: their result types and small field converters.

Framings read (PRI `<n>` optional everywhere, as rsyslog drops it when writing files):
  RFC 5424   <134>1 2026-04-15T02:11:09.123Z host app procid msgid [sd] msg
  RFC 3164   <134>Apr 15 02:11:09 host tag[pid]: msg     (no year, no zone)
  Cisco      <166>Apr 15 2026 02:11:09 asa01 : %ASA-...  (year; optional zone name, colon)
  ISO first  2026-04-15T02:11:09.123456+02:00 host tag: msg   (rsyslog RFC 3339 file format)
  none       <189>date=2026-04-15 time=...               (FortiGate: the message has its own time)

Year of RFC 3164 timestamps: the latest year that does not put the record more than a day after
the file's modification time (the day absorbs local-time offsets). A log rotated on 2 January
keeps its 31 December lines in the old year.
Timestamps without a UTC offset (RFC 3164, Cisco without `UTC`, device-local vendor times) are
taken as UTC, as everywhere in gridhunt; a note says how many there were.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gridhunt.ingest._common import BadValue, to_micros

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_PRI = re.compile(r"<(\d{1,3})>")
_RFC5424 = re.compile(r"1 (\S+) (\S+) (\S+) (\S+) (\S+) ?")
_BSD_TS = re.compile(
    r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?P<day>\d{1,2}) +(?:(?P<year>\d{4}) +)?"
    r"(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})(?P<frac>\.\d{1,9})?"
    r"(?: (?P<zone>[A-Z]{3,5}|[+-]\d{2}:?\d{2})(?=:))?:?(?: +|$)"
)
_ISO_TS = re.compile(r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?):?(?: +|$)")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
_TAG = re.compile(r"([\w./-]+?)(?:\[[^\]]*\])?:$")
_UTC_NAMES = frozenset({"UTC", "GMT", "Z"})
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
DAY_MICROS = 86_400_000_000


@dataclass(slots=True)
class Frame:
    msg: str
    ts: int | None = None  # epoch microseconds, UTC
    exact: bool = False  # the timestamp carried a year and a UTC offset
    year_inferred: bool = False  # RFC 3164: the year comes from the file's modification time
    host: str | None = None
    app: str | None = None
    framed: bool = False  # a PRI or a timestamp was found: this line is syslog


class Context:
    """Per-file state handed to the message parsers: the year reference and counted notes."""

    def __init__(self, ref_micros: int) -> None:
        self.ref_micros = ref_micros  # file mtime + 1 day: newest plausible record time
        self.notes: Counter[str] = Counter()
        self.state: dict[str, Any] = {}  # per-parser scratch (ASA connection directions)
        self.bsd_cache: dict[str, tuple[int, bool]] = {}  # busy logs repeat each second many times

    def note(self, text: str) -> None:
        self.notes[text] += 1


# ---- what a message parser returns ------------------------------------------------------------


@dataclass(slots=True)
class Auth:
    row: dict[str, Any]  # auth table columns (source, source_file, source_ref filled by the reader)


@dataclass(slots=True)
class Conn:
    row: dict[str, Any]  # conn table columns, with `source`


@dataclass(slots=True)
class SessionOpen:
    """A VPN session starts (or learns more, e.g. its tunnel address): merged by key until closed."""

    key: tuple
    row: dict[str, Any]


@dataclass(slots=True)
class SessionClose:
    """A VPN session ends; `row` has the end time as ts and whatever the end message tells."""

    key: tuple
    row: dict[str, Any]


@dataclass(slots=True)
class SessionEnd:
    """The session ended at `ts` but another message carries its totals: remembered, not closed."""

    key: tuple
    ts: int


Record = Auth | Conn | SessionOpen | SessionClose | SessionEnd


@dataclass(slots=True)
class Ignored:
    what: str  # e.g. "Cisco ASA 302013": recognised, nothing to store


@dataclass(slots=True)
class Parsed:
    records: list[Record] = field(default_factory=list)


# ---- framing ----------------------------------------------------------------------------------


def parse_frame(line: str, ctx: Context) -> Frame:
    """Split one line into timestamp, host, app and message. A line without any framing comes back
    with msg = the line and framed = False; only an impossible date (Apr 31) raises BadValue."""
    rest = line.lstrip("\ufeff")
    framed = False
    m = _PRI.match(rest)
    if m:
        framed = True
        rest = rest[m.end() :]
        m5 = _RFC5424.match(rest)
        if m5:
            return _rfc5424(m5, rest[m5.end() :])
        rest = rest.lstrip(":")  # Cisco `<166>:Jan 13 ...`
    frame = Frame(msg=rest, framed=framed)
    m = _BSD_TS.match(rest)
    if m:
        stamp = m.group(0)
        cached = ctx.bsd_cache.get(stamp)
        if cached is None:
            if len(ctx.bsd_cache) > 4096:
                ctx.bsd_cache.clear()
            cached = ctx.bsd_cache[stamp] = _bsd_time(m, ctx)
        frame.ts, frame.exact = cached
        frame.year_inferred = m["year"] is None
        zone = m["zone"]
        if zone and zone[0] not in "+-" and zone not in _UTC_NAMES:
            ctx.note(f"time zone name {zone!r} not known: those times taken as UTC")
    else:
        m = _ISO_TS.match(rest)
        if m:
            frame.ts, frame.exact = iso_time(m.group(1))
    if m is None:
        return frame
    frame.framed = True
    _host_tag(frame, rest[m.end() :])
    return frame


def _rfc5424(m: re.Match[str], rest: str) -> Frame:
    ts_text, host, app = m.group(1), m.group(2), m.group(3)
    frame = Frame(msg="", framed=True, host=_nil(host), app=_nil(app))
    if ts_text != "-":
        try:
            frame.ts, frame.exact = iso_time(ts_text)
        except BadValue:
            frame.ts = None
    frame.msg = _skip_sd(rest).lstrip("\ufeff")
    return frame


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def _skip_sd(rest: str) -> str:
    """The message after RFC 5424 structured data (`-` or `[id k="v"]...`, with \\] escapes)."""
    if rest.startswith("-"):
        return rest[2:] if rest.startswith("- ") else rest[1:]
    i, n = 0, len(rest)
    while i < n and rest[i] == "[":
        i += 1
        quoted = False
        while i < n:
            c = rest[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                quoted = not quoted
            elif c == "]" and not quoted:
                break
            i += 1
        i += 1
    return rest[i + 1 :] if i < n and rest[i] == " " else rest[i:]


def _host_tag(frame: Frame, rest: str) -> None:
    """After the timestamp: `host tag[pid]: msg`, `tag: msg`, `host : msg` (Cisco) or `host msg`."""
    first, _, after = rest.partition(" ")
    if not first or first.startswith("%") or "=" in first or "," in first:
        frame.msg = rest
        return
    tag = _TAG.fullmatch(first)
    if tag and not ("." in tag.group(1) and "[" not in first):  # `asa.example.com:` is a host
        frame.app = tag.group(1)
        frame.msg = after
        return
    frame.host = first.rstrip(":")
    rest = after
    if rest.startswith(":"):
        frame.msg = rest[1:].lstrip()
        return
    second, _, after = rest.partition(" ")
    tag = _TAG.fullmatch(second)
    if tag:
        frame.app = tag.group(1)
        frame.msg = after
    else:
        frame.msg = rest


def _bsd_time(m: re.Match[str], ctx: Context) -> tuple[int, bool]:
    month, day = _MONTHS[m["mon"]], int(m["day"])
    h, mi, s = int(m["h"]), int(m["m"]), int(m["s"])
    micros = int((m["frac"] or ".0")[1:7].ljust(6, "0"))
    zone = m["zone"]
    offset = 0
    exact = False
    if zone and zone[0] in "+-":
        sign = -1 if zone[0] == "-" else 1
        offset = sign * (int(zone[1:3]) * 60 + int(zone[-2:]))
        exact = True
    elif zone in _UTC_NAMES:
        exact = True
    if m["year"]:
        dt = _dt(int(m["year"]), month, day, h, mi, s, micros)
        if dt is None:
            raise BadValue(f"bad date {m.group(0).strip()!r}")
    else:
        dt = infer_year(month, day, h, mi, s, micros, ctx.ref_micros)
        if dt is None:
            raise BadValue(f"bad date {m.group(0).strip()!r}")
        exact = False
    return epoch_micros(dt) - offset * 60_000_000, exact


def _dt(year: int, month: int, day: int, h: int, mi: int, s: int, us: int) -> datetime | None:
    try:
        return datetime(year, month, day, h, mi, s, us, tzinfo=UTC)
    except ValueError:
        return None


def infer_year(month: int, day: int, h: int, mi: int, s: int, us: int, ref_micros: int) -> datetime | None:
    """The latest year in which this month/day/time is not after `ref_micros` (Feb 29 looks back
    to the last leap year)."""
    ref = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ref_micros)
    for year in range(ref.year, ref.year - 9, -1):
        dt = _dt(year, month, day, h, mi, s, us)
        if dt is not None and dt <= ref:
            return dt
    return None


def epoch_micros(dt: datetime) -> int:
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def iso_time(value: str) -> tuple[int, bool]:
    """ISO 8601 text -> (epoch micros, has a UTC offset). Without an offset it is taken as UTC."""
    micros = to_micros(value)
    if micros is None:
        raise BadValue("missing timestamp")
    return micros, bool(_OFFSET.search(value))


NOTE_NO_OFFSET = "timestamps without a UTC offset: taken as UTC"
NOTE_YEAR = "RFC 3164 timestamps without a year: year inferred from the file's modification time"


def pick_ts(frame: Frame, ctx: Context, own: tuple[int, bool] | None = None) -> int:
    """The record's time: the message's own with a UTC offset, else the header's with one, else
    the message's own (it has a year), else the header's (year maybe inferred)."""
    if own is not None and own[1]:
        return own[0]
    if frame.ts is not None and frame.exact:
        return frame.ts
    ctx.note(NOTE_NO_OFFSET)
    if own is not None:
        return own[0]
    if frame.ts is not None:
        if frame.year_inferred:
            ctx.note(NOTE_YEAR)
        return frame.ts
    raise BadValue("no timestamp in the line")


# ---- field converters shared by the message parsers --------------------------------------------


def ip(value: str | None, name: str, zero_is_none: bool = False) -> str | None:
    """Normalised IP text; empty and `N/A` mean 'none', and so do `0.0.0.0` / `::` where the
    vendor writes them as placeholders (`zero_is_none`)."""
    if value is None:
        return None
    s = value.strip().strip("<>")
    if not s or s in ("N/A", "n/a", "-") or (zero_is_none and s in ("0.0.0.0", "::")):
        return None
    if _IPV4.fullmatch(s):
        return s  # already canonical: the common case, without ipaddress' cost
    try:
        return str(ipaddress.ip_address(s))
    except ValueError:
        raise BadValue(f"{name}: not an IP address: {s!r}") from None


def num(value: str | None, name: str, hi: int | None = None) -> int | None:
    if value is None:
        return None
    s = value.strip()
    if not s:
        return None
    if not s.isdigit():
        raise BadValue(f"{name}: not a number: {s!r}")
    n = int(s)
    if hi is not None and n > hi:
        raise BadValue(f"{name}: out of range: {s!r}")
    return n


def port(value: str | None, name: str) -> int | None:
    return num(value, name, 65535)


def text(value: str | None) -> str | None:
    """Vendor text with 'none' spellings (`N/A`, empty, `-`) as None."""
    if value is None:
        return None
    s = value.strip()
    return None if s in ("", "N/A", "n/a", "-", "(null)") else s


def split_user(value: str | None) -> tuple[str | None, str | None]:
    """(user, domain): CORP\\jsmith -> (jsmith, CORP), as Windows logons are stored."""
    user = text(value)
    if user is not None and "\\" in user:
        domain, user = user.split("\\", 1)
        return text(user), text(domain)
    return user, None


_PROTO_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "icmp", "icmpv6": "icmp", "ipv6-icmp": "icmp"}


def proto(value: str | None) -> str | None:
    """tcp / udp / icmp (ICMPv6 too, as the CSV reader does); other protocols as given, lower case."""
    s = text(value)
    if s is None:
        return None
    s = s.lower()
    return _PROTO_NUMBERS.get(s, s)


_ALLOW = frozenset({"allow", "allowed", "accept", "accepted", "permit", "permitted", "pass", "est-allowed"})
_DENY = frozenset(
    {"deny", "denied", "drop", "dropped", "block", "blocked", "reject", "rejected", "reset-both", "reset-client",
     "reset-server", "drop-icmp", "drop-all-packets"}
)  # fmt: skip


def action(value: str | None) -> str | None:
    """allow / deny from a vendor's action word; None when it is neither."""
    s = (value or "").strip().lower()
    if s in _ALLOW:
        return "allow"
    if s in _DENY:
        return "deny"
    return None
