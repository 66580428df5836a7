"""Linux netfilter LOG / NFLOG lines (iptables, nftables, ufw, firewalld) as the kernel writes them:
`kernel: [ 3529.289825] [UFW BLOCK] IN=eth0 OUT= MAC=... SRC=198.51.100.7 DST=203.0.113.10 LEN=60 ...
PROTO=TCP SPT=51234 DPT=22 ...`.

-> conn (source 'firewall'): SRC, DST, PROTO (TCP/UDP/ICMP/ICMPv6 or a number), SPT, DPT, and the
packet's IP length (the first LEN=) as bytes_out: one row per logged packet.
The verdict is not in the line, only in the --log-prefix the rule author chose: a prefix word
BLOCK / DROP / REJECT / DENY (-ED forms too) gives deny, ACCEPT / ALLOW / PASS / PERMIT allow;
any other prefix (say `[UFW AUDIT]`, or none) leaves action empty and is counted in a note.
"""

from __future__ import annotations

import re

from gridhunt.ingest._common import BadValue
from gridhunt.ingest.syslog_frame import Conn, Context, Frame, Ignored, Parsed, ip, num, pick_ts, port, proto

NAME = "netfilter"

_START = re.compile(r"(?:^|\s)IN=\S*\s+OUT=\S*\s")
_UPTIME = re.compile(r"^\s*\[\s*\d+\.\d+\]\s*")
_MAX_PREFIX = 64  # iptables allows 29 characters, nftables 127; with the uptime stamp removed
_PAIR = re.compile(r"([A-Z]+)=(\S*)")
_DENY_WORDS = frozenset({"BLOCK", "BLOCKED", "DROP", "DROPPED", "REJECT", "REJECTED", "DENY", "DENIED"})
_ALLOW_WORDS = frozenset({"ACCEPT", "ACCEPTED", "ALLOW", "ALLOWED", "PASS", "PASSED", "PERMIT", "PERMITTED"})


def parse(frame: Frame, ctx: Context) -> Parsed | Ignored | None:
    msg = frame.msg
    m = _START.search(msg)
    if m is None or " SRC=" not in msg or " DST=" not in msg:
        return None
    prefix = _UPTIME.sub("", msg[: m.start()]).strip()
    if len(prefix) > _MAX_PREFIX or any(c in prefix for c in '{}"'):
        return None  # text that merely quotes a netfilter line (JSON, a mail, ...)
    words = set(re.split(r"[^A-Za-z]+", prefix.upper()))
    if words & _DENY_WORDS:
        verdict: str | None = "deny"
    elif words & _ALLOW_WORDS:
        verdict = "allow"
    else:
        verdict = None
        ctx.note(f"{NAME} lines whose log prefix {prefix or '(none)'!r} says neither allow nor deny: action left empty")
    kv: dict[str, str] = {}
    for key, value in _PAIR.findall(msg[m.start() :]):
        kv.setdefault(key, value)  # the first LEN= is the IP length (UDP repeats LEN= later)
    src, dst = ip(kv.get("SRC"), "SRC"), ip(kv.get("DST"), "DST")
    if src is None or dst is None:
        raise BadValue(f"{NAME}: SRC / DST missing")
    p = proto(kv.get("PROTO"))
    ports = p in ("tcp", "udp", "udplite", "sctp", "dccp")
    row = {
        "ts": pick_ts(frame, ctx),
        "src_ip": src,
        "src_port": port(kv.get("SPT"), "SPT") if ports else None,
        "dst_ip": dst,
        "dst_port": port(kv.get("DPT"), "DPT") if ports else None,
        "proto": p,
        "bytes_out": num(kv.get("LEN"), "LEN"),
        "action": verdict,
        "source": "firewall",
    }
    return Parsed([Conn(row)])
