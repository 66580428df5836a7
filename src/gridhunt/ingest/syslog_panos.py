"""Palo Alto Networks PAN-OS syslog, default CSV format (PAN-OS "Syslog Field Descriptions"):
`1,<receive time>,<serial>,<TYPE>,<subtype>,<FUTURE_USE>,<generated time>,...`.

GLOBALPROTECT log type (PAN-OS 9.1+; field positions of the GlobalProtect Log Fields page):
  event_id portal-auth / gateway-auth -> auth (status success|failure; user; public IP; machine
           name as src_host; Error, else Reason, as failure_reason; Authentication Method as
           auth_package; Gateway, else Portal, else Device Name as dst_host)
  gateway-connected -> a VPN session opens (public IP -> private IP); gateway-logout closes it
           (Login Duration in seconds); other event ids are ignored.
  Time: High Res Timestamp (ISO 8601 with offset) when present, else Generated Time.
SYSTEM log, subtype globalprotect (the pre-9.1 way): event ids globalprotectportal-auth-succ /
  -fail and globalprotectgateway-auth-succ / -fail -> auth, user and address read from the
  description ("Login from: IP, User name: U, ..., Reason: R"); other SYSTEM logs are ignored.
TRAFFIC log, subtypes end / drop / deny -> conn (source 'firewall'): addresses, ports, protocol,
  action, Bytes Sent -> bytes_out, Bytes Received -> bytes_in, Elapsed Time, Application as
  service; ts = Start Time. Subtype start is ignored (its end log carries the totals).
PAN-OS times are device-local without an offset: the offset of a High Resolution Timestamp field
in the same record is applied when there is one, else they are taken as UTC.
Other log types (THREAT, CONFIG, HIPMATCH, ...) are recognised and ignored.
"""

from __future__ import annotations

import csv
import re

from gridhunt.ingest._common import BadValue
from gridhunt.ingest.syslog_frame import (
    Auth,
    Conn,
    Context,
    Frame,
    Ignored,
    Parsed,
    SessionClose,
    SessionOpen,
    action,
    iso_time,
    num,
    pick_ts,
    port,
    proto,
    split_user,
    text,
)
from gridhunt.ingest.syslog_frame import ip as to_ip

NAME = "PAN-OS"

_HEAD = re.compile(r"[^,\s]*,\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2},[^,]*,(?P<type>[A-Z]+),")
_HIGH_RES = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?([+-])(\d{2}):(\d{2})")
_LOGIN_FROM = re.compile(r"Login from:\s*(?P<ip>[^,\s]+),\s*User name:\s*(?P<user>[^,]*)")
_REASON = re.compile(r"Reason:\s*(?P<reason>.*?)\.?\s*$")

# GLOBALPROTECT field positions
GP_TIME, GP_EVENT, GP_AUTH_METHOD, GP_USER, GP_MACHINE = 6, 8, 10, 12, 14
GP_PUBLIC, GP_PUBLIC6, GP_PRIVATE, GP_PRIVATE6 = 15, 16, 17, 18
GP_REASON, GP_ERROR, GP_STATUS, GP_DURATION, GP_PORTAL, GP_HIGH_RES, GP_GATEWAY, GP_DEVICE = (
    25, 26, 28, 30, 33, 36, 41, 47
)  # fmt: skip
GP_MIN_FIELDS = GP_STATUS + 1
# TRAFFIC field positions
TR_SUBTYPE, TR_TIME, TR_SRC, TR_DST, TR_APP, TR_SESSION, TR_SPORT, TR_DPORT = 4, 6, 7, 8, 14, 22, 24, 25
TR_PROTO, TR_ACTION, TR_SENT, TR_RCVD, TR_START, TR_ELAPSED = 29, 30, 32, 33, 35, 36
TR_MIN_FIELDS = TR_ELAPSED + 1
# SYSTEM field positions
SY_SUBTYPE, SY_TIME, SY_EVENT, SY_DESCRIPTION, SY_DEVICE = 4, 6, 8, 14, 22

_GP_AUTH = frozenset({"portal-auth", "gateway-auth"})
_SYSTEM_AUTH = {
    "globalprotectportal-auth-succ": True,
    "globalprotectportal-auth-fail": False,
    "globalprotectgateway-auth-succ": True,
    "globalprotectgateway-auth-fail": False,
}


def parse(frame: Frame, ctx: Context) -> Parsed | Ignored | None:
    m = _HEAD.match(frame.msg)
    if m is None:
        return None
    kind = m["type"]
    if kind not in ("GLOBALPROTECT", "TRAFFIC", "SYSTEM"):
        return Ignored(f"{NAME} {kind}")
    try:
        f = next(csv.reader([frame.msg]))
    except csv.Error as exc:
        raise BadValue(f"{NAME} {kind}: bad CSV: {exc}") from None
    if kind == "GLOBALPROTECT":
        return _globalprotect(frame, ctx, f)
    if kind == "TRAFFIC":
        return _traffic(frame, ctx, f)
    return _system(frame, ctx, f)


def _get(f: list[str], i: int) -> str | None:
    return f[i] if i < len(f) else None


def _local(value: str | None, offset_minutes: int | None, name: str) -> tuple[int, bool] | None:
    """PAN-OS `2026/04/15 02:11:09` (device-local) -> (epoch micros, exact)."""
    s = text(value)
    if s is None:
        return None
    try:
        micros, _ = iso_time(s.replace("/", "-", 2))
    except BadValue:
        raise BadValue(f"{NAME} {name}: bad time {s!r}") from None
    if offset_minutes is None:
        return micros, False
    return micros - offset_minutes * 60_000_000, True


def _offset(f: list[str], start: int) -> int | None:
    """Minutes east of UTC of the first High Resolution Timestamp-looking field from `start`."""
    for value in f[start:]:
        m = _HIGH_RES.fullmatch(value)
        if m:
            minutes = int(m[2]) * 60 + int(m[3])
            return -minutes if m[1] == "-" else minutes
    return None


def _gateway(frame: Frame, f: list[str]) -> str | None:
    for i in (GP_GATEWAY, GP_PORTAL, GP_DEVICE):
        value = text(_get(f, i))
        if value is not None:
            return value
    return frame.host


def _globalprotect(frame: Frame, ctx: Context, f: list[str]) -> Parsed | Ignored:
    if len(f) < GP_MIN_FIELDS:
        raise BadValue(f"{NAME} GLOBALPROTECT: {len(f)} fields, expected at least {GP_MIN_FIELDS}")
    event = f[GP_EVENT].strip()
    if event not in _GP_AUTH and event not in ("gateway-connected", "gateway-logout"):
        return Ignored(f"{NAME} GLOBALPROTECT {event or '?'}")
    high_res = text(_get(f, GP_HIGH_RES))
    own = iso_time(high_res) if high_res and _HIGH_RES.fullmatch(high_res) else _local(f[GP_TIME], None, "time")
    ts = pick_ts(frame, ctx, own)
    user, domain = split_user(f[GP_USER])
    public = to_ip(f[GP_PUBLIC], "Public IP", True) or to_ip(f[GP_PUBLIC6], "Public IPv6", True)
    gateway = _gateway(frame, f)
    if event in _GP_AUTH:
        status = f[GP_STATUS].strip().lower()
        if status not in ("success", "failure"):
            raise BadValue(f"{NAME} GLOBALPROTECT {event}: status: expected success|failure, got {status!r}")
        ok = status == "success"
        row = {
            "ts": ts,
            "user": user,
            "domain": domain,
            "src_ip": public,
            "src_host": text(f[GP_MACHINE]),
            "dst_host": gateway,
            "outcome": "success" if ok else "failure",
            "auth_package": text(f[GP_AUTH_METHOD]),
            "failure_reason": None if ok else (text(f[GP_ERROR]) or text(f[GP_REASON])),
        }
        return Parsed([Auth(row)])
    key = (NAME, gateway, (user or "").lower(), public)
    row = {
        "ts": ts,
        "src_ip": public,
        "dst_ip": to_ip(f[GP_PRIVATE], "Private IP", True) or to_ip(f[GP_PRIVATE6], "Private IPv6", True),
        "_gateway": gateway,
        "service": "vpn",
        "source": "vpn",
    }
    if event == "gateway-connected":
        return Parsed([SessionOpen(key, row)])
    seconds = num(_get(f, GP_DURATION), "Login Duration")
    row["duration"] = float(seconds) if seconds else None
    return Parsed([SessionClose(key, row)])


def _system(frame: Frame, ctx: Context, f: list[str]) -> Parsed | Ignored:
    if len(f) <= SY_DESCRIPTION:
        raise BadValue(f"{NAME} SYSTEM: {len(f)} fields, expected at least {SY_DESCRIPTION + 1}")
    event = f[SY_EVENT].strip()
    ok = _SYSTEM_AUTH.get(event)
    if ok is None:
        return Ignored(f"{NAME} SYSTEM {f[SY_SUBTYPE].strip() or '?'}")
    description = f[SY_DESCRIPTION]
    m = _LOGIN_FROM.search(description)
    if m is None:
        raise BadValue(f"{NAME} SYSTEM {event}: description lacks 'Login from: ..., User name: ...'")
    user, domain = split_user(m["user"])
    reason = _REASON.search(description) if not ok else None
    row = {
        "ts": pick_ts(frame, ctx, _local(f[SY_TIME], _offset(f, SY_DESCRIPTION + 1), "time")),
        "user": user,
        "domain": domain,
        "src_ip": to_ip(m["ip"], "Login from"),
        "dst_host": text(_get(f, SY_DEVICE)) or frame.host,
        "outcome": "success" if ok else "failure",
        "failure_reason": text(reason["reason"]) if reason else (None if ok else "authentication failed"),
    }
    return Parsed([Auth(row)])


def _traffic(frame: Frame, ctx: Context, f: list[str]) -> Parsed | Ignored:
    if len(f) < TR_MIN_FIELDS:
        raise BadValue(f"{NAME} TRAFFIC: {len(f)} fields, expected at least {TR_MIN_FIELDS}")
    subtype = f[TR_SUBTYPE].strip()
    if subtype == "start":
        return Ignored(f"{NAME} TRAFFIC start (its end log carries the totals)")
    offset = _offset(f, TR_ELAPSED + 1)
    own = _local(f[TR_START], offset, "Start Time") or _local(f[TR_TIME], offset, "Generated Time")
    verdict = action(f[TR_ACTION])
    if verdict is None:
        ctx.note(f"{NAME} TRAFFIC action {f[TR_ACTION]!r} is neither allow nor deny: action left empty")
    p = proto(f[TR_PROTO])
    ports = p in ("tcp", "udp", "sctp")
    src, dst = to_ip(f[TR_SRC], "Source Address"), to_ip(f[TR_DST], "Destination Address")
    if src is None or dst is None:
        raise BadValue(f"{NAME} TRAFFIC: source or destination address missing")
    elapsed = num(f[TR_ELAPSED], "Elapsed Time")
    app = text(f[TR_APP])
    row = {
        "ts": pick_ts(frame, ctx, own),
        "src_ip": src,
        "src_port": port(f[TR_SPORT], "Source Port") if ports else None,
        "dst_ip": dst,
        "dst_port": port(f[TR_DPORT], "Destination Port") if ports else None,
        "proto": p,
        "service": None if app in ("incomplete", "not-applicable") else app,
        "duration": None if elapsed is None else float(elapsed),
        "bytes_out": num(f[TR_SENT], "Bytes Sent"),
        "bytes_in": num(f[TR_RCVD], "Bytes Received"),
        "action": verdict,
        "uid": None if f[TR_SESSION].strip() in ("", "0") else f[TR_SESSION].strip(),  # 0: no session
        "source": "firewall",
    }
    return Parsed([Conn(row)])
