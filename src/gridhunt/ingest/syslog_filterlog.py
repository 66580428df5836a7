"""pfSense / OPNsense `filterlog` lines (pf), per the Netgate "Raw Filter Log Format" page:
`filterlog[123]: 5,,,1000000103,igb1,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,198.51.100.7,198.51.100.1,40590,22,...`

Common fields: rule, sub rule, anchor, tracker, interface, reason, action, direction, IP version;
IPv4: TOS, ECN, TTL, ID, offset, flags, protocol id, protocol text, length, source, destination;
IPv6: class, flow label, hop limit, protocol text, protocol id, length, source, destination;
then for TCP / UDP: source port, destination port, data length, ...
-> conn (source 'firewall'): action pass -> allow, block / reject -> deny; ports for TCP / UDP; the
packet length as bytes_out (one row per logged packet). Read when the syslog tag / app name is
`filterlog`, or when the message has the filterlog CSV shape.
"""

from __future__ import annotations

import re

from gridhunt.ingest._common import BadValue
from gridhunt.ingest.syslog_frame import Conn, Context, Frame, Ignored, Parsed, action, ip, num, pick_ts, port, proto

NAME = "filterlog"

_SHAPE = re.compile(r"\d+,\d*,[^,]*,[^,]*,[^,]+,[\w-]+,\w+,(?:in|out),[46],")
_IPV4_PROTO_ID, _IPV4_PROTO, _IPV4_LENGTH = 15, 16, 17  # then source, destination, ports
_IPV6_PROTO_ID, _IPV6_PROTO, _IPV6_LENGTH = 13, 12, 14


def parse(frame: Frame, ctx: Context) -> Parsed | Ignored | None:
    msg = frame.msg.strip()
    if frame.app != "filterlog" and not _SHAPE.match(msg):
        return None
    f = msg.split(",")
    if len(f) < 9:
        raise BadValue(f"{NAME}: {len(f)} fields, expected the common 9 and more")
    version = f[8]
    if version == "4":
        pid, ptext, length = _IPV4_PROTO_ID, _IPV4_PROTO, _IPV4_LENGTH
    elif version == "6":
        pid, ptext, length = _IPV6_PROTO_ID, _IPV6_PROTO, _IPV6_LENGTH
    else:
        raise BadValue(f"{NAME}: IP version {version!r}, expected 4 or 6")
    if len(f) < length + 3:
        raise BadValue(f"{NAME}: IPv{version} record with {len(f)} fields, expected at least {length + 3}")
    verdict = action(f[6])
    if verdict is None:
        ctx.note(f"{NAME} action {f[6]!r} is neither allow nor deny: action left empty")
    proto_id = f[pid]
    p = proto(f[ptext]) or proto(proto_id)
    ports = proto_id in ("6", "17")
    if ports and len(f) < length + 5:
        raise BadValue(f"{NAME}: TCP/UDP record without ports")
    row = {
        "ts": pick_ts(frame, ctx),
        "src_ip": ip(f[length + 1], "source"),
        "src_port": port(f[length + 3], "source port") if ports else None,
        "dst_ip": ip(f[length + 2], "destination"),
        "dst_port": port(f[length + 4], "destination port") if ports else None,
        "proto": p,
        "bytes_out": num(f[length], "length"),
        "action": verdict,
        "source": "firewall",
    }
    if row["src_ip"] is None or row["dst_ip"] is None:
        raise BadValue(f"{NAME}: source or destination missing")
    return Parsed([Conn(row)])
