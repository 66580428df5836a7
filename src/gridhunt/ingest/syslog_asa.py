"""Cisco ASA / FTD syslog messages (`%ASA-6-113004: ...`), per the Cisco Secure Firewall ASA Series
Syslog Messages guide.

auth (source 'vpn'):
  113004 / 113012  AAA user authentication Successful : server = ... | local database : user = U
  113005 / 113015  AAA user authentication Rejected : reason = R : ... : user = U : user IP = IP
  611101 / 611102  User authentication succeeded | failed: IP address: IP, Uname: U
VPN sessions -> conn (service 'vpn', public IP -> tunnel address):
  113039 AnyConnect parent session started, 716001 WebVPN session started, 722022 SVC connection
  established: open the session; 722051 address assigned: its tunnel address; 716002 WebVPN
  session terminated: its end time; 113019 Session disconnected (Duration, Bytes xmt / rcv):
  closes it. Keyed by (device, user, public IP).
Firewall -> conn (source 'firewall'):
  106023 Deny <proto> src if:ip/port dst if:ip/port by access-group (deny)
  106100 access-list <acl> permitted|denied|est-allowed <proto> if/ip(port) -> if/ip(port)
  302014 / 302016 Teardown TCP|UDP connection (duration; allow). The flow's initiator comes from
  its 302013 / 302015 Built inbound|outbound message; without one, the side with the higher port.
  The teardown's byte count is the total of both directions, which bytes_out / bytes_in cannot
  hold: it is left out (noted).
Every other ASA message id is recognised and counted as ignored.
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
    SessionEnd,
    SessionOpen,
    action,
    ip,
    pick_ts,
    port,
    proto,
    split_user,
    text,
)

NAME = "Cisco ASA"

_HEAD = re.compile(r"%(?:ASA|FTD|FWSM|PIX)-(?:[a-z]+-)?(\d)-(\d{6}):\s*(.*)$")
# what may stand before %ASA-: a relay's second header (`Apr 15 2026 02:11:09 asa01 :`), nothing quoted
_QUOTED = re.compile(r"[{}\"'=,]")
_MAX_PREFIX = 64
_IP = r"[0-9A-Fa-f:.]+"
# `Group <g> User <u> IP <ip> ...` (brackets in current releases, bare words in the guide's templates)
_GUI = re.compile(rf"Group\s+<?(?P<group>.*?)>?\s+User\s+<?(?P<user>.*?)>?\s+IP\s+<?(?P<ip>{_IP})>?\s+(?P<rest>.*)$")
_SERVER = r"(?:server\s*=\s*<?[^:>]*?>?|local database)"  # `server = 10.1.1.1` or `local database`
_AAA_OK = re.compile(rf"AAA user (?P<kind>\w+) Successful\s*:\s*{_SERVER}\s*:\s*user\s*=\s*<?(?P<user>.*?)>?\s*$")
_AAA_REJECTED = re.compile(
    rf"AAA user (?P<kind>\w+) Rejected\s*:\s*reason\s*=\s*(?P<reason>.*?)\s*:\s*{_SERVER}"
    rf"\s*:\s*user\s*=\s*<?(?P<user>.*?)>?(?:\s*:\s*user IP\s*=\s*<?(?P<ip>{_IP})>?)?\s*$"
)
_USER_AUTH = re.compile(
    rf"User authentication (?P<result>succeeded|failed):\s*"
    rf"(?:IP[^:,]*[:,]\s*(?P<ip>{_IP})\s*[,:]\s*)?Uname:\s*(?P<user>.+?)\s*$"
)
_DISCONNECTED = re.compile(
    r"Group\s*(?:=\s*|<)(?P<group>[^,>]*)>?,?\s*Username\s*(?:=\s*|<)(?P<user>[^,>]*)>?,\s*"
    rf"IP\s*(?:=\s*|<)(?P<ip>{_IP})>?,\s*Session disconnected\.\s*Session Type:\s*(?P<type>[^,]*),\s*"
    r"Duration:\s*(?P<duration>[^,]+),\s*Bytes xmt:\s*(?P<xmt>\d+),\s*Bytes rcv:\s*(?P<rcv>\d+)"
    r"(?:,\s*Reason:\s*(?P<reason>.*?))?\s*$"
)
_HMS = re.compile(r"(?:(\d+)d\s*)?(\d+)h:(\d+)m:(\d+)s")
_ASSIGNED = re.compile(rf"(?:IPv4\s+)?Address\s+<?(?P<v4>{_IP})>?(?:\s+IPv6\s+address\s+<?(?P<v6>{_IP})>?)?\s+assigned")
_DENY = re.compile(
    rf"Deny (?P<proto>\S+) src (?P<sif>[^:\s]+):(?P<src>{_IP}?)(?:/(?P<sport>\d+))? "
    rf"dst (?P<dif>[^:\s]+):(?P<dst>{_IP}?)(?:/(?P<dport>\d+))?(?:\s|$)"
)
_ACL = re.compile(
    rf"access-list (?P<acl>\S+) (?P<act>permitted|denied|est-allowed) (?P<proto>\S+) "
    rf"(?P<sif>[^/\s]+)/(?P<src>{_IP})\((?P<sport>\d+)\)(?:\s*\([^)]*\))*\s*->\s*"
    rf"(?P<dif>[^/\s]+)/(?P<dst>{_IP})\((?P<dport>\d+)\)"
)
_BUILT = re.compile(r"Built (?P<dir>inbound|outbound) (?:TCP|UDP) connection (?P<id>\d+) ")
_TEARDOWN = re.compile(
    rf"Teardown (?P<proto>TCP|UDP) connection (?P<id>\d+) for (?P<aif>[^:\s]+):(?P<a>{_IP}?)/(?P<ap>\d+) "
    rf"to (?P<bif>[^:\s]+):(?P<b>{_IP}?)/(?P<bp>\d+) duration (?P<duration>[\d:]+)(?: bytes (?P<bytes>\d+))?"
)
_BUILT_KEEP = 200_000  # Built directions remembered until their teardown (oldest dropped beyond this)


def parse(frame: Frame, ctx: Context) -> Parsed | Ignored | None:
    m = _HEAD.search(frame.msg)
    if m is None or _QUOTED.search(frame.msg, 0, m.start()) or m.start() > _MAX_PREFIX:
        return None  # a message quoting an ASA line (JSON, a ticket) is not one
    msg_id, body = m.group(2), m.group(3)
    handler = _HANDLERS.get(msg_id)
    if handler is None:
        return Ignored(f"{NAME} {msg_id}")
    return handler(frame, ctx, msg_id, body)


def _layout(msg_id: str) -> BadValue:
    return BadValue(f"{NAME} {msg_id}: message layout not recognised")


def _user(value: str | None, ctx: Context) -> tuple[str | None, str | None]:
    if value is not None and value.strip().strip("*") == "" and value.strip():
        ctx.note(f"{NAME}: user names masked as ***** (the ASA hides names it does not know): user left empty")
        return None, None
    return split_user(value)


def _auth(frame: Frame, ctx: Context, ok: bool, user: str | None, src: str | None, reason: str | None) -> Parsed:
    name, domain = _user(user, ctx)
    row = {
        "ts": pick_ts(frame, ctx),
        "user": name,
        "domain": domain,
        "src_ip": ip(src, "user IP"),
        "dst_host": frame.host,
        "outcome": "success" if ok else "failure",
        "failure_reason": None if ok else text(reason),
    }
    return Parsed([Auth(row)])


def _aaa(frame: Frame, ctx: Context, msg_id: str, body: str) -> Parsed | Ignored:
    ok = msg_id in ("113004", "113012")
    m = (_AAA_OK if ok else _AAA_REJECTED).search(body)
    if m is None:
        raise _layout(msg_id)
    if m["kind"] != "authentication":  # authorization / accounting: not a logon
        return Ignored(f"{NAME} {msg_id} ({m['kind']})")
    return _auth(frame, ctx, ok, m["user"], None if ok else m["ip"], None if ok else m["reason"])


def _user_auth(frame: Frame, ctx: Context, msg_id: str, body: str) -> Parsed:
    m = _USER_AUTH.search(body)
    if m is None:
        raise _layout(msg_id)
    ok = m["result"] == "succeeded"
    return _auth(frame, ctx, ok, m["user"], m["ip"], None if ok else "user authentication failed")


def _gui(msg_id: str, body: str) -> re.Match[str]:
    m = _GUI.search(body)
    if m is None:
        raise _layout(msg_id)
    return m


def _key(frame: Frame, user: str | None, src: str | None) -> tuple:
    return (NAME, frame.host, (user or "").lower(), src)


def _session_start(frame: Frame, ctx: Context, msg_id: str, body: str) -> Parsed:
    m = _gui(msg_id, body)
    src = ip(m["ip"], "IP")
    ts = pick_ts(frame, ctx)
    row = {"ts": ts, "src_ip": src, "_gateway": frame.host, "service": "vpn", "source": "vpn"}
    return Parsed([SessionOpen(_key(frame, m["user"], src), row)])


def _assigned(frame: Frame, ctx: Context, msg_id: str, body: str) -> Parsed:
    m = _gui(msg_id, body)
    a = _ASSIGNED.search(m["rest"])
    if a is None:
        raise _layout(msg_id)
    src = ip(m["ip"], "IP")
    inner = ip(a["v4"], "IPv4 address", True) or ip(a["v6"], "IPv6 address", True)
    row = {"ts": pick_ts(frame, ctx), "src_ip": src, "dst_ip": inner, "service": "vpn", "source": "vpn"}
    return Parsed([SessionOpen(_key(frame, m["user"], src), row)])


def _webvpn_end(frame: Frame, ctx: Context, msg_id: str, body: str) -> Parsed:
    m = _gui(msg_id, body)
    return Parsed([SessionEnd(_key(frame, m["user"], ip(m["ip"], "IP")), pick_ts(frame, ctx))])


def _duration(value: str, msg_id: str) -> float:
    m = _HMS.fullmatch(value.strip())
    if m is None:
        raise BadValue(f"{NAME} {msg_id}: Duration: not d/h/m/s: {value!r}")
    d, h, mi, s = (int(x) if x else 0 for x in m.groups())
    return float(((d * 24 + h) * 60 + mi) * 60 + s)


def _disconnected(frame: Frame, ctx: Context, msg_id: str, body: str) -> Parsed:
    m = _DISCONNECTED.search(body)
    if m is None:
        raise _layout(msg_id)
    src = ip(m["ip"], "IP")
    row = {
        "ts": pick_ts(frame, ctx),
        "src_ip": src,
        "_gateway": frame.host,
        "service": "vpn",
        "duration": _duration(m["duration"], msg_id),
        # xmt = sent by the ASA to the client; the row runs client -> ASA
        "bytes_out": int(m["rcv"]),
        "bytes_in": int(m["xmt"]),
        "source": "vpn",
    }
    return Parsed([SessionClose(_key(frame, m["user"], src), row)])


def _flow(frame: Frame, ctx: Context, m: re.Match[str], verdict: str | None, msg_id: str) -> Parsed:
    p = proto(m["proto"])
    ports = p in ("tcp", "udp")
    row = {
        "ts": pick_ts(frame, ctx),
        "src_ip": ip(m["src"], "src"),
        "src_port": port(m["sport"], "src port") if ports else None,
        "dst_ip": ip(m["dst"], "dst"),
        "dst_port": port(m["dport"], "dst port") if ports else None,
        "proto": p,
        "action": verdict,
        "source": "firewall",
    }
    if row["src_ip"] is None or row["dst_ip"] is None:
        raise BadValue(f"{NAME} {msg_id}: missing address")
    return Parsed([Conn(row)])


def _deny(frame: Frame, ctx: Context, msg_id: str, body: str) -> Parsed:
    m = _DENY.search(body)
    if m is None:
        raise _layout(msg_id)
    return _flow(frame, ctx, m, "deny", msg_id)


def _acl(frame: Frame, ctx: Context, msg_id: str, body: str) -> Parsed:
    m = _ACL.search(body)
    if m is None:
        raise _layout(msg_id)
    return _flow(frame, ctx, m, action(m["act"]), msg_id)


def _built(frame: Frame, ctx: Context, msg_id: str, body: str) -> Ignored:
    m = _BUILT.search(body)
    if m is None:
        raise _layout(msg_id)
    built: dict[str, str] = ctx.state.setdefault("asa_built", {})
    built[(frame.host or "") + "/" + m["id"]] = m["dir"]
    if len(built) > _BUILT_KEEP:
        del built[next(iter(built))]
    return Ignored(f"{NAME} {msg_id} (Built: its Teardown carries the flow)")


def _hms(value: str, msg_id: str) -> float:
    parts = value.split(":")
    if not all(p.isdigit() for p in parts) or len(parts) > 4:
        raise BadValue(f"{NAME} {msg_id}: duration: not h:mm:ss: {value!r}")
    total = 0
    for p in parts:
        total = total * 60 + int(p)
    return float(total)


def _teardown(frame: Frame, ctx: Context, msg_id: str, body: str) -> Parsed:
    m = _TEARDOWN.search(body)
    if m is None:
        raise _layout(msg_id)
    a, ap, b, bp = ip(m["a"], "address"), port(m["ap"], "port"), ip(m["b"], "address"), port(m["bp"], "port")
    direction = ctx.state.get("asa_built", {}).pop((frame.host or "") + "/" + m["id"], None)
    if direction is None:
        # no Built message: the server is the side with the lower port
        direction = "outbound" if (ap or 0) < (bp or 0) else "inbound"
        ctx.note(f"{NAME} teardowns without their Built message: initiator taken as the side with the higher port")
    # inbound: the first ('for') side started it; outbound: the second did
    (src, sport, dst, dport) = (a, ap, b, bp) if direction == "inbound" else (b, bp, a, ap)
    duration = _hms(m["duration"], msg_id)
    end = pick_ts(frame, ctx)
    if m["bytes"] is not None:
        ctx.note(f"{NAME} teardown byte counts are totals of both directions: not stored in bytes_out / bytes_in")
    row = {
        "ts": end - round(duration * 1_000_000),
        "src_ip": src,
        "src_port": sport,
        "dst_ip": dst,
        "dst_port": dport,
        "proto": proto(m["proto"]),
        "duration": duration,
        "action": "allow",
        "uid": m["id"],
        "source": "firewall",
    }
    return Parsed([Conn(row)])


_HANDLERS = {
    "113004": _aaa,
    "113012": _aaa,
    "113005": _aaa,
    "113015": _aaa,
    "611101": _user_auth,
    "611102": _user_auth,
    "113039": _session_start,
    "716001": _session_start,
    "722022": _session_start,
    "722051": _assigned,
    "716002": _webvpn_end,
    "113019": _disconnected,
    "106023": _deny,
    "106100": _acl,
    "302013": _built,
    "302015": _built,
    "302014": _teardown,
    "302016": _teardown,
}
