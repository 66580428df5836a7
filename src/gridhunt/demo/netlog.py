"""Network and application log lines: Zeek TSV (conn, dns, http, ssl, modbus, dnp3), firewall.csv,
vpn.csv and AMI head-end / DMS audit JSON lines, exactly as docs/FORMATS.md specifies.

`Net` ties the sources together the way a real network would record one action: a flow
gets a Zeek conn line with a uid shared by its dns/http/ssl lines, and a firewall row when
it crosses the perimeter or a zone boundary.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import orjson

from gridhunt.demo.sinks import Sink
from gridhunt.demo.timeutil import START, iso_ms, zeek_stamp, zeek_time

ZEEK_FIELDS: dict[str, tuple[list[str], list[str]]] = {
    "conn": (
        [
            "ts",
            "uid",
            "id.orig_h",
            "id.orig_p",
            "id.resp_h",
            "id.resp_p",
            "proto",
            "service",
            "duration",
            "orig_bytes",
            "resp_bytes",
            "conn_state",
            "local_orig",
            "local_resp",
            "missed_bytes",
            "history",
            "orig_pkts",
            "orig_ip_bytes",
            "resp_pkts",
            "resp_ip_bytes",
            "tunnel_parents",
        ],
        [
            "time",
            "string",
            "addr",
            "port",
            "addr",
            "port",
            "enum",
            "string",
            "interval",
            "count",
            "count",
            "string",
            "bool",
            "bool",
            "count",
            "string",
            "count",
            "count",
            "count",
            "count",
            "set[string]",
        ],
    ),
    "dns": (
        [
            "ts",
            "uid",
            "id.orig_h",
            "id.orig_p",
            "id.resp_h",
            "id.resp_p",
            "proto",
            "trans_id",
            "rtt",
            "query",
            "qclass",
            "qclass_name",
            "qtype",
            "qtype_name",
            "rcode",
            "rcode_name",
            "AA",
            "TC",
            "RD",
            "RA",
            "Z",
            "answers",
            "TTLs",
            "rejected",
        ],
        [
            "time",
            "string",
            "addr",
            "port",
            "addr",
            "port",
            "enum",
            "count",
            "interval",
            "string",
            "count",
            "string",
            "count",
            "string",
            "count",
            "string",
            "bool",
            "bool",
            "bool",
            "bool",
            "count",
            "vector[string]",
            "vector[interval]",
            "bool",
        ],
    ),
    "http": (
        [
            "ts",
            "uid",
            "id.orig_h",
            "id.orig_p",
            "id.resp_h",
            "id.resp_p",
            "trans_depth",
            "method",
            "host",
            "uri",
            "referrer",
            "version",
            "user_agent",
            "origin",
            "request_body_len",
            "response_body_len",
            "status_code",
            "status_msg",
            "info_code",
            "info_msg",
            "tags",
            "username",
            "password",
            "proxied",
            "orig_fuids",
            "orig_filenames",
            "orig_mime_types",
            "resp_fuids",
            "resp_filenames",
            "resp_mime_types",
        ],
        [
            "time",
            "string",
            "addr",
            "port",
            "addr",
            "port",
            "count",
            "string",
            "string",
            "string",
            "string",
            "string",
            "string",
            "string",
            "count",
            "count",
            "count",
            "string",
            "count",
            "string",
            "set[enum]",
            "string",
            "string",
            "set[string]",
            "vector[string]",
            "vector[string]",
            "vector[string]",
            "vector[string]",
            "vector[string]",
            "vector[string]",
        ],
    ),
    # Zeek 4-style ssl.log with the ja3 package's fields: what many utility sensors still run.
    "ssl": (
        [
            "ts",
            "uid",
            "id.orig_h",
            "id.orig_p",
            "id.resp_h",
            "id.resp_p",
            "version",
            "cipher",
            "curve",
            "server_name",
            "resumed",
            "last_alert",
            "next_protocol",
            "established",
            "cert_chain_fuids",
            "client_cert_chain_fuids",
            "subject",
            "issuer",
            "client_subject",
            "client_issuer",
            "validation_status",
            "ja3",
            "ja3s",
        ],
        [
            "time",
            "string",
            "addr",
            "port",
            "addr",
            "port",
            "string",
            "string",
            "string",
            "string",
            "bool",
            "string",
            "string",
            "bool",
            "vector[string]",
            "vector[string]",
            "string",
            "string",
            "string",
            "string",
            "string",
            "string",
            "string",
        ],
    ),
    # Zeek's base Modbus::Info before Zeek 7 (the same sensor generation as the ssl.log above): one record per
    # transaction, written on the reply, no transaction / unit id or PDU direction.
    "modbus": (
        ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "func", "exception"],
        ["time", "string", "addr", "port", "addr", "port", "string", "string"],
    ),
    # Zeek's base DNP3::Info: a request and its reply in one record; an unsolicited response alone.
    "dnp3": (
        ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "fc_request", "fc_reply", "iin"],
        ["time", "string", "addr", "port", "addr", "port", "string", "string", "count"],
    ),
}

FIREWALL_HEADER = "ts,device,action,proto,src_ip,src_port,dst_ip,dst_port,bytes_out,bytes_in,duration,rule"
VPN_HEADER = "ts,gateway,user,src_ip,assigned_ip,event,reason,session_id,bytes_in,bytes_out,duration"
QTYPES = {"A": 1, "AAAA": 28, "TXT": 16, "CNAME": 5, "PTR": 12, "SRV": 33}
RCODES = {0: "NOERROR", 3: "NXDOMAIN", 2: "SERVFAIL"}
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PRIVATE = ipaddress.ip_network("10.0.0.0/8")


def zeek_header(path: str) -> list[str]:
    fields, types = ZEEK_FIELDS[path]
    return [
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        f"#path\t{path}",
        f"#open\t{zeek_stamp(START)}",
        "#fields\t" + "\t".join(fields),
        "#types\t" + "\t".join(types),
    ]


def zeek_footer(end_us: int) -> list[str]:
    return [f"#close\t{zeek_stamp(end_us)}"]


def _b(v: bool) -> str:
    return "T" if v else "F"


def _local(ip: str) -> bool:
    return ip.startswith("10.")


def _csv(v: Any) -> str:
    s = str(v)
    if any(c in s for c in ',"\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


# -- renderers: (ts, *args) -> line --------------------------------------------------
def r_conn(
    ts: int,
    uid: str,
    oh: str,
    op: int,
    rh: str,
    rp: int,
    proto: str,
    service: str,
    dur: float,
    ob: int,
    rb: int,
    state: str,
    history: str,
    orig_pkts: int = -1,
    resp_pkts: int = -1,
) -> str:
    """Packet counts follow from the bytes (bulk transfer) unless given (chatty protocols: many small packets)."""
    op_pk = max(1, ob // 1200 + 2) if state != "S0" else 2
    rp_pk = max(0, rb // 1200 + 1) if state != "S0" else 0
    op_pk, rp_pk = (orig_pkts if orig_pkts >= 0 else op_pk), (resp_pkts if resp_pkts >= 0 else rp_pk)
    dur_s = f"{dur:.6f}" if state != "S0" else "-"
    return "\t".join(
        (
            zeek_time(ts),
            uid,
            oh,
            str(op),
            rh,
            str(rp),
            proto,
            service or "-",
            dur_s,
            str(ob) if state != "S0" else "-",
            str(rb) if state != "S0" else "-",
            state,
            _b(_local(oh)),
            _b(_local(rh)),
            "0",
            history,
            str(op_pk),
            str(ob + 40 * op_pk),
            str(rp_pk),
            str(rb + 40 * rp_pk),
            "-",
        )
    )


def r_dns(
    ts: int,
    uid: str,
    oh: str,
    op: int,
    rh: str,
    trans: int,
    rtt: float,
    query: str,
    qtype: str,
    rcode: int,
    answers: tuple[str, ...],
    ttl: int,
) -> str:
    return "\t".join(
        (
            zeek_time(ts),
            uid,
            oh,
            str(op),
            rh,
            "53",
            "udp",
            str(trans),
            f"{rtt:.6f}",
            query,
            "1",
            "C_INTERNET",
            str(QTYPES[qtype]),
            qtype,
            str(rcode),
            RCODES[rcode],
            "F",
            "F",
            "T",
            "T",
            "0",
            ",".join(answers) if answers else "-",
            ",".join(f"{ttl}.000000" for _ in answers) if answers else "-",
            "F",
        )
    )


def r_http(
    ts: int,
    uid: str,
    oh: str,
    op: int,
    rh: str,
    rp: int,
    method: str,
    host: str,
    uri: str,
    ua: str,
    req_len: int,
    resp_len: int,
    status: int,
    mime: str,
) -> str:
    msg = {200: "OK", 204: "No Content", 304: "Not Modified", 404: "Not Found"}.get(status, "OK")
    return "\t".join(
        (
            zeek_time(ts),
            uid,
            oh,
            str(op),
            rh,
            str(rp),
            "1",
            method,
            host,
            uri,
            "-",
            "1.1",
            ua,
            "-",
            str(req_len),
            str(resp_len),
            str(status),
            msg,
            "-",
            "-",
            "(empty)",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-" if not req_len else "application/octet-stream",
            "-",
            "-",
            mime if resp_len else "-",
        )
    )


def r_ssl(
    ts: int,
    uid: str,
    oh: str,
    op: int,
    rh: str,
    rp: int,
    sni: str,
    subject: str,
    issuer: str,
    ja3: str,
    ja3s: str,
    client_subject: str,
) -> str:
    return "\t".join(
        (
            zeek_time(ts),
            uid,
            oh,
            str(op),
            rh,
            str(rp),
            "TLSv12",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "x25519",
            sni or "-",
            "F",
            "-",
            "h2" if rp == 443 and not client_subject else "-",
            "T",
            "-",
            "-",
            subject,
            issuer,
            client_subject or "-",
            "-" if not client_subject else issuer,
            "ok",
            ja3,
            ja3s,
        )
    )


def r_modbus(ts: int, uid: str, oh: str, op: int, rh: str, rp: int, func: str, exception: str) -> str:
    return "\t".join((zeek_time(ts), uid, oh, str(op), rh, str(rp), func, exception or "-"))


def r_dnp3(ts: int, uid: str, oh: str, op: int, rh: str, rp: int, fc_request: str, fc_reply: str, iin: int) -> str:
    return "\t".join((zeek_time(ts), uid, oh, str(op), rh, str(rp), fc_request or "-", fc_reply or "-", str(iin)))


def zeek_uid(rng: random.Random) -> str:
    """A Zeek connection uid: 'C' and 17 base-62 characters."""
    r = rng.getrandbits(100)
    out = ["C"]
    for _ in range(17):
        r, k = divmod(r, 62)
        out.append(_B62[k])
    return "".join(out)


def r_fw(
    ts: int,
    device: str,
    action: str,
    proto: str,
    src: str,
    sport: int,
    dst: str,
    dport: int,
    ob: int,
    rb: int,
    dur: float,
    rule: str,
) -> str:
    return ",".join(
        (
            iso_ms(ts),
            device,
            action,
            proto,
            src,
            str(sport),
            dst,
            str(dport),
            str(ob),
            str(rb),
            f"{dur:.3f}",
            _csv(rule),
        )
    )


def r_vpn(
    ts: int,
    user: str,
    src: str,
    assigned: str,
    event: str,
    reason: str,
    session: str,
    bin_: int,
    bout: int,
    dur: float,
) -> str:
    return ",".join(
        (
            iso_ms(ts),
            "vpn01",
            _csv(user),
            src,
            assigned or "",
            event,
            _csv(reason),
            session,
            str(bin_),
            str(bout),
            f"{dur:.0f}",
        )
    )


def r_ami(
    ts: int,
    system: str,
    user: str,
    src: str,
    action: str,
    ttype: str,
    tid: str,
    count: int,
    params: dict[str, Any],
    result: str,
) -> str:
    return orjson.dumps(
        {
            "ts": iso_ms(ts),
            "system": system,
            "user": user,
            "src_ip": src,
            "action": action,
            "target_type": ttype,
            "target_id": tid,
            "target_count": count,
            "params": params,
            "result": result,
        }
    ).decode()


def _tagged(tag: str | None, fields: dict[str, str]) -> tuple[str, dict[str, str]] | None:
    """A sink tag: the label with the fields that identify its record, or None when untagged."""
    return None if tag is None else (tag, fields)


class Net:
    """Emit consistent records for one network action across Zeek, firewall and VPN."""

    def __init__(self, sinks: dict[str, Sink], rng: random.Random, resolver: str) -> None:
        self.s = sinks
        self.rng = rng
        self.resolver = resolver

    def uid(self) -> str:
        return zeek_uid(self.rng)

    def port(self) -> int:
        return self.rng.randrange(49152, 65535)

    def flow(
        self,
        ts: int,
        src: str,
        dst: str,
        dport: int,
        proto: str = "tcp",
        service: str = "-",
        dur: float = 0.5,
        ob: int = 800,
        rb: int = 4000,
        fw: str | None = None,
        rule: str = "",
        action: str = "allow",
        tag: str | None = None,
        zeek: bool = True,
        sport: int = 0,
    ) -> tuple[str, int]:
        uid = self.uid()
        sport = sport or self.port()
        denied = action == "deny"
        if zeek:
            state, hist = ("S0", "S") if denied else (("SF", "ShADadFf") if proto == "tcp" else ("SF", "Dd"))
            t = _tagged(tag, {"id.orig_h": src, "id.resp_h": dst, "id.resp_p": str(dport)})
            self.s["conn"].add(ts, r_conn, uid, src, sport, dst, dport, proto, service, dur, ob, rb, state, hist, tag=t)
        if fw:
            t = _tagged(tag, {"src_ip": src, "dst_ip": dst, "dst_port": str(dport), "action": action})
            self.s["fw"].add(
                ts,
                r_fw,
                fw,
                action,
                proto,
                src,
                sport,
                dst,
                dport,
                0 if denied else ob,
                0 if denied else rb,
                0.0 if denied else dur,
                rule,
                tag=t,
            )
        return uid, sport

    def dns(
        self,
        ts: int,
        src: str,
        query: str,
        answers: tuple[str, ...],
        qtype: str = "A",
        rcode: int = 0,
        ttl: int = 300,
        tag: str | None = None,
    ) -> None:
        t = _tagged(tag, {"id.orig_h": src, "query": query, "qtype_name": qtype})
        self.s["dns"].add(
            ts,
            r_dns,
            self.uid(),
            src,
            self.port(),
            self.resolver,
            self.rng.randrange(65536),
            self.rng.uniform(0.0004, 0.04),
            query,
            qtype,
            rcode,
            answers,
            ttl,
            tag=t,
        )

    def https(
        self,
        ts: int,
        src: str,
        dst: str,
        sni: str,
        dur: float = 1.2,
        ob: int = 1500,
        rb: int = 9000,
        fw: str | None = "fw-edge",
        rule: str = "WEB-OUT",
        ja3: str = "",
        subject: str = "",
        issuer: str = "CN=Example Public CA R3,O=Example Trust,C=US",
        client_subject: str = "",
        tag: str | None = None,
        port: int = 443,
    ) -> str:
        uid, sport = self.flow(ts, src, dst, port, "tcp", "ssl", dur, ob, rb, fw, rule, tag=tag)
        t = _tagged(tag, {"id.orig_h": src, "server_name": sni})
        self.s["ssl"].add(
            ts + 2000,
            r_ssl,
            uid,
            src,
            sport,
            dst,
            port,
            sni,
            subject or f"CN={sni}",
            issuer,
            ja3 or "771,4865-4866-4867-49195-49199,0-23-65281-10-11-35-16-5-13-18-51-45-43-27,29-23-24,0",
            "771,49200,65281-0-11-16-23",
            client_subject,
            tag=t,
        )
        return uid

    def http(
        self,
        ts: int,
        src: str,
        dst: str,
        host: str,
        uri: str,
        method: str = "GET",
        ua: str = "",
        req_len: int = 0,
        resp_len: int = 512,
        status: int = 200,
        mime: str = "text/plain",
        fw: str | None = "fw-edge",
        rule: str = "WEB-OUT",
        dur: float = 0.3,
        tag: str | None = None,
    ) -> str:
        uid, sport = self.flow(ts, src, dst, 80, "tcp", "http", dur, req_len + 400, resp_len + 300, fw, rule, tag=tag)
        t = _tagged(tag, {"id.orig_h": src, "host": host, "method": method})
        self.s["http"].add(
            ts + 1500,
            r_http,
            uid,
            src,
            sport,
            dst,
            80,
            method,
            host,
            uri,
            ua or "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
            req_len,
            resp_len,
            status,
            mime,
            tag=t,
        )
        return uid

    def vpn(
        self,
        ts: int,
        user: str,
        src: str,
        assigned: str,
        event: str,
        reason: str = "",
        session: str = "",
        bin_: int = 0,
        bout: int = 0,
        dur: float = 0.0,
        tag: str | None = None,
    ) -> None:
        t = _tagged(tag, {"user": user, "src_ip": src, "event": event})
        self.s["vpn"].add(ts, r_vpn, user, src, assigned, event, reason, session, bin_, bout, dur, tag=t)

    def vpn_session(
        self,
        login: int,
        logout: int,
        user: str,
        src: str,
        assigned: str,
        session: str,
        seconds: float,
        rng: random.Random,
    ) -> None:
        """A benign VPN session: its login, and its logout with the bytes the user moved."""
        self.vpn(login, user, src, assigned, "login", "", session)
        bin_, bout = rng.randrange(10**7, 10**9), rng.randrange(10**6, 10**8)
        self.vpn(logout, user, src, assigned, "logout", "user logout", session, bin_, bout, seconds)

    def ami(
        self,
        ts: int,
        sink: str,
        system: str,
        user: str,
        src: str,
        action: str,
        ttype: str,
        tid: str,
        count: int,
        params: dict[str, Any],
        result: str = "ok",
        tag: str | None = None,
    ) -> None:
        t = _tagged(tag, {"user": user, "action": action, "target_id": tid})
        self.s[sink].add(ts, r_ami, system, user, src, action, ttype, tid, count, params, result, tag=t)
