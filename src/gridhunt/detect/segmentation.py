"""Network segmentation: every observed flow judged against the IEC 62443 zones / conduits policy.

The policy is the case's `zones` and `conduits` tables (zones.yaml, see README). A zone holds
addresses by CIDR and by inventory asset (`assets:` asset ids / host names, `roles:` asset roles);
an asset listed by a zone beats any CIDR, and an address in no CIDR falls back to the zone the
inventory gives its asset. Public addresses in no zone are the implicit zone `internet`.

A zone is OT when it says `kind: ot`, or says no kind and has security level >= 3 (zones.OT_MIN_LEVEL).

Every `conn` row belongs to one flow: the firewall and the Zeek record of one connection (same
5-tuple within MERGE_SECONDS) are one flow, so nothing is counted twice; a flow is denied when a
firewall record of it says deny. Each flow is classified:

    allowed       both ends in one zone, or a conduit fits (zones, protocol, port, and -- when the
                  conduit has a `via` host -- the source is that host)
    violation     between two zones (or a zone and the internet) and no conduit fits
    unpoliced     between a non-OT zone and the internet when no conduit names the internet for that
                  zone in that direction: the policy does not speak about it (OT zones are always policed)
    unknown-zone  an internal address in no zone, or an address that is not an IP

Violations (and vendor paths into OT) become findings, one per (source host, source zone,
destination zone, protocol / destination port), evidence = the conn rows, rule by what crossed:

    seg.vendor_bypasses_jump_host  a vendor access path (vendor ip_range, a vendor account's VPN
                                   tunnel address or logon source, a `kind: vendor` zone) into OT
                                   not from a jump host (a conduit's via host / a register jump_host)
    seg.internet_to_ot             internet -> OT
    seg.it_to_ot                   another internal zone -> OT
    seg.ot_to_internet             OT -> internet
    seg.conduit_violation          any other pair

Work tables are DuckDB temp tables (gh_seg_*), rebuilt per analytics run (prepare) and read by
zone_matrix() and the `gridhunt segmentation` command.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridhunt.detect import zones as zmap
from gridhunt.detect.base import MAX_EVIDENCE_ROWS, Analytic, Context, query_findings
from gridhunt.detect.settings import load_settings
from gridhunt.report.findings import Finding
from gridhunt.sql import sql_literal

INTERNET = "internet"
UNKNOWN = "(unknown)"  # matrix row / column of flows with an address in no zone
MERGE_SECONDS = 2  # records of one 5-tuple this close are one connection (a firewall and Zeek both logged it)
STATUSES = ("allowed", "violation", "unpoliced", "unknown-zone")
_TABLES = ("gh_seg_rows", "gh_seg_flows", "gh_seg_ips", "gh_seg_addr",
           "gh_seg_conduits", "gh_seg_zones", "gh_seg_vendor_hosts", "gh_seg_jump")  # fmt: skip


class PolicyError(ValueError):
    """A zones / conduits policy that does not load cleanly; `messages` name file and line."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class Zone:
    name: str
    ot: bool
    kind: str | None
    level: int | None
    order: int


@dataclass
class Classification:
    zones: list[Zone]
    flows: int = 0
    conn_rows: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Cell:
    from_zone: str
    to_zone: str
    flows: int = 0
    bytes: int = 0
    allowed: int = 0
    violation: int = 0
    unpoliced: int = 0
    unknown_zone: int = 0
    denied: int = 0
    conduits: int = 0  # conduits the policy has from this zone to that one

    @property
    def status(self) -> str:
        """violation > allowed > unpoliced > unknown-zone for a cell with traffic; without traffic
        'conduit' (allowed but unused) or 'none'."""
        for name, n in (("violation", self.violation), ("allowed", self.allowed), ("unpoliced", self.unpoliced)):
            if n:
                return name
        if self.unknown_zone:
            return "unknown-zone"
        return "conduit" if self.conduits else "none"

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "status": self.status}


@dataclass
class Matrix:
    """Zone x zone: rows are source zones, columns destination zones (policy order, then
    `internet`, then `(unknown)` when some address is in no zone)."""

    zones: list[str]
    cells: dict[tuple[str, str], Cell]

    def cell(self, from_zone: str, to_zone: str) -> Cell:
        return self.cells.get((from_zone, to_zone)) or Cell(from_zone, to_zone)

    def to_dict(self) -> dict[str, Any]:
        return {
            "zones": self.zones,
            "cells": [self.cell(a, b).to_dict() for a in self.zones for b in self.zones],
        }


# ---- the policy -------------------------------------------------------------------------------


def load_policy(case: Any, path: Path) -> int:
    """Replace the case's zones and conduits with those of `path` (zones.yaml shape). Any bad entry
    raises PolicyError naming file and line, and the case keeps its old policy. Returns entries read."""
    from gridhunt.ingest.context import read_policy

    case.con.execute("BEGIN TRANSACTION")
    try:
        case.con.execute("DELETE FROM zones")
        case.con.execute("DELETE FROM conduits")
        res = read_policy(case, Path(path))
        if res.records_bad:
            raise PolicyError([f"{Path(path).name}: {pos}: {why}" for pos, why in res.errors])
        if not res.records_ok:
            raise PolicyError([f"{Path(path).name}: no zones"])
    except BaseException:
        case.con.execute("ROLLBACK")
        raise
    case.con.execute("COMMIT")
    return res.records_ok


def _ref_order(ref: str | None) -> int:
    m = re.search(r"\[(\d+)\]", ref or "")
    return int(m.group(1)) if m else 0


def policy_zones(case: Any) -> list[Zone]:
    rows = case.con.execute("SELECT name, kind, level, source_file, source_ref FROM zones").fetchall()
    rows.sort(key=lambda r: (r[3] or "", _ref_order(r[4]), r[0]))
    out: dict[str, Zone] = {}
    for name, kind, level, _, _ in rows:
        ot = kind == "ot" or (kind is None and level is not None and level >= zmap.OT_MIN_LEVEL)
        out.setdefault(name, Zone(name, ot, kind, level, len(out)))  # a policy read twice: first wins
    return list(out.values())


def _ports(spec: str | None) -> list[tuple[int | None, int | None]]:
    """'22,443' / '20000-20010' / 'any' / None -> [(lo, hi)], (None, None) meaning any port."""
    if not spec:
        return [(None, None)]
    out: list[tuple[int | None, int | None]] = []
    for part in spec.split(","):
        part = part.strip()
        if part.lower() == "any":
            return [(None, None)]
        lo, _, hi = part.partition("-")
        out.append((int(lo), int(hi or lo)))
    return out


def _insert(con: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:  # executemany refuses an empty list
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)


def _label(c: tuple[Any, ...]) -> str:
    frm, to, proto, ports, via, source_file, ref = c
    where = f"{Path(source_file).name} {ref}" if source_file else ref
    via_s = f" via {via}" if via else ""
    return f"{frm} -> {to} {proto or 'any'}/{ports or 'any'}{via_s} ({where})"


# ---- classification ---------------------------------------------------------------------------


def drop_tables(case: Any) -> None:
    for t in _TABLES:
        case.con.execute(f"DROP TABLE IF EXISTS {t}")


def classified(case: Any) -> bool:
    sql = "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = 'gh_seg_flows'"
    return bool(case.con.execute(sql).fetchall()[0][0])


def classify(case: Any, settings: dict[str, dict[str, Any]] | None = None) -> Classification:
    """Build gh_seg_flows: one row per flow with its zones, status, conduit and seg.* rule."""
    settings = settings if settings is not None else load_settings()
    vb = settings.get("seg.vendor_bypasses_jump_host", {})
    con = case.con
    drop_tables(case)
    zones = policy_zones(case)
    result = Classification(zones)
    hosts = zmap._host_index(con)

    # every distinct address of conn -> its zone (detect/zones.py: asset / role, then CIDR, then inventory)
    result.notes += zmap.zone_ranges(case)
    zmap.address_zones(case, "SELECT src_ip AS ip FROM conn UNION ALL SELECT dst_ip FROM conn", "gh_seg_addr")

    # vendor ip_range identifiers: a range join too
    vranges = []
    for vendor, ident in con.execute(
        "SELECT vendor, identifier FROM vendor_access WHERE kind = 'ip_range' ORDER BY vendor, identifier"
    ).fetchall():
        try:
            vranges.append((f"{vendor} ip_range {ident}", *zmap.net_range(ipaddress.ip_network(ident, strict=False))))
        except ValueError:
            result.notes.append(f"segmentation: vendor {vendor}: ip_range {ident!r} is not a CIDR")
    con.execute("CREATE OR REPLACE TEMP TABLE gh_vr (why VARCHAR, family INTEGER, lo HUGEINT, hi HUGEINT)")
    _insert(con, "gh_vr", vranges)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE gh_seg_ips AS
        WITH v AS (
            SELECT a.ip, min(r.why) AS vendor_range FROM gh_seg_addr a
            JOIN gh_vr r ON r.family = a.family AND a.num BETWEEN r.lo AND r.hi GROUP BY a.ip
        )
        SELECT a.ip,
            -- a public address in no zone is in `internet`; local / internal / not an IP: no zone
            CASE WHEN a.how IS NULL THEN 'internet' ELSE a.zone END AS zone, coalesce(a.how, 'public') AS how,
            v.vendor_range
        FROM gh_seg_addr a LEFT JOIN v USING (ip)"""
    )
    con.execute("DROP TABLE gh_vr")

    # conduits, one row per port range; a via host resolved to its addresses
    conduits = con.execute(
        "SELECT from_zone, to_zone, proto, ports, via_host, source_file, source_ref FROM conduits"
    ).fetchall()
    conduits.sort(key=lambda c: (c[5] or "", _ref_order(c[6])))
    crow, jump = [], set()
    for cid, c in enumerate(conduits):
        frm, to, proto, ports, via = c[:5]
        via_ips = zmap._resolve(via, hosts) if via else []
        if via and not via_ips:
            result.notes.append(
                f"segmentation: conduit {_label(c)}: via host {via!r} is neither an address nor an inventory host, "
                "so the conduit allows nothing"
            )
        jump.update((ip, f"via host of conduit {_label(c)}") for ip in via_ips)
        try:
            port_ranges = _ports(ports)
        except ValueError:
            result.notes.append(f"segmentation: conduit {_label(c)}: unreadable ports, skipped")
            continue
        for lo, hi in port_ranges:
            crow.append((cid, frm, to, proto, lo, hi, via, via_ips, _label(c)))
    con.execute(
        """CREATE OR REPLACE TEMP TABLE gh_seg_conduits (cid INTEGER, from_zone VARCHAR, to_zone VARCHAR, proto VARCHAR,
        port_lo INTEGER, port_hi INTEGER, via VARCHAR, via_ips VARCHAR[], label VARCHAR)"""
    )
    _insert(con, "gh_seg_conduits", crow)
    for vendor, ident in con.execute(
        "SELECT vendor, identifier FROM vendor_access WHERE kind = 'jump_host' ORDER BY vendor, identifier"
    ).fetchall():
        jump.update((ip, f"{vendor} jump host {ident}") for ip in zmap._resolve(ident, hosts))
    con.execute("CREATE OR REPLACE TEMP TABLE gh_seg_jump (ip VARCHAR, why VARCHAR)")
    _insert(con, "gh_seg_jump", sorted(jump))

    # zones as SQL sees them: OT or not, vendor zone, is its internet traffic policed (per direction)
    out_policed = {c[0] for c in conduits if c[1] == INTERNET}
    in_policed = {c[1] for c in conduits if c[0] == INTERNET}
    con.execute(
        """CREATE OR REPLACE TEMP TABLE gh_seg_zones (name VARCHAR, ord INTEGER, ot BOOLEAN, vendor_zone BOOLEAN,
        police_out BOOLEAN, police_in BOOLEAN)"""
    )
    zone_rows = [
        (z.name, z.order, z.ot, z.kind == "vendor", z.ot or z.name in out_policed, z.ot or z.name in in_policed)
        for z in zones
    ]
    zone_rows.append((INTERNET, len(zones), False, False, True, True))
    _insert(con, "gh_seg_zones", zone_rows)

    _vendor_hosts(con, float(vb.get("logon_hold_hours", 12)))
    _flows(con)
    _judge(con, bool(vb.get("report_conduit_allowed", True)))

    result.conn_rows = int(con.execute("SELECT count(*) FROM gh_seg_rows").fetchall()[0][0])
    rows = con.execute("SELECT status, count(*) FROM gh_seg_flows GROUP BY 1 ORDER BY 1").fetchall()
    result.by_status = {str(k): int(n) for k, n in rows}
    result.flows = sum(result.by_status.values())
    if result.flows < result.conn_rows:
        result.notes.append(
            f"segmentation: {result.conn_rows:,} conn records are {result.flows:,} flows "
            "(firewall and Zeek records of one connection counted once)"
        )
    unknown = con.execute(
        """SELECT ip, count(*) AS n FROM (
            SELECT src_ip AS ip FROM gh_seg_flows WHERE src_zone IS NULL
            UNION ALL SELECT dst_ip FROM gh_seg_flows WHERE dst_zone IS NULL)
        GROUP BY ip ORDER BY n DESC, ip LIMIT 5"""
    ).fetchall()
    if unknown:
        top = ", ".join(f"{ip} ({n})" for ip, n in unknown)
        result.notes.append(
            f"segmentation: {result.by_status.get('unknown-zone', 0):,} flows have an address in no zone "
            f"(most: {top}); add them to a zone"
        )
    return result


def _vendor_hosts(con: Any, hold_hours: float) -> None:
    """Addresses that are vendor access paths for a while: where a vendor account logged on from,
    and the tunnel address of a vendor account's VPN session (while it lasts)."""
    con.execute(
        """CREATE OR REPLACE TEMP TABLE gh_seg_vendor_hosts AS
        WITH acct AS (
            SELECT lower(identifier) AS account, min(vendor) AS vendor FROM vendor_access
            WHERE kind IN ('vpn_account', 'service_account', 'api_token') GROUP BY 1
        ), logons AS (
            SELECT a.ts, a.src_ip, a."user", a.source, v.vendor FROM auth a JOIN acct v ON v.account = lower(a."user")
            WHERE a.outcome = 'success' AND a.src_ip IS NOT NULL AND a.src_ip NOT IN ('127.0.0.1', '::1')
        )
        SELECT src_ip AS ip, ts - INTERVAL 5 MINUTE AS t0, ts + to_microseconds((? * 3600e6)::BIGINT) AS t1, vendor,
            vendor || ' account ' || "user" || ' logged on from it (' || source || ')' AS why
        FROM logons
        UNION ALL
        -- the VPN reader writes each session as a conn row: client address -> tunnel address
        SELECT c.dst_ip, c.ts - INTERVAL 1 MINUTE,
            c.ts + to_microseconds((coalesce(c.duration, ? * 3600) * 1e6)::BIGINT) + INTERVAL 1 MINUTE, l.vendor,
            l.vendor || ' account ' || l."user" || ' VPN tunnel address (session ' || coalesce(c.uid, '?') || ')'
        FROM conn c JOIN logons l ON l.source = 'vpn' AND l.src_ip = c.src_ip
            AND c.ts BETWEEN l.ts - INTERVAL 2 MINUTE AND l.ts + INTERVAL 2 MINUTE
        WHERE c.source = 'vpn' AND c.dst_ip IS NOT NULL""",
        [hold_hours, hold_hours],
    )


def _flows(con: Any) -> None:
    """gh_seg_rows: conn rows with the id of the flow they belong to; gh_seg_flows: one row per flow."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_seg_rows AS
        WITH r AS (
            SELECT ts, src_ip, src_port, dst_ip, dst_port, lower(proto) AS proto, service, action,
                coalesce(bytes_out, 0) AS bytes_out, coalesce(bytes_in, 0) AS bytes_in, source, source_file,
                source_ref, uid,
                CASE WHEN src_port IS NOT NULL AND ts - lag(ts) OVER w <= INTERVAL {MERGE_SECONDS} SECOND
                     THEN 0 ELSE 1 END AS brk
            FROM conn
            WINDOW w AS (PARTITION BY src_ip, src_port, dst_ip, dst_port, lower(proto)
                         ORDER BY ts, source_file, source_ref)
        )
        SELECT * EXCLUDE (brk), hash(src_ip, src_port, dst_ip, dst_port, proto,
            sum(brk) OVER (PARTITION BY src_ip, src_port, dst_ip, dst_port, proto ORDER BY ts, source_file, source_ref
                           ROWS UNBOUNDED PRECEDING)) AS flow_id
        FROM r"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE gh_seg_flows AS
        WITH f AS (
            SELECT flow_id, min(ts) AS ts, max(ts) AS ts_last, any_value(src_ip) AS src_ip,
                any_value(src_port) AS src_port, any_value(dst_ip) AS dst_ip, any_value(dst_port) AS dst_port,
                any_value(proto) AS proto, max(bytes_out) AS bytes_out, max(bytes_in) AS bytes_in,
                CASE WHEN bool_or(action = 'deny') THEN 'deny' WHEN bool_or(action = 'allow') THEN 'allow' END
                    AS action,
                count(*) AS conn_rows, list(DISTINCT source ORDER BY source) AS sources
            FROM gh_seg_rows GROUP BY flow_id
        )
        SELECT f.*, s.zone AS src_zone, s.how AS src_how,
            CASE WHEN d.how = 'local' THEN s.zone ELSE d.zone END AS dst_zone, d.how AS dst_how,
            s.vendor_range AS src_vendor_range, d.vendor_range AS dst_vendor_range
        FROM f LEFT JOIN gh_seg_ips s ON s.ip = f.src_ip LEFT JOIN gh_seg_ips d ON d.ip = f.dst_ip"""
    )


def _judge(con: Any, report_conduit_allowed: bool) -> None:
    """Status, conduit, vendor path and seg.* rule of every flow (gh_seg_flows rebuilt in place)."""
    con.execute(
        """CREATE OR REPLACE TEMP TABLE gh_seg_flows AS
        WITH m AS (
            SELECT f.flow_id, arg_min(k.label, k.cid) AS conduit, arg_min(k.via, k.cid) AS conduit_via
            FROM gh_seg_flows f JOIN gh_seg_conduits k ON k.to_zone = f.dst_zone
                AND (k.proto IS NULL OR k.proto = f.proto)
                AND (k.port_lo IS NULL OR f.dst_port BETWEEN k.port_lo AND k.port_hi)
                AND CASE WHEN k.via IS NULL THEN k.from_zone = f.src_zone ELSE list_contains(k.via_ips, f.src_ip) END
            WHERE f.src_zone IS DISTINCT FROM f.dst_zone
            GROUP BY f.flow_id
        ), v AS (
            SELECT f.flow_id, arg_min(h.why, h.t0) AS why
            FROM gh_seg_flows f JOIN gh_seg_zones zd ON zd.name = f.dst_zone AND zd.ot
                JOIN gh_seg_vendor_hosts h ON h.ip = f.src_ip AND f.ts BETWEEN h.t0 AND h.t1
            GROUP BY f.flow_id
        ), j AS (SELECT ip, min(why) AS why FROM gh_seg_jump GROUP BY ip),
        x AS (
            SELECT f.*, m.conduit, m.conduit_via, coalesce(zs.ot, false) AS src_ot, coalesce(zd.ot, false) AS dst_ot,
                j.why AS jump_host,
                coalesce(f.src_vendor_range, v.why,
                         CASE WHEN zs.vendor_zone THEN 'in vendor zone ' || f.src_zone END) AS vendor_path,
                CASE WHEN f.src_zone IS NULL OR f.dst_zone IS NULL THEN 'unknown-zone'
                     WHEN f.src_zone = 'internet' AND f.dst_zone = 'internet' THEN 'unpoliced'
                     WHEN f.src_zone = f.dst_zone OR m.conduit IS NOT NULL THEN 'allowed'
                     WHEN f.dst_zone = 'internet' AND NOT zs.police_out THEN 'unpoliced'
                     WHEN f.src_zone = 'internet' AND NOT zd.police_in THEN 'unpoliced'
                     ELSE 'violation' END AS status
            FROM gh_seg_flows f
            LEFT JOIN m USING (flow_id) LEFT JOIN v USING (flow_id)
            LEFT JOIN gh_seg_zones zs ON zs.name = f.src_zone LEFT JOIN gh_seg_zones zd ON zd.name = f.dst_zone
            LEFT JOIN j ON j.ip = f.src_ip
        )
        SELECT x.*,
            CASE WHEN f_vendor AND status = 'violation' THEN 'seg.vendor_bypasses_jump_host'
                 WHEN f_vendor AND status = 'allowed' AND conduit_via IS NULL AND src_zone <> dst_zone AND ?
                     THEN 'seg.vendor_bypasses_jump_host'
                 WHEN status <> 'violation' THEN NULL
                 WHEN dst_ot AND src_zone = 'internet' THEN 'seg.internet_to_ot'
                 WHEN dst_ot AND NOT src_ot THEN 'seg.it_to_ot'
                 WHEN src_ot AND dst_zone = 'internet' THEN 'seg.ot_to_internet'
                 ELSE 'seg.conduit_violation' END AS rule,
            CASE WHEN status = 'unknown-zone'
                     THEN 'no zone for ' || CASE WHEN src_zone IS NULL THEN src_ip ELSE dst_ip END
                 WHEN status = 'unpoliced' THEN 'the policy names no internet conduit for this zone'
                 WHEN src_zone = dst_zone THEN 'same zone'
                 WHEN conduit IS NOT NULL THEN conduit
                 ELSE 'no conduit fits' END AS reason,
            hash(src_zone, dst_zone, proto, dst_port, src_ip) AS gkey
        -- vendor access comes from outside OT: a vendor service account on an OT server is not a path in
        FROM (SELECT *, dst_ot AND NOT src_ot AND vendor_path IS NOT NULL AND jump_host IS NULL AS f_vendor
              FROM x) x""",
        [report_conduit_allowed],
    )


# ---- analytics --------------------------------------------------------------------------------


def prepare(ctx: Context) -> None:
    # classification happens in the first seg analytic that runs (so a failure is that analytic's
    # error, not the run's); drop what an earlier run on this connection left
    drop_tables(ctx.case)


def _ensure(ctx: Context) -> None:
    if not classified(ctx.case):
        ctx.notes.extend(classify(ctx.case, ctx.settings).notes)


_EVIDENCE = """struct_pack(source_file := r.source_file, source_ref := r.source_ref, ts := r.ts,
    fields := struct_pack(src_ip := r.src_ip, src_port := r.src_port, dst_ip := r.dst_ip, dst_port := r.dst_port,
        proto := r.proto, service := r.service, action := r.action, bytes_out := r.bytes_out,
        bytes_in := r.bytes_in, source := r.source, src_zone := f.src_zone, dst_zone := f.dst_zone,
        status := f.status))"""


def _run(ctx: Context, a: Analytic) -> list[Finding]:
    _ensure(ctx)
    p = ctx.params(a.name)
    denied = p.get("denied_severity", "low")
    # severity: every flow denied -> denied_severity; the rule's own cases; else the default
    cases = {
        "seg.vendor_bypasses_jump_host": "WHEN g.violations = 0 THEN ?",
        "seg.ot_to_internet": "WHEN g.vendor_dsts = g.flows THEN ?",
    }
    extra = {
        "seg.vendor_bypasses_jump_host": [p.get("conduit_severity", "medium")],
        "seg.ot_to_internet": [p.get("vendor_destination_severity", "low")],
    }
    sql = f"""
    WITH f AS (SELECT * FROM gh_seg_flows WHERE rule = ?),
    g AS (
        SELECT gkey, any_value(src_zone) AS src_zone, any_value(dst_zone) AS dst_zone, any_value(proto) AS proto,
            any_value(dst_port) AS dst_port, any_value(src_ip) AS src_ip, count(*) AS flows,
            count(*) FILTER (WHERE action = 'deny') AS denied, count(*) FILTER (WHERE action = 'allow') AS fw_allowed,
            count(*) FILTER (WHERE status = 'violation') AS violations,
            count(*) FILTER (WHERE dst_vendor_range IS NOT NULL) AS vendor_dsts,
            sum(conn_rows) AS conn_rows, sum(bytes_out) AS bytes_out, sum(bytes_in) AS bytes_in,
            min(ts) AS ts_first, max(ts_last) AS ts_last,
            list(DISTINCT dst_ip ORDER BY dst_ip)[1:20] AS dst_ips, count(DISTINCT dst_ip) AS dst_count,
            list(DISTINCT conduit ORDER BY conduit) FILTER (WHERE conduit IS NOT NULL) AS allowed_by,
            min(vendor_path) AS vendor_path, min(jump_host) AS jump_host,
            list(DISTINCT dst_vendor_range ORDER BY dst_vendor_range)
                FILTER (WHERE dst_vendor_range IS NOT NULL) AS dst_vendor_ranges,
            list_sort(list_distinct(flatten(list(sources)))) AS log_sources
        FROM f GROUP BY gkey
    ), ev AS (
        -- cut before aggregating: a group can hold millions of conn rows
        SELECT f.gkey, list({_EVIDENCE} ORDER BY r.ts, r.source_file, r.source_ref) AS evidence
        FROM f JOIN (
            SELECT r.* FROM gh_seg_rows r JOIN f f2 USING (flow_id)
            QUALIFY row_number() OVER (PARTITION BY f2.gkey ORDER BY r.ts, r.source_file, r.source_ref)
                <= {MAX_EVIDENCE_ROWS}
        ) r USING (flow_id) GROUP BY f.gkey
    ), hosts AS (
        SELECT ip, min(hostname) AS hostname FROM (SELECT unnest(ips) AS ip, hostname FROM assets) GROUP BY ip
    ), k AS (
        SELECT g.gkey, list(DISTINCT c.label ORDER BY c.label) AS labels
        FROM g JOIN gh_seg_conduits c ON c.to_zone = g.dst_zone AND (c.from_zone = g.src_zone OR c.via IS NOT NULL)
        GROUP BY g.gkey
    )
    SELECT g.src_ip || ' (' || g.src_zone || ') -> ' || g.dst_zone || ' ' || coalesce(g.proto, '?') || '/'
            || coalesce(g.dst_port::VARCHAR, '*') AS entity,
        ? || ': ' || g.src_zone || ' -> ' || g.dst_zone || ' ' || coalesce(g.proto, '?') || '/'
            || coalesce(g.dst_port::VARCHAR, '*') AS title,
        g.ts_first, g.ts_last, g.flows AS count, ev.evidence,
        CASE WHEN g.denied = g.flows THEN ? {cases.get(a.name, "")} END AS severity,
        struct_pack(src_ip := g.src_ip, src_host := h.hostname, src_zone := g.src_zone, dst_zone := g.dst_zone,
            proto := g.proto, dst_port := g.dst_port, flows := g.flows, flows_denied := g.denied,
            flows_firewall_allowed := g.fw_allowed, flows_outside_conduits := g.violations, conn_records := g.conn_rows,
            bytes_out := g.bytes_out, bytes_in := g.bytes_in, destinations := g.dst_count, dst_ips := g.dst_ips,
            conduits_checked := coalesce(k.labels, []::VARCHAR[]), allowed_by := g.allowed_by,
            vendor_path := g.vendor_path, jump_host := g.jump_host, dst_vendor_ranges := g.dst_vendor_ranges,
            log_sources := g.log_sources, denied_severity := ?) AS details
    FROM g JOIN ev USING (gkey) LEFT JOIN k USING (gkey) LEFT JOIN hosts h ON h.ip = g.src_ip
    ORDER BY g.ts_first, entity
    """
    args = [a.name, a.title, denied, *extra.get(a.name, []), denied]
    return query_findings(ctx, a, sql, args)


_NEEDS = ("conn", "zones")
ANALYTICS: tuple[Analytic, ...] = (
    Analytic(
        "seg.it_to_ot",
        "Flow into an OT zone from another internal zone outside any conduit",
        "high",
        ("T0886", "T1021"),
        _NEEDS,
        _run,
        "A host in an IT / DMZ / vendor zone reached an OT zone (kind ot, or level >= 3) with no conduit "
        "allowing that protocol and port (or not from the conduit's via host).",
    ),
    Analytic(
        "seg.internet_to_ot",
        "Flow from the internet into an OT zone outside any conduit",
        "high",
        ("T0883", "T0822", "T1133"),
        _NEEDS,
        _run,
        "A public address (in no zone) reached an OT zone with no conduit from `internet` allowing it.",
    ),
    Analytic(
        "seg.vendor_bypasses_jump_host",
        "Vendor access path into an OT zone not through the jump host",
        "high",
        ("T0822", "T0886", "T1133", "T1199"),
        _NEEDS,
        _run,
        "A vendor path (vendor ip_range, a vendor account's VPN tunnel address or logon source, a kind-vendor "
        "zone) reached an OT zone directly instead of from a jump host (a conduit's via host or a register "
        "jump_host).",
    ),
    Analytic(
        "seg.ot_to_internet",
        "OT host talking to the internet outside any conduit",
        "high",
        ("T0883", "T0869", "T1071"),
        _NEEDS,
        _run,
        "A host in an OT zone exchanged traffic with a public address with no conduit to `internet` allowing it.",
    ),
    Analytic(
        "seg.conduit_violation",
        "Flow between zones outside any conduit",
        "medium",
        ("T0886", "T1021"),
        _NEEDS,
        _run,
        "Any other zone pair (OT -> IT, IT -> DMZ on a port the conduit lacks, one OT zone to another, a policed "
        "internet pair) with no conduit that fits.",
    ),
)


# ---- reports ----------------------------------------------------------------------------------


def zone_matrix(case: Any, settings: dict[str, dict[str, Any]] | None = None) -> Matrix:
    """Observed vs allowed, zone by zone: flows, bytes, and how many were allowed / violations /
    unpoliced / denied; `conduits` = how many conduits the policy has for the pair."""
    if not classified(case):
        classify(case, settings)
    zones = [z.name for z in policy_zones(case)] + [INTERNET]
    cells: dict[tuple[str, str], Cell] = {}
    for frm, to, flows, nbytes, allowed, violation, unpoliced, unknown, denied in case.con.execute(
        f"""SELECT coalesce(src_zone, {sql_literal(UNKNOWN)}), coalesce(dst_zone, {sql_literal(UNKNOWN)}),
            count(*), sum(bytes_out + bytes_in),
            count(*) FILTER (WHERE status = 'allowed'), count(*) FILTER (WHERE status = 'violation'),
            count(*) FILTER (WHERE status = 'unpoliced'), count(*) FILTER (WHERE status = 'unknown-zone'),
            count(*) FILTER (WHERE action = 'deny')
        FROM gh_seg_flows GROUP BY ALL ORDER BY ALL"""
    ).fetchall():
        cells[frm, to] = Cell(frm, to, flows, int(nbytes or 0), allowed, violation, unpoliced, unknown, denied)
    for frm, to, n in case.con.execute(
        "SELECT from_zone, to_zone, count(DISTINCT cid) FROM gh_seg_conduits GROUP BY ALL"
    ).fetchall():
        cells.setdefault((frm, to), Cell(frm, to)).conduits = n
    if any(UNKNOWN in key for key in cells):
        zones.append(UNKNOWN)
    return Matrix(zones, cells)


@dataclass
class Report:
    classification: Classification
    matrix: Matrix
    findings: list[Finding]

    def to_dict(self) -> dict[str, Any]:
        c = self.classification
        return {
            "zones": [vars(z) for z in c.zones],
            "flows": c.flows,
            "conn_records": c.conn_rows,
            "flows_by_status": {s: c.by_status.get(s, 0) for s in STATUSES},
            "matrix": self.matrix.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "notes": c.notes,
        }


def report(case: Any, settings: dict[str, dict[str, Any]] | None = None) -> Report:
    """Classify the case's flows, run the seg.* analytics and build the zone matrix."""
    settings = settings if settings is not None else load_settings()
    classification = classify(case, settings)
    ctx = Context(case, settings)
    findings: list[Finding] = []
    for a in ANALYTICS:
        if settings.get(a.name, {}).get("enabled", True):
            findings.extend(a.run(ctx, a))
    from gridhunt.report.findings import sort_key

    findings.sort(key=sort_key)
    return Report(classification, zone_matrix(case, settings), findings)


FLOW_COLUMNS = ("ts", "src_ip", "src_port", "dst_ip", "dst_port", "proto", "bytes_out", "bytes_in", "action",
                "src_zone", "dst_zone", "status", "reason", "rule", "vendor_path", "conn_rows")  # fmt: skip


def write_flows_csv(case: Any, path: Path) -> int:
    """Every classified flow, one CSV row (columns FLOW_COLUMNS), in time order; returns rows written."""
    cols = ", ".join(FLOW_COLUMNS)
    case.con.execute(
        f"COPY (SELECT {cols} FROM gh_seg_flows ORDER BY ts, src_ip, src_port, dst_ip, dst_port) "
        f"TO {sql_literal(str(path))} (HEADER, DELIMITER ',')"
    )
    return int(case.con.execute("SELECT count(*) FROM gh_seg_flows").fetchall()[0][0])


def cell_text(cell: Cell) -> str:
    """What a matrix cell says, for any renderer (terminal, HTML): 'flows / bytes', then how many of
    them crossed outside a conduit and were denied, when that is not all or none of them."""
    if not cell.flows:
        return "conduit, no traffic" if cell.conduits else "·"
    lines = [f"{cell.flows:,} / {human_bytes(cell.bytes)}"]
    if 0 < cell.violation < cell.flows:
        lines.append(f"{cell.violation:,} outside conduits")
    if cell.unknown_zone and cell.unknown_zone < cell.flows:
        lines.append(f"{cell.unknown_zone:,} unknown zone")
    if cell.denied:
        lines.append(f"{cell.denied:,} denied")
    return "\n".join(lines)


def human_bytes(n: int) -> str:
    """1234567 -> '1.2 MB' (decimal units)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
