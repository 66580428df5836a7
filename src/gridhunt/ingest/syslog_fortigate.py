"""Fortinet FortiGate key=value logs (FortiOS Log Message Reference), with or without a syslog
header: `date=2026-04-15 time=02:11:09 devname="fgt01" logid="0101039426" type="event" subtype="vpn" ...`.

Time: `eventtime` (epoch s / ms / us / ns by its length) when present, else `date` + `time`
with `tz` ("+0200") when present, else the syslog header.

type=event subtype=vpn:
  action=ssl-login-fail (or logdesc "... login fail")  -> auth failure (user, remip, reason)
  action=tunnel-up                                     -> auth success when a user is named, and
                                                          a VPN session opens (remip -> tunnelip)
  action=tunnel-down                                   -> the session closes: conn (service 'vpn',
                                                          duration, sentbyte -> bytes_out,
                                                          rcvdbyte -> bytes_in, as FortiOS labels them)
  other actions (ssl-new-con, tunnel-stats, negotiate, phase2-up, ...) -> ignored
type=traffic -> conn (source 'firewall'): srcip/srcport -> dstip/dstport, proto number, action
  (accept / close / timeout / *-rst -> allow; deny / block / drop -> deny), sentbyte, rcvdbyte,
  duration; ts is the session start (log time - duration). action=start logs are ignored.
Any other type/subtype is recognised and ignored.
"""

from __future__ import annotations

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

NAME = "FortiGate"

_START = re.compile(r"(?:\d+:\s+)?[a-z_]+=")  # `N: ` is how `execute log display` numbers records
_KV = re.compile(r'([A-Za-z_][\w-]*)=("(?:[^"\\]|\\.)*"|\S*)')
_TZ = re.compile(r"[+-]\d{4}")
_SESSION_ALLOW = frozenset({"accept", "close", "timeout", "server-rst", "client-rst"})


def fields(msg: str) -> dict[str, str] | None:
    """The key=value pairs of a FortiGate record, or None when the message is not one."""
    s = msg.lstrip()
    if not _START.match(s) or "logid=" not in s or "type=" not in s:
        return None
    out: dict[str, str] = {}
    for key, value in _KV.findall(s):
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1].replace('\\"', '"')
        out.setdefault(key, value)
    if "logid" not in out or "type" not in out:
        return None
    return out


def parse(frame: Frame, ctx: Context) -> Parsed | Ignored | None:
    kv = fields(frame.msg)
    if kv is None:
        return None
    kind, sub = kv.get("type", ""), kv.get("subtype", "")
    if kind == "traffic":
        return _traffic(frame, ctx, kv)
    if kind == "event" and sub == "vpn":
        return _vpn(frame, ctx, kv)
    return Ignored(f"{NAME} type={kind} subtype={sub}")


def _own_time(kv: dict[str, str]) -> tuple[int, bool] | None:
    et = kv.get("eventtime", "")
    if et.isdigit():  # FortiOS 6.0 wrote seconds, 6.2+ nanoseconds
        n = int(et)
        if n >= 10**17:
            return n // 1000, True
        if n >= 10**14:
            return n, True
        if n >= 10**11:
            return n * 1000, True
        return n * 1_000_000, True
    date, clock = kv.get("date"), kv.get("time")
    if not date or not clock:
        return None
    tz = kv.get("tz", "")
    zone = f"{tz[:3]}:{tz[3:]}" if _TZ.fullmatch(tz) else ""
    try:
        return iso_time(f"{date}T{clock}{zone}")
    except BadValue as exc:
        raise BadValue(f"{NAME}: date/time: {exc}") from None


def _gateway(frame: Frame, kv: dict[str, str]) -> str | None:
    return text(kv.get("devname")) or frame.host


def _vpn(frame: Frame, ctx: Context, kv: dict[str, str]) -> Parsed | Ignored:
    act = kv.get("action", "")
    logdesc = kv.get("logdesc", "").lower()
    ts = pick_ts(frame, ctx, _own_time(kv))
    gateway = _gateway(frame, kv)
    user, domain = split_user(kv.get("user") or kv.get("xauthuser"))
    remip = to_ip(kv.get("remip"), "remip", True)
    if act == "ssl-login-fail" or (not act and "login fail" in logdesc):
        row = {
            "ts": ts,
            "user": user,
            "domain": domain,
            "src_ip": remip,
            "dst_host": gateway,
            "outcome": "failure",
            "failure_reason": text(kv.get("reason")) or text(kv.get("msg")),
        }
        return Parsed([Auth(row)])
    if act not in ("tunnel-up", "tunnel-down"):
        return Ignored(f"{NAME} vpn action={act or logdesc or '?'}")
    tunnel = text(kv.get("tunnelid"))
    if tunnel == "0":  # no tunnel yet
        tunnel = None
    key = (NAME, gateway, tunnel) if tunnel else (NAME, gateway, (user or "").lower(), remip)
    row = {
        "ts": ts,
        "src_ip": remip,
        "dst_ip": to_ip(kv.get("tunnelip"), "tunnelip", True),
        "_gateway": gateway,
        "service": "vpn",
        "uid": tunnel,
        "source": "vpn",
    }
    if act == "tunnel-up":
        out: list = [SessionOpen(key, row)]
        if user is not None:
            auth = {
                "ts": ts,
                "user": user,
                "domain": domain,
                "src_ip": remip,
                "dst_host": gateway,
                "outcome": "success",
            }
            out.insert(0, Auth(auth))
        return Parsed(out)
    row["duration"] = _float(num(kv.get("duration"), "duration"))
    row["bytes_out"] = num(kv.get("sentbyte"), "sentbyte")
    row["bytes_in"] = num(kv.get("rcvdbyte"), "rcvdbyte")
    return Parsed([SessionClose(key, row)])


def _float(value: int | None) -> float | None:
    return None if value is None else float(value)


def _traffic(frame: Frame, ctx: Context, kv: dict[str, str]) -> Parsed | Ignored:
    act = kv.get("action", "").lower()
    if act == "start":  # logtraffic-start: the session's end log carries the totals
        return Ignored(f"{NAME} traffic action=start")
    end = pick_ts(frame, ctx, _own_time(kv))
    verdict = "allow" if act in _SESSION_ALLOW else action(act)
    if verdict is None:
        ctx.note(f"{NAME} traffic action {act!r} is neither allow nor deny: action left empty")
    duration = _float(num(kv.get("duration"), "duration"))
    p = proto(kv.get("proto"))
    ports = p in ("tcp", "udp", "132")
    src, dst = to_ip(kv.get("srcip"), "srcip"), to_ip(kv.get("dstip"), "dstip")
    if src is None or dst is None:
        raise BadValue(f"{NAME} traffic: srcip / dstip missing")
    row = {
        "ts": end - round((duration or 0) * 1_000_000),
        "src_ip": src,
        "src_port": port(kv.get("srcport"), "srcport") if ports else None,
        "dst_ip": dst,
        "dst_port": port(kv.get("dstport"), "dstport") if ports else None,
        "proto": p,
        "duration": duration,
        "bytes_out": num(kv.get("sentbyte"), "sentbyte"),
        "bytes_in": num(kv.get("rcvdbyte"), "rcvdbyte"),
        "action": verdict,
        "uid": text(kv.get("sessionid")),
        "source": "firewall",
    }
    return Parsed([Conn(row)])
