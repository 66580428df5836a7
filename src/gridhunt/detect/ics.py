"""ICS protocol analytics over the `ics` table (Zeek modbus / dnp3 and ICSNPP bacnet / enip / cip / s7comm /
c1222 records, see ingest/zeek_ics.py for which functions write or control).

A *command* is a row whose direction is not 'response' (a request, or a record covering request and reply),
so a Modbus write logged as REQ and RESP counts once. Each address is looked up once (gh_ics_host): its
inventory asset (assets.ips), role, and zone as the segmentation analytics read zones.yaml: a zone listing
the asset (asset_id / hostname) or its role beats any CIDR, then the longest CIDR, then the asset's own
`zone`; broadcast and multicast destinations are in their sender's zone. Roles compare lower-cased with
'_' and spaces read as '-'. Thresholds live in detect/ics.yaml.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from typing import Any

import pyarrow as pa

from gridhunt import geo
from gridhunt.detect.base import MAX_EVIDENCE_ROWS, Analytic, Context, query_findings
from gridhunt.report.findings import Finding
from gridhunt.sql import temp_table

IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
# destinations that stay on the local segment (multicast, limited broadcast): the sender's zone
_LOCAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("224.0.0.0/4", "255.255.255.255/32", "ff00::/8"))

VIEW = """
CREATE OR REPLACE TEMP VIEW gh_ics AS
SELECT i.*, i.direction IS DISTINCT FROM 'response' AS is_command,
    s.asset_id AS src_asset, s.hostname AS src_host, s.role AS src_role, coalesce(s.known, false) AS src_known,
    s.zone AS src_zone, s.zone_level AS src_level, s.zone_kind AS src_kind, coalesce(s.internal, false) AS src_internal,
    d.asset_id AS dst_asset, d.hostname AS dst_host, d.role AS dst_role, coalesce(d.local, false) AS dst_local,
    CASE WHEN d.local THEN s.zone ELSE d.zone END AS dst_zone,
    CASE WHEN d.local THEN s.zone_level ELSE d.zone_level END AS dst_level,
    CASE WHEN d.local THEN s.zone_kind ELSE d.zone_kind END AS dst_kind,
    coalesce(d.internal, false) AS dst_internal
FROM ics i
LEFT JOIN gh_ics_host s ON s.ip = i.src_ip
LEFT JOIN gh_ics_host d ON d.ip = i.dst_ip
"""

EVIDENCE = """struct_pack(source_file := source_file, source_ref := source_ref, ts := ts,
    fields := struct_pack(protocol := protocol, "function" := "function", direction := direction,
        src_ip := src_ip, src_port := src_port, dst_ip := dst_ip, dst_port := dst_port,
        unit_or_address := unit_or_address, status := status, is_write := is_write, is_control := is_control))"""
EVIDENCE_LIST = f"list({EVIDENCE} ORDER BY ts, source_file, source_ref) FILTER (WHERE rn <= {MAX_EVIDENCE_ROWS})"
RN = "row_number() OVER (PARTITION BY {keys} ORDER BY ts, source_file, source_ref) AS rn"
# the usual per-finding numbers
COUNTS = """commands := count(*), writes := count(*) FILTER (WHERE is_write),
    controls := count(*) FILTER (WHERE is_control), functions := histogram("function")"""


def norm_role(role: Any) -> str | None:
    """'Engineering Workstation' / 'engineering_workstation' -> 'engineering-workstation'."""
    if role is None:
        return None
    text = re.sub(r"[\s_]+", "-", str(role).strip().lower())
    return text or None


def _roles(p: dict[str, Any]) -> list[str]:
    """The roles that may command field devices: 'role' for any protocol, 'protocol|role' for one."""
    out = {norm_role(v) for v in p["engineering_roles"]}
    for protocol, roles in (p.get("protocol_master_roles") or {}).items():
        out |= {f"{str(protocol).lower()}|{norm_role(r)}" for r in roles or []}
    return sorted(r for r in out if r)


# a command's source holds one of the roles from _roles (parameter: that list)
ALLOWED_SOURCE = "coalesce(list_has_any(?::VARCHAR[], [src_role, protocol || '|' || src_role]), false)"


def _addr(text: Any) -> IpAddr | None:
    try:
        addr = ipaddress.ip_address(str(text).strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _classify_hosts(con: Any) -> None:
    """Temp table gh_ics_host: every address in `ics` once, with its asset, role and zone."""
    zones: dict[str, tuple[Any, Any]] = {}
    nets: list[tuple[IpNet, str]] = []
    by_tag: dict[str, str] = {}
    by_role: dict[str, str] = {}
    for name, cidrs, level, kind, tags, roles in con.execute(
        "SELECT name, cidrs, level, kind, assets, roles FROM zones WHERE name IS NOT NULL ORDER BY name"
    ).fetchall():
        zones.setdefault(name, (level, kind))
        for c in cidrs or []:
            try:
                nets.append((ipaddress.ip_network(str(c).strip(), strict=False), name))
            except ValueError:
                continue  # the context reader reports bad CIDRs
        for t in tags or []:
            by_tag.setdefault(str(t).lower(), name)
        for r in roles or []:
            by_role.setdefault(norm_role(r) or "", name)
    nets.sort(key=lambda n: -n[0].prefixlen)  # longest prefix first
    assets: dict[IpAddr, tuple[Any, ...]] = {}
    for asset_id, hostname, ips, zone, role in con.execute(
        "SELECT asset_id, hostname, ips, zone, role FROM assets "
        "ORDER BY asset_id NULLS LAST, hostname NULLS LAST, source_file, source_ref"
    ).fetchall():
        for ip in ips or []:
            addr = _addr(ip)
            if addr is not None:
                assets.setdefault(addr, (asset_id, hostname, zone, role))
    rows: dict[str, list[Any]] = {
        k: []
        for k in ("ip", "known", "asset_id", "hostname", "role", "zone", "zone_level", "zone_kind", "internal", "local")
    }
    sql = "SELECT DISTINCT ip FROM (SELECT src_ip AS ip FROM ics UNION SELECT dst_ip FROM ics) WHERE ip IS NOT NULL"
    for (ip,) in con.execute(sql).fetchall():
        addr = _addr(ip)
        asset = assets.get(addr) if addr is not None else None
        asset_id, hostname, asset_zone, role = asset or (None, None, None, None)
        zone = None
        if asset is not None:
            zone = next((by_tag[k.lower()] for k in (asset_id, hostname) if k and k.lower() in by_tag), None)
            zone = zone or by_role.get(norm_role(role) or "")
        net = next((n for n in nets if addr is not None and addr.version == n[0].version and addr in n[0]), None)
        if zone is None and net is not None:
            zone = net[1]
        zone = zone or asset_zone
        local = addr is not None and (
            any(addr.version == n.version and addr in n for n in _LOCAL_NETWORKS)
            # a zone subnet's own broadcast address (BACnet Who-Is, ENIP List Identity)
            or (net is not None and net[0].prefixlen < net[0].max_prefixlen - 1 and addr == net[0].broadcast_address)
        )
        level, kind = zones.get(zone, (None, None)) if zone else (None, None)
        rows["ip"].append(ip)
        rows["known"].append(asset is not None)
        rows["asset_id"].append(asset_id)
        rows["hostname"].append(hostname)
        rows["role"].append(norm_role(role))
        rows["zone"].append(zone)
        rows["zone_level"].append(level)
        rows["zone_kind"].append(str(kind).lower() if kind else None)
        rows["internal"].append(addr is not None and (local or geo.is_internal(addr) or net is not None))
        rows["local"].append(local)
    types = {"known": pa.bool_(), "zone_level": pa.int32(), "internal": pa.bool_(), "local": pa.bool_()}
    tbl = pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in rows.items()})
    temp_table(con, "gh_ics_host", tbl)


def prepare(ctx: Context) -> None:
    _classify_hosts(ctx.case.con)
    ctx.case.con.execute(VIEW)


def write_from_non_engineering_host(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    roles = _roles(p)
    sql = f"""
    WITH w AS (
        SELECT *, {RN.format(keys="src_ip")} FROM gh_ics
        WHERE is_command AND (is_write OR is_control) AND src_ip IS NOT NULL
            AND NOT {ALLOWED_SOURCE}
    )
    SELECT src_ip AS entity, min(ts) AS ts_first, max(ts) AS ts_last, count(*) AS count, {EVIDENCE_LIST} AS evidence,
        -- a writer the inventory does not know, or one that restarts / stops / reprograms devices
        CASE WHEN NOT bool_or(src_known) OR bool_or(is_control) THEN 'critical' END AS severity,
        struct_pack(asset_role := any_value(src_role), asset_id := any_value(src_asset),
            hostname := any_value(src_host), in_inventory := bool_or(src_known), zone := any_value(src_zone),
            {COUNTS}, protocols := list(DISTINCT protocol ORDER BY protocol),
            targets := list(DISTINCT dst_ip ORDER BY dst_ip)[1:50], allowed_roles := ?::VARCHAR[]) AS details
    FROM w GROUP BY src_ip
    ORDER BY ts_first, entity
    """
    return query_findings(ctx, a, sql, [roles, roles])


def control_command(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    roles = _roles(p)
    tz, start, end = str(p["timezone"]), int(p["business_hours_start"]), int(p["business_hours_end"])
    sql = f"""
    WITH c AS (
        SELECT *, hour(timezone(?, ts)) AS local_hour, isodow(timezone(?, ts)) AS local_dow,
            NOT {ALLOWED_SOURCE} AS non_eng,
            (SELECT min(w.ticket) FROM change_windows w WHERE ts BETWEEN w.window_start AND w.window_end) AS ticket
        FROM gh_ics WHERE is_command AND is_control
    ), r AS (
        SELECT *, (local_hour < ? OR local_hour >= ? OR (? AND local_dow >= 6)) AS off_hours,
            {RN.format(keys="src_ip, dst_ip, protocol")}
        FROM c
        -- approved work: an engineering host's command inside a change window is not reported
        WHERE ? OR non_eng OR ticket IS NULL
    )
    SELECT coalesce(src_ip, '?') || ' -> ' || coalesce(dst_ip, '?') || ' ' || protocol AS entity,
        min(ts) AS ts_first, max(ts) AS ts_last, count(*) AS count, {EVIDENCE_LIST} AS evidence,
        CASE WHEN bool_or(off_hours) AND bool_or(non_eng) THEN 'critical'
             WHEN bool_or(off_hours) OR bool_or(non_eng) THEN 'high'
             WHEN bool_and(ticket IS NOT NULL) THEN 'low' END AS severity,
        struct_pack({COUNTS}, off_hours := count(*) FILTER (WHERE off_hours),
            from_engineering_host := NOT bool_or(non_eng), asset_role := any_value(src_role),
            hostname := any_value(src_host), target_role := any_value(dst_role), target_host := any_value(dst_host),
            in_change_window := count(*) FILTER (WHERE ticket IS NOT NULL),
            change_tickets := list(DISTINCT ticket ORDER BY ticket) FILTER (WHERE ticket IS NOT NULL),
            timezone := ?, business_hours := [?, ?], weekends_off_hours := ?) AS details
    FROM r GROUP BY src_ip, dst_ip, protocol
    ORDER BY ts_first, entity
    """
    weekends = bool(p["weekends_off_hours"])
    args = [tz, tz, roles, start, end, weekends, bool(p["report_approved"]), tz, start, end, weekends]
    return query_findings(ctx, a, sql, args)


def new_master_outstation_pair(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    hours = float(p["baseline_hours"])
    # broadcast / multicast "outstations" are discovery, not a pair
    scope = "is_command AND src_ip IS NOT NULL AND dst_ip IS NOT NULL AND NOT dst_local"
    t0, t1 = ctx.case.con.execute(f"SELECT min(ts), max(ts) FROM gh_ics WHERE {scope}").fetchall()[0]
    if t0 is None:
        return []
    cut = t0 + timedelta(hours=hours)
    if t1 < cut:
        span = (t1 - t0).total_seconds() / 3600
        ctx.notes.append(f"{a.name}: ICS commands span {span:.1f} h, not more than baseline_hours ({hours:g}): skipped")
        return []
    roles = _roles(p)
    tz, start, end = str(p["timezone"]), int(p["business_hours_start"]), int(p["business_hours_end"])
    sql = f"""
    WITH c AS (SELECT * FROM gh_ics WHERE {scope}),
    firsts AS (SELECT src_ip, dst_ip, protocol, min(ts) AS first_seen FROM c GROUP BY ALL),
    r AS (
        SELECT c.*, {RN.format(keys="c.src_ip, c.dst_ip, c.protocol")},
            {ALLOWED_SOURCE} AS eng,
            (hour(timezone(?, ts)) < ? OR hour(timezone(?, ts)) >= ? OR (? AND isodow(timezone(?, ts)) >= 6)
             ) AND NOT EXISTS (SELECT 1 FROM change_windows w WHERE ts BETWEEN w.window_start AND w.window_end)
             AS unapproved_hours
        FROM c JOIN firsts f USING (src_ip, dst_ip, protocol) WHERE f.first_seen >= ?
    )
    SELECT src_ip || ' -> ' || dst_ip || ' ' || protocol AS entity, min(ts) AS ts_first, max(ts) AS ts_last,
        count(*) AS count, {EVIDENCE_LIST} AS evidence,
        CASE WHEN bool_or(is_write OR is_control) THEN 'high' END AS severity,
        struct_pack(first_seen := min(ts), baseline_start := ?::TIMESTAMPTZ, baseline_end := ?::TIMESTAMPTZ,
            baseline_hours := ?, pairs_in_baseline := (SELECT count(*) FROM firsts WHERE first_seen < ?), {COUNTS},
            master_role := any_value(src_role), master_host := any_value(src_host), master_zone := any_value(src_zone),
            outstation_role := any_value(dst_role), outstation_host := any_value(dst_host),
            outstation_zone := any_value(dst_zone), from_engineering_host := bool_and(eng),
            off_hours_or_unapproved := count(*) FILTER (WHERE unapproved_hours)) AS details
    FROM r GROUP BY src_ip, dst_ip, protocol
    -- an engineer opening a session to another device in working hours (or a change window) is the
    -- job; the same from any other host, or at night, is not
    HAVING NOT (? AND bool_and(eng) AND NOT bool_or(unapproved_hours))
    ORDER BY ts_first, entity
    """
    weekends = bool(p["weekends_off_hours"])
    args = [roles, tz, start, tz, end, weekends, tz, cut, t0, cut, p["baseline_hours"], cut]
    args.append(bool(p["quiet_engineering_in_business_hours"]))
    return query_findings(ctx, a, sql, args)


def _ports(spec: Any) -> list[tuple[int, int]] | None:
    """Conduit ports '502,20000-20010' -> ranges; None = any port. Service names cannot be matched: skipped."""
    text = str(spec or "").strip().lower()
    if text in ("", "any", "*"):
        return None
    out = []
    for token in text.split(","):
        lo, _, hi = token.strip().partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out.append((int(lo), int(hi or lo)))
    return out


def _covered(con: Any) -> None:
    """Temp table gh_ics_covered(src_ip, src_zone, dst_zone, dst_port): the outside-OT combinations a declared
    conduit allows (zones, destination port, and the conduit's via host when it names one). The conduit's
    transport is not checked: the ics table does not say whether a record came over TCP or UDP."""
    conduits = con.execute("SELECT from_zone, to_zone, ports, via_host FROM conduits").fetchall()
    combos = con.execute(
        """SELECT DISTINCT src_ip, src_host, src_zone, dst_zone, dst_port FROM gh_ics
        WHERE src_zone IS NOT NULL AND dst_zone IS NOT NULL AND src_zone <> dst_zone"""
    ).fetchall()
    rows: dict[str, list[Any]] = {"src_ip": [], "src_zone": [], "dst_zone": [], "dst_port": []}
    for src_ip, src_host, src_zone, dst_zone, dst_port in combos:
        for from_zone, to_zone, ports, via in conduits:
            if (from_zone, to_zone) != (src_zone, dst_zone):
                continue
            if via and str(via).lower() not in {str(src_ip).lower(), str(src_host or "").lower()}:
                continue
            ranges = _ports(ports)
            if ranges is None or (dst_port is not None and any(lo <= dst_port <= hi for lo, hi in ranges)):
                for k, v in zip(rows, (src_ip, src_zone, dst_zone, dst_port), strict=True):
                    rows[k].append(v)
                break
    tbl = pa.table({k: pa.array(v, pa.int32() if k == "dst_port" else pa.string()) for k, v in rows.items()})
    temp_table(con, "gh_ics_covered", tbl)


def protocol_outside_zone(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    con = ctx.case.con
    level, names = int(p["min_ot_level"]), [str(z) for z in p["ot_zones"]]
    ot = [
        r[0]
        for r in con.execute(
            """SELECT name FROM zones WHERE name IS NOT NULL AND (lower(kind) = 'ot'
                OR (kind IS NULL AND level >= ?) OR list_contains(?::VARCHAR[], name)) ORDER BY name""",
            [level, names],
        ).fetchall()
    ]
    if not ot:
        ctx.notes.append(f"{a.name}: no OT zone (kind: ot, level >= {level}, or ot_zones): skipped")
        return []
    _covered(con)
    allowed = ""
    if p["respect_conduits"]:
        allowed = """AND NOT EXISTS (SELECT 1 FROM gh_ics_covered v WHERE v.src_ip = g.src_ip
            AND v.src_zone = g.src_zone AND v.dst_zone = g.dst_zone AND v.dst_port IS NOT DISTINCT FROM g.dst_port)"""
    sql = f"""
    WITH o AS (
        SELECT g.*, list_contains(?::VARCHAR[], g.src_zone) AS src_ot, list_contains(?::VARCHAR[], g.dst_zone) AS dst_ot
        FROM gh_ics g WHERE list_contains(?::VARCHAR[], g.protocol) {allowed}
    ), r AS (
        SELECT *, {RN.format(keys="src_ip, dst_ip, protocol")} FROM o
        WHERE NOT (coalesce(src_ot, false) AND coalesce(dst_ot, false))
    )
    SELECT coalesce(src_ip, '?') || ' -> ' || coalesce(dst_ip, '?') || ' ' || protocol AS entity,
        min(ts) AS ts_first, max(ts) AS ts_last, count(*) AS count, {EVIDENCE_LIST} AS evidence,
        CASE WHEN NOT bool_and(src_internal AND dst_internal) THEN 'critical'
             WHEN bool_or(is_command AND (is_write OR is_control)) THEN 'high' END AS severity,
        struct_pack(src_zone := any_value(src_zone), dst_zone := any_value(dst_zone),
            src_zone_level := any_value(src_level), dst_zone_level := any_value(dst_level),
            src_is_ot := coalesce(bool_or(src_ot), false), dst_is_ot := coalesce(bool_or(dst_ot), false),
            public_end := NOT bool_and(src_internal AND dst_internal), src_role := any_value(src_role),
            src_host := any_value(src_host), dst_role := any_value(dst_role), dst_host := any_value(dst_host),
            records := count(*), commands := count(*) FILTER (WHERE is_command),
            writes := count(*) FILTER (WHERE is_command AND is_write),
            controls := count(*) FILTER (WHERE is_command AND is_control),
            functions := histogram("function"), ot_zones := ?::VARCHAR[], min_ot_level := ?) AS details
    FROM r GROUP BY src_ip, dst_ip, protocol
    ORDER BY ts_first, entity
    """
    protocols = [str(x).lower() for x in p["protocols"]]
    return query_findings(ctx, a, sql, [ot, ot, protocols, ot, level])


ANALYTICS = (
    Analytic(
        "ics.write_from_non_engineering_host",
        "ICS write / control commands from a host that is not an engineering workstation, HMI or SCADA master",
        "high",
        ("T0855", "T0836"),
        ("ics", "assets"),
        write_from_non_engineering_host,
    ),
    Analytic(
        "ics.control_command",
        "ICS control command: restart, stop / run mode, program, firmware or file transfer",
        "medium",
        ("T0816", "T0858", "T0843", "T0857"),
        ("ics",),
        control_command,
    ),
    Analytic(
        "ics.new_master_outstation_pair",
        "New ICS master -> outstation pair after the baseline period",
        "medium",
        ("T0848", "T0886"),
        ("ics",),
        new_master_outstation_pair,
    ),
    Analytic(
        "ics.protocol_outside_zone",
        "ICS protocol traffic with an end outside the OT zones",
        "medium",
        ("T0886", "T0883"),
        ("ics", "zones"),
        protocol_outside_zone,
    ),
)
