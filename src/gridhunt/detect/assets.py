"""Asset reconciliation and telemetry coverage: the hosts the evidence shows vs the inventory.

Observed hosts are every address and host name the evidence holds, with the logs that saw them:

    conn        source address; destination address only when it answered (bytes back), so a scan of
                empty addresses invents no devices
    dns         source address          http / tls   client, and server when it answered
    auth        source address, workstation name, target host (not AMI rows: theirs is the system name)
    win_events  computer                ami_audit    source address
    ics         master; outstation when it answered

An address is matched to the inventory (`assets.ips`) exactly; a name by its short form (first label,
any case), and by the FQDN too when both sides have one; a 15-character NetBIOS name matches a longer
inventory name it truncates. Logons pair a workstation name with its address (auth src_host +
src_ip), which ties a known host to an address the inventory does not list, and an unknown name to
its address. An address's zone comes from gridhunt.detect.zones (the policy's CIDRs, asset and role
lists, as `gridhunt segmentation` sees them).

    assets.unknown_device   internal addresses / names matching no inventory entry, one finding per zone
    assets.zone_mismatch    an inventory asset seen at an address in another zone than the inventory's
    assets.stale            inventory items no evidence shows (one informational finding listing them)
    assets.coverage_gap     critical, OT-zone or vendor-managed assets missing an expected evidence source

The same work tables feed `gridhunt assets CASE` through `asset_report()`:

    gh_assets_inv       inventory + normalised name, zone level / kind, OT flag
    gh_assets_obs       one row per (column kind, raw value, log): first / last seen, rows, the key
    gh_assets_keys      one row per observed address / short name: zone, inventory matches, logs
    gh_assets_devices   unknown devices (per zone): addresses, names, logs, rows
    gh_assets_mismatch  assets at addresses in another zone
    gh_assets_cov       one row per asset: rows per evidence source, vendor, gaps
"""

from __future__ import annotations

import csv
import hashlib
import ipaddress
import json
from pathlib import Path
from typing import Any

from gridhunt.detect import zones
from gridhunt.detect.base import MAX_EVIDENCE_ROWS, Analytic, Context, query_findings
from gridhunt.report.findings import Finding
from gridhunt.sql import sql_literal

# evidence sources per asset, in column order (gridhunt assets, --json, --csv)
SOURCES = ("security_log", "sysmon", "powershell", "system_log", "flows", "dns", "ami_audit", "auth_as_target")
WINDOWS_SOURCES = ("security_log", "sysmon", "powershell", "system_log")
POWERSHELL_CHANNELS = ("microsoft-windows-powershell/operational", "windows powershell", "powershellcore/operational")
# what logs write where there is no host name
NAME_JUNK = ("-", "localhost", "localhost.localdomain", "unknown", "n/a", "none", "null")
# never a device of its own: loopback / "this network" (zones.NOT_HOSTS), and IPv6 link-local addresses, which
# every interface makes up for itself and no inventory lists
_NOT_DEVICES = (*zones.NOT_HOSTS, ipaddress.ip_network("fe80::/10"))
_INPUTS = ("conn", "dns", "http", "tls", "auth", "win_events_data", "ami_audit", "ics", "assets", "zones",
           "vendor_access")  # fmt: skip


def _norm_name(expr: str) -> str:
    """SQL: a host name lower-cased, without a UNC prefix (\\\\host) or a trailing dot, NULL if empty."""
    return rf"nullif(regexp_replace(lower(trim({expr})), '^\\+|\.+$', '', 'g'), '')"


def _names_match(short: str, fqdn: str, inv: str) -> str:
    """SQL: an observed name (`short`, `fqdn` columns) names inventory row alias `inv`: same short
    name (or the 15-character NetBIOS truncation of it), and the same FQDN when both have one."""
    return (
        f"({short} = {inv}.short OR (length({short}) = 15 AND length({inv}.short) > 15 AND left({inv}.short, 15) = "
        f"{short})) AND ({inv}.fqdn IS NULL OR {fqdn} IS NULL OR {inv}.fqdn = {fqdn})"
    )


def _globs(values: list[Any]) -> list[str]:
    """Shell-style name patterns -> lower-case SQL GLOB patterns."""
    return [str(v).strip().lower() for v in values if str(v).strip()]


def _check(settings: dict[str, dict[str, Any]]) -> None:
    cov = settings["assets.coverage_gap"]
    bad = [s for s in cov["required"] if s not in SOURCES]
    if bad:
        raise ValueError(f"assets.coverage_gap.required: unknown source(s) {bad} (known: {', '.join(SOURCES)})")
    roles = cov["ami_system_roles"]
    if not all(isinstance(v, list) for v in roles.values()):
        raise ValueError("assets.coverage_gap.ami_system_roles: expected system: [roles, ...]")


def _cache_key(case: Any, settings: dict[str, dict[str, Any]]) -> str:
    mine = {k: v for k, v in settings.items() if k.startswith("assets.")}
    counts = case.con.execute("SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in _INPUTS)).fetchall()[0]
    return hashlib.sha256(json.dumps([mine, list(counts)], sort_keys=True, default=str).encode()).hexdigest()


def build(case: Any, settings: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """(Re)build the gh_assets_* work tables (reused while the inputs and settings are unchanged).
    Returns notes for the run summary (policy entries holding no address)."""
    from gridhunt.detect.settings import load_settings

    settings = settings if settings is not None else load_settings()
    _check(settings)
    con = case.con
    key = _cache_key(case, settings)
    con.execute("CREATE TEMP TABLE IF NOT EXISTS gh_assets_meta (key VARCHAR, notes VARCHAR)")
    cached = con.execute("SELECT notes FROM gh_assets_meta WHERE key = ?", [key]).fetchall()
    if cached:
        return json.loads(cached[0][0])
    notes = zones.zone_ranges(case)
    _inventory(con)
    _observations(con)
    _keys(case, settings)
    _unknown(con, settings["assets.unknown_device"])
    _mismatch(con, settings["assets.zone_mismatch"])
    _coverage(con, settings)
    con.execute("DELETE FROM gh_assets_meta")
    con.execute("INSERT INTO gh_assets_meta VALUES (?, ?)", [key, json.dumps(notes)])
    return notes


def _inventory(con: Any) -> None:
    name = _norm_name("a.hostname")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_assets_inv AS
        WITH z AS (
            SELECT lower(name) AS zkey, any_value(level) AS level, any_value(lower(kind)) AS kind,
                bool_or(len(coalesce(cidrs, [])) + len(coalesce(assets, [])) + len(coalesce(roles, [])) > 0) AS declared
            FROM zones GROUP BY 1
        ), a AS (SELECT a.*, {name} AS name FROM assets a)
        SELECT a.asset_id, a.hostname, a.name, split_part(a.name, '.', 1) AS short,
            CASE WHEN contains(a.name, '.') THEN a.name END AS fqdn, coalesce(a.ips, []::VARCHAR[]) AS ips,
            a.zone, a.role, a.owner, a.vendor, lower(a.criticality) AS criticality, a.source_file, a.source_ref,
            z.level AS zone_level, z.kind AS zone_kind, coalesce(z.declared, false) AS zone_declared,
            {zones.ot_zone_sql("z.level", "z.kind")} AS ot
        FROM a LEFT JOIN z ON z.zkey = lower(a.zone)"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_assets_inv_ip AS
        SELECT asset_id, trim(ip) AS ip, {zones.ip4_num("ip")} AS num
        FROM (SELECT asset_id, unnest(ips) AS ip FROM assets) WHERE ip IS NOT NULL"""
    )


def _observations(con: Any) -> None:
    # aggregate per raw value first: the normalising below then runs on distinct values only
    junk = ", ".join(sql_literal(j) for j in NAME_JUNK)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_assets_obs AS
        WITH raw AS (
            SELECT 'ip' AS col, src_ip AS v, 'conn' AS log, ts FROM conn
            UNION ALL SELECT 'ip', dst_ip, 'conn', ts FROM conn WHERE bytes_in > 0
            UNION ALL SELECT 'ip', src_ip, 'dns', ts FROM dns
            UNION ALL SELECT 'ip', src_ip, 'http', ts FROM http
            UNION ALL SELECT 'ip', dst_ip, 'http', ts FROM http WHERE status_code IS NOT NULL
            UNION ALL SELECT 'ip', src_ip, 'tls', ts FROM tls
            UNION ALL SELECT 'ip', dst_ip, 'tls', ts FROM tls WHERE established
            UNION ALL SELECT 'ip', src_ip, 'auth', ts FROM auth
            UNION ALL SELECT 'name', src_host, 'auth', ts FROM auth
            UNION ALL SELECT 'name', dst_host, 'auth_target', ts FROM auth WHERE source IS DISTINCT FROM 'ami'
            UNION ALL SELECT 'name', computer, 'win:' || lower(coalesce(channel, '')), ts FROM win_events_data
            UNION ALL SELECT 'ip', src_ip, 'ami_audit', ts FROM ami_audit
            UNION ALL SELECT 'ip', src_ip, 'ics', ts FROM ics
            -- an outstation answered (a response row, or a record covering request and reply)
            UNION ALL SELECT 'ip', dst_ip, 'ics', ts FROM ics WHERE direction IS DISTINCT FROM 'request'
        ), agg AS (
            SELECT col, v, log, min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS n
            FROM raw WHERE v IS NOT NULL GROUP BY ALL
        ), s AS (
            SELECT *, CASE WHEN col = 'ip' THEN nullif(trim(v), '') ELSE {_norm_name("v")} END AS spelling FROM agg
        ), t AS (
            SELECT *, {zones.ip4_num("spelling")} IS NOT NULL OR contains(spelling, ':') AS is_ip
            FROM s WHERE spelling IS NOT NULL AND spelling NOT IN ({junk})
        )
        SELECT col, v, log, first_seen, last_seen, n, spelling,
            CASE WHEN is_ip THEN 'ip' ELSE 'name' END AS kind,
            CASE WHEN is_ip THEN spelling ELSE split_part(spelling, '.', 1) END AS key,
            CASE WHEN NOT is_ip AND contains(spelling, '.') THEN spelling END AS fqdn
        FROM t WHERE is_ip OR col = 'name'"""
    )
    # which inventory asset each distinct spelling names (equi-joins, each cheap)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_assets_match AS
        WITH s AS (SELECT DISTINCT kind, spelling, key, fqdn FROM gh_assets_obs),
        n AS (SELECT *, {zones.ip4_num("spelling")} AS num FROM s WHERE kind = 'ip')
        SELECT DISTINCT n.kind, n.spelling, i.asset_id FROM n JOIN gh_assets_inv_ip i ON i.ip = n.spelling
        UNION SELECT n.kind, n.spelling, i.asset_id FROM n JOIN gh_assets_inv_ip i ON i.num = n.num
        UNION SELECT s.kind, s.spelling, i.asset_id FROM s JOIN gh_assets_inv i ON s.kind = 'name'
            AND s.key = i.short WHERE i.fqdn IS NULL OR s.fqdn IS NULL OR i.fqdn = s.fqdn
        UNION SELECT s.kind, s.spelling, i.asset_id FROM s JOIN gh_assets_inv i ON s.kind = 'name'
            AND length(s.key) = 15 AND length(i.short) > 15 AND left(i.short, 15) = s.key
            WHERE i.fqdn IS NULL OR s.fqdn IS NULL OR i.fqdn = s.fqdn"""
    )


def _keys(case: Any, settings: dict[str, dict[str, Any]]) -> None:
    con = case.con
    zones.address_zones(case, "SELECT DISTINCT key AS ip FROM gh_assets_obs WHERE kind = 'ip'", "gh_assets_ipzone")
    not_host = zones.in_ranges_sql("z.family", "z.num", _NOT_DEVICES)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_assets_keys AS
        WITH m AS (
            SELECT kind, spelling, list(DISTINCT asset_id ORDER BY asset_id) AS asset_ids
            FROM gh_assets_match GROUP BY ALL
        ), k AS (
            SELECT o.kind, o.key, list(DISTINCT trim(o.v) ORDER BY trim(o.v)) AS spellings,
                list(DISTINCT o.log ORDER BY o.log) AS logs, min(o.first_seen) AS first_seen,
                max(o.last_seen) AS last_seen, sum(o.n)::BIGINT AS n,
                list_sort(list_distinct(flatten(list(coalesce(m.asset_ids, []::VARCHAR[]))))) AS asset_ids
            FROM gh_assets_obs o LEFT JOIN m USING (kind, spelling) GROUP BY o.kind, o.key
        ), vpn AS (SELECT DISTINCT trim(dst_ip) AS ip FROM conn WHERE service = 'vpn' AND dst_ip IS NOT NULL)
        SELECT k.*, z.family, z.num, z.zone, z.how AS zone_how,
            coalesce(z.how IN ('asset', 'role', 'cidr', 'inventory', 'internal') AND NOT {not_host}, false)
                AS internal,
            vpn.ip IS NOT NULL AS vpn_client
        FROM k LEFT JOIN gh_assets_ipzone z ON k.kind = 'ip' AND z.ip = k.key
        LEFT JOIN vpn ON k.kind = 'ip' AND vpn.ip = k.key"""
    )
    # a logon names the workstation and the address it came from
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_assets_pairs AS
        SELECT p.* FROM (
            SELECT split_part({_norm_name("src_host")}, '.', 1) AS short, trim(src_ip) AS ip, count(*) AS n,
                min(ts) AS first_seen, max(ts) AS last_seen
            FROM auth WHERE src_host IS NOT NULL AND src_ip IS NOT NULL GROUP BY ALL
        ) p
        JOIN gh_assets_keys kn ON kn.kind = 'name' AND kn.key = p.short
        JOIN gh_assets_keys ki ON ki.kind = 'ip' AND ki.key = p.ip AND ki.internal"""
    )


def _unknown(con: Any, p: dict[str, Any]) -> None:
    ignored = zones.in_ranges_sql("k.family", "k.num", zones.parse_cidrs(p["ignore_cidrs"], "ignore_cidrs"))
    globs = _globs(p["ignore_names"])
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_assets_unknown AS
        WITH known_name AS (SELECT key FROM gh_assets_keys WHERE kind = 'name' AND len(asset_ids) > 0),
        known_ip AS (SELECT key FROM gh_assets_keys WHERE kind = 'ip' AND len(asset_ids) > 0),
        u_ip AS (
            -- an unlisted address a known host logged on from is that host's (zone_mismatch judges it)
            SELECT k.key, k.zone FROM gh_assets_keys k
            WHERE k.kind = 'ip' AND k.internal AND len(k.asset_ids) = 0 AND NOT {ignored} AND (? OR NOT k.vpn_client)
                AND NOT EXISTS (SELECT 1 FROM gh_assets_pairs p JOIN known_name n ON n.key = p.short WHERE p.ip = k.key)
        ), u_name AS (
            -- an unlisted name logging on from an inventory address is an alias of that asset
            SELECT k.key FROM gh_assets_keys k
            WHERE k.kind = 'name' AND len(k.asset_ids) = 0
                AND NOT EXISTS (SELECT 1 FROM gh_assets_pairs p JOIN known_ip i ON i.key = p.ip WHERE p.short = k.key)
                AND NOT list_bool_or([k.key GLOB g OR list_bool_or([lower(s) GLOB g FOR s IN k.spellings])
                                      FOR g IN ?::VARCHAR[]])
        ), ip_m AS (
            -- an address takes the (first) unknown name that logged on from it as its device name
            SELECT coalesce(min(un.key), u.key) AS device, u.zone, 'ip' AS kind, u.key
            FROM u_ip u LEFT JOIN gh_assets_pairs p ON p.ip = u.key LEFT JOIN u_name un ON un.key = p.short
            GROUP BY u.key, u.zone
        )
        SELECT * FROM ip_m
        UNION ALL
        SELECT DISTINCT un.key, u.zone, 'name', un.key
        FROM u_name un JOIN gh_assets_pairs p ON p.short = un.key JOIN u_ip u ON u.key = p.ip
        UNION ALL
        -- a name never seen with an internal address has no zone; one seen only with ignored ones is dropped
        SELECT un.key, NULL, 'name', un.key FROM u_name un WHERE un.key NOT IN (SELECT short FROM gh_assets_pairs)""",
        [p["vpn_clients"], globs or [""]],
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_assets_devices AS
        WITH z AS (SELECT lower(name) AS zkey, any_value(level) AS level, any_value(lower(kind)) AS kind
                   FROM zones GROUP BY 1)
        SELECT u.zone, u.device,
            coalesce(list(DISTINCT k.key ORDER BY k.key) FILTER (WHERE u.kind = 'ip'), []::VARCHAR[]) AS ips,
            coalesce(list_sort(list_distinct(flatten(list(k.spellings) FILTER (WHERE u.kind = 'name')))),
                     []::VARCHAR[]) AS names,
            list_sort(list_distinct(flatten(list(k.logs)))) AS logs, min(k.first_seen) AS first_seen,
            max(k.last_seen) AS last_seen, sum(k.n)::BIGINT AS rows,
            bool_or(coalesce(k.vpn_client, false)) AS vpn_client, any_value(z.level) AS zone_level,
            coalesce(any_value({zones.ot_zone_sql("z.level", "z.kind")}), false) AS ot
        FROM gh_assets_unknown u JOIN gh_assets_keys k USING (kind, key) LEFT JOIN z ON z.zkey = lower(u.zone)
        GROUP BY u.zone, u.device"""
    )


def _mismatch(con: Any, p: dict[str, Any]) -> None:
    allowed = zones.in_ranges_sql("k.family", "k.num", zones.parse_cidrs(p["allow_cidrs"], "allow_cidrs"))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_assets_mismatch AS
        WITH own AS (
            -- an address the inventory gives the asset, placed in another zone by the policy
            SELECT unnest(k.asset_ids) AS asset_id, k.key AS ip, k.zone AS seen_zone, k.zone_how,
                'inventory address' AS how, NULL::VARCHAR AS name, k.n, k.first_seen, k.last_seen, k.logs
            FROM gh_assets_keys k WHERE k.kind = 'ip' AND k.internal AND NOT {allowed}
        ), named AS (
            -- the asset's name logged on from an address the inventory does not list
            SELECT unnest(kn.asset_ids) AS asset_id, k.key, k.zone, k.zone_how, 'logon from an unlisted address',
                p.short, p.n, p.first_seen, p.last_seen, ['auth']
            FROM gh_assets_pairs p JOIN gh_assets_keys kn ON kn.kind = 'name' AND kn.key = p.short
                JOIN gh_assets_keys k ON k.kind = 'ip' AND k.key = p.ip AND len(k.asset_ids) = 0
            WHERE len(kn.asset_ids) > 0 AND NOT {allowed}
        ), z AS (SELECT lower(name) AS zkey, any_value(level) AS level, any_value(lower(kind)) AS kind
                 FROM zones GROUP BY 1)
        SELECT m.*, i.hostname, i.zone AS inventory_zone, i.role, i.ot AS inventory_ot,
            coalesce({zones.ot_zone_sql("z.level", "z.kind")}, false) AS seen_ot
        FROM (SELECT * FROM own UNION ALL SELECT * FROM named) m
        JOIN gh_assets_inv i USING (asset_id) LEFT JOIN z ON z.zkey = lower(m.seen_zone)
        -- only where the inventory zone is one the policy declares, and the address sits in another
        WHERE m.seen_zone IS NOT NULL AND i.zone_declared AND lower(m.seen_zone) <> lower(i.zone)"""
    )


def _coverage(con: Any, settings: dict[str, dict[str, Any]]) -> None:
    p = settings["assets.coverage_gap"]
    edr = ["win:" + str(c).lower() for c in p["edr_channels"]]
    ps = ["win:" + c for c in POWERSHELL_CHANNELS]
    roles = [(str(sys_).lower(), str(r).lower()) for sys_, rs in p["ami_system_roles"].items() for r in rs]
    ami_roles = (
        "VALUES " + ", ".join(f"({sql_literal(s)}, {sql_literal(r)})" for s, r in roles)
        if roles
        else "SELECT NULL::VARCHAR, NULL::VARCHAR WHERE false"
    )
    pick = "CASE s " + " ".join(f"WHEN {sql_literal(s)} THEN c.{s}" for s in SOURCES) + " END"
    win = ", ".join(sql_literal(s) for s in WINDOWS_SOURCES)
    jump = _names_match(f"split_part({_norm_name('va.identifier')}, '.', 1)", "NULL", "i")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_assets_cov AS
        WITH om AS (
            SELECT m.asset_id, o.log, o.n, o.first_seen, o.last_seen
            FROM gh_assets_obs o JOIN gh_assets_match m USING (kind, spelling)
        ), seen AS (
            SELECT asset_id, min(first_seen) AS first_seen, max(last_seen) AS last_seen, sum(n)::BIGINT AS rows,
                list_sort(list_distinct(list(CASE WHEN starts_with(log, 'win:') THEN 'win_events' ELSE log END)))
                    AS logs,
                sum(n) FILTER (WHERE log = 'win:security') AS security_log,
                sum(n) FILTER (WHERE list_contains(?::VARCHAR[], log)) AS sysmon,
                sum(n) FILTER (WHERE list_contains(?::VARCHAR[], log)) AS powershell,
                sum(n) FILTER (WHERE log = 'win:system') AS system_log,
                sum(n) FILTER (WHERE starts_with(log, 'win:')) AS windows_any,
                sum(n) FILTER (WHERE log = 'conn') AS flows,
                sum(n) FILTER (WHERE log = 'dns') AS dns,
                sum(n) FILTER (WHERE log = 'ami_audit') AS ami_by_ip,
                sum(n) FILTER (WHERE log = 'auth_target') AS auth_as_target
            FROM om GROUP BY asset_id
        ), ami AS (
            -- the audit trail OF an AMI system: its `system` rows, whatever address the operator used; only
            -- where one asset has the role (two DMS servers cannot tell whose trail it is)
            SELECT i.asset_id, sum(s.n)::BIGINT AS n
            FROM (SELECT lower(system) AS system, count(*) AS n FROM ami_audit GROUP BY 1) s
            JOIN ({ami_roles}) r(system, role) ON r.system = s.system
            JOIN (SELECT * FROM gh_assets_inv QUALIFY count(*) OVER (PARTITION BY lower(role)) = 1) i
                ON lower(i.role) = r.role
            GROUP BY i.asset_id
        ), vend AS (
            SELECT asset_id, vendor, 'inventory' AS how FROM gh_assets_inv WHERE vendor IS NOT NULL
            UNION ALL
            SELECT i.asset_id, va.vendor, 'jump host ' || va.identifier || ' in the vendor register'
            FROM vendor_access va JOIN gh_assets_inv i ON va.kind = 'jump_host'
                AND ({jump} OR list_contains(i.ips, trim(va.identifier)))
            UNION ALL
            SELECT DISTINCT m.asset_id, va.vendor, 'vendor service account ' || lower(a."user") || ' logs on to it'
            FROM auth a JOIN vendor_access va ON va.kind = 'service_account' AND lower(a."user") = lower(va.identifier)
                JOIN gh_assets_match m ON m.kind = 'name' AND m.spelling = {_norm_name("a.dst_host")}
            -- logons (4624, or non-Windows sources): a DC validating the account's tickets is not a logon to it
            WHERE a.outcome = 'success' AND a.source IS DISTINCT FROM 'ami' AND coalesce(a.event_id, 4624) = 4624
        ), v AS (
            SELECT asset_id, list(DISTINCT vendor ORDER BY vendor) AS vendors,
                list(DISTINCT how ORDER BY how) AS vendor_via
            FROM vend GROUP BY asset_id
        ), unanswered AS (
            -- connections to the asset that got no answer: not a sighting, but worth a look on a stale item
            SELECT ii.asset_id, sum(x.n)::BIGINT AS n
            FROM (SELECT trim(dst_ip) AS ip, count(*) AS n FROM conn WHERE coalesce(bytes_in, 0) = 0 GROUP BY 1) x
            JOIN gh_assets_inv_ip ii ON ii.ip = x.ip GROUP BY ii.asset_id
        ), c AS (
            SELECT i.*, s.first_seen, s.last_seen, coalesce(un.n, 0) AS unanswered, coalesce(s.rows, 0) AS rows,
                coalesce(s.logs, []::VARCHAR[]) AS logs,
                coalesce(s.security_log, 0) AS security_log, coalesce(s.sysmon, 0) AS sysmon,
                coalesce(s.powershell, 0) AS powershell, coalesce(s.system_log, 0) AS system_log,
                coalesce(s.flows, 0) AS flows, coalesce(s.dns, 0) AS dns,
                coalesce(s.ami_by_ip, 0) + coalesce(ami.n, 0) AS ami_audit,
                coalesce(s.auth_as_target, 0) AS auth_as_target,
                -- a role that writes no Windows logs is not expected to, unless it evidently does
                coalesce(s.windows_any, 0) > 0 OR NOT list_contains(?::VARCHAR[], lower(coalesce(i.role, '')))
                    AS windows,
                coalesce(v.vendors, []::VARCHAR[]) AS vendors, coalesce(v.vendor_via, []::VARCHAR[]) AS vendor_via
            FROM gh_assets_inv i LEFT JOIN seen s USING (asset_id) LEFT JOIN ami USING (asset_id)
                LEFT JOIN v USING (asset_id) LEFT JOIN unanswered un USING (asset_id)
        ), j AS (
            SELECT c.*,
                list_filter([CASE WHEN list_contains(?::VARCHAR[], c.criticality) THEN 'critical' END,
                             CASE WHEN c.ot THEN 'ot zone' END,
                             CASE WHEN len(c.vendors) > 0 THEN 'vendor-managed' END], lambda x: x IS NOT NULL) AS why,
                list_filter(?::VARCHAR[], lambda s: {pick} = 0 AND (c.windows OR s NOT IN ({win}))) AS gaps,
                list_has_any(?::VARCHAR[], [lower(c.asset_id), c.name, c.short]) AS ignored,
                list_has_any(?::VARCHAR[], [lower(c.asset_id), c.name, c.short]) AS stale_ignored
            FROM c
        )
        SELECT * FROM j ORDER BY asset_id""",
        [
            edr,
            ps,
            [str(r).lower() for r in p["non_windows_roles"]],
            [str(c).lower() for c in p["criticalities"]],
            list(p["required"]),
            [str(a).lower() for a in p["ignore_assets"]],
            [str(a).lower() for a in settings["assets.stale"]["ignore_assets"]],
        ],
    )


# ---- analytics --------------------------------------------------------------------------------


def _ensure(ctx: Context) -> None:
    for note in build(ctx.case, ctx.settings):
        if note not in ctx.notes:
            ctx.notes.append(note)


def _evidence_sql(targets: str, per: int) -> str:
    """SQL: evidence rows (grp, sub, rn, ts, ev) for `targets` (grp, sub, col, v[, pair]): every row whose
    address / name column holds raw value v (col 'ip' or 'name'); col 'pair' = auth rows from address v
    whose workstation is `pair`. At most `per` rows per (grp, sub), oldest first."""
    ev = """struct_pack(source_file := r.source_file, source_ref := r.source_ref, ts := r.ts,
        fields := struct_pack(log := r.log, src_ip := r.src_ip, dst_ip := r.dst_ip, dst_port := r.dst_port,
            host := r.host, "user" := r."user", what := r.what))"""
    base = "t.grp, t.sub, x.ts, x.source_file, x.source_ref"
    auth_what = "concat_ws(' ', x.source, x.event_id::VARCHAR, x.outcome, 'on ' || x.dst_host)"
    return f"""
    WITH t AS ({targets}), r AS (
        SELECT {base}, 'conn' AS log, x.src_ip, x.dst_ip, x.dst_port, NULL::VARCHAR AS host, NULL::VARCHAR AS "user",
            concat_ws(' ', x.source, x.proto, x.service, x.action) AS what
        FROM conn x JOIN t ON t.col = 'ip' AND x.src_ip = t.v
        UNION ALL SELECT {base}, 'conn', x.src_ip, x.dst_ip, x.dst_port, NULL, NULL,
            concat_ws(' ', x.source, x.proto, x.service, x.action)
        FROM conn x JOIN t ON t.col = 'ip' AND x.dst_ip = t.v WHERE x.bytes_in > 0
        UNION ALL SELECT {base}, 'dns', x.src_ip, NULL, NULL, NULL, NULL, x.query
        FROM dns x JOIN t ON t.col = 'ip' AND x.src_ip = t.v
        UNION ALL SELECT {base}, 'http', x.src_ip, x.dst_ip, x.dst_port, x.host, NULL, x.method || ' ' || x.uri
        FROM http x JOIN t ON t.col = 'ip' AND x.src_ip = t.v
        UNION ALL SELECT {base}, 'http', x.src_ip, x.dst_ip, x.dst_port, x.host, NULL, x.method || ' ' || x.uri
        FROM http x JOIN t ON t.col = 'ip' AND x.dst_ip = t.v WHERE x.status_code IS NOT NULL
        UNION ALL SELECT {base}, 'tls', x.src_ip, x.dst_ip, x.dst_port, x.server_name, NULL, x.version
        FROM tls x JOIN t ON t.col = 'ip' AND x.src_ip = t.v
        UNION ALL SELECT {base}, 'tls', x.src_ip, x.dst_ip, x.dst_port, x.server_name, NULL, x.version
        FROM tls x JOIN t ON t.col = 'ip' AND x.dst_ip = t.v WHERE x.established
        UNION ALL SELECT {base}, 'auth', x.src_ip, NULL, NULL, coalesce(x.src_host, x.dst_host), x."user", {auth_what}
        FROM auth x JOIN t ON t.col = 'ip' AND x.src_ip = t.v
        UNION ALL SELECT {base}, 'auth', x.src_ip, NULL, NULL, x.src_host, x."user", {auth_what}
        FROM auth x JOIN t ON t.col = 'name' AND x.src_host = t.v
        UNION ALL SELECT {base}, 'auth', x.src_ip, NULL, NULL, x.dst_host, x."user", {auth_what}
        FROM auth x JOIN t ON t.col = 'name' AND x.dst_host = t.v WHERE x.source IS DISTINCT FROM 'ami'
        UNION ALL SELECT {base}, 'auth', x.src_ip, NULL, NULL, x.src_host, x."user", {auth_what}
        FROM auth x JOIN t ON t.col = 'pair' AND x.src_ip = t.v
        WHERE split_part({_norm_name("x.src_host")}, '.', 1) = t.pair
        UNION ALL SELECT {base}, 'win_events', NULL, NULL, NULL, x.computer, NULL,
            concat_ws(' ', x.channel, x.event_id::VARCHAR)
        FROM win_events_data x JOIN t ON t.col = 'name' AND x.computer = t.v
        UNION ALL SELECT {base}, 'ami_audit', x.src_ip, NULL, NULL, NULL, x."user", concat_ws(' ', x.system, x.action)
        FROM ami_audit x JOIN t ON t.col = 'ip' AND x.src_ip = t.v
        UNION ALL SELECT {base}, 'ics', x.src_ip, x.dst_ip, x.dst_port, NULL, NULL,
            concat_ws(' ', x.protocol, x.function, x.direction)
        FROM ics x JOIN t ON t.col = 'ip' AND x.src_ip = t.v
        UNION ALL SELECT {base}, 'ics', x.src_ip, x.dst_ip, x.dst_port, NULL, NULL,
            concat_ws(' ', x.protocol, x.function, x.direction)
        FROM ics x JOIN t ON t.col = 'ip' AND x.dst_ip = t.v WHERE x.direction IS DISTINCT FROM 'request'
    )
    SELECT grp, sub, ts, {ev} AS ev,
        row_number() OVER (PARTITION BY grp, sub ORDER BY ts, source_file, source_ref, log) AS rn
    FROM r QUALIFY rn <= {int(per)}"""


def unknown_device(ctx: Context, a: Analytic) -> list[Finding]:
    _ensure(ctx)
    p = ctx.params(a.name)
    targets = """SELECT coalesce(u.zone, '') AS grp, u.device AS sub, o.col, o.v, NULL::VARCHAR AS pair
        FROM gh_assets_unknown u JOIN gh_assets_obs o ON o.kind = u.kind AND o.key = u.key"""
    sql = f"""
    WITH d AS (SELECT * FROM gh_assets_devices),
    e AS ({_evidence_sql(targets, p["evidence_per_device"])}),
    ev AS (
        -- every device's first rows before any device's later ones, so none is left out by the cap
        SELECT grp, list(ev ORDER BY rn, sub, ts)[1:{MAX_EVIDENCE_ROWS}] AS evidence FROM e GROUP BY grp
    ), g AS (
        SELECT coalesce(zone, '') AS grp, any_value(zone) AS zone, any_value(zone_level) AS zone_level,
            bool_or(ot) AS ot, count(*) AS devices, count(*) FILTER (WHERE vpn_client) AS vpn_clients,
            sum(rows)::BIGINT AS rows,
            min(first_seen) AS ts_first, max(last_seen) AS ts_last,
            list(struct_pack(device := device, ips := ips[1:50], addresses := len(ips), names := names[1:20],
                 logs := logs, first_seen := first_seen, last_seen := last_seen, rows := rows,
                 vpn_client := vpn_client) ORDER BY device)[1:500] AS device_list
        FROM d GROUP BY 1
    )
    SELECT coalesce(g.zone, '(no zone)') AS entity,
        g.devices || CASE WHEN g.devices = 1 THEN ' device' ELSE ' devices' END || ' not in the asset inventory '
            || CASE WHEN g.zone IS NULL THEN '(no zone)' ELSE 'in zone ' || g.zone END AS title,
        g.ts_first, g.ts_last, g.rows AS count, coalesce(ev.evidence, []) AS evidence,
        CASE WHEN g.ot THEN ? END AS severity,
        struct_pack(zone := g.zone, zone_level := g.zone_level, ot_zone := g.ot, devices := g.devices,
            vpn_clients := g.vpn_clients, device_list := g.device_list, evidence_per_device := ?) AS details
    FROM g LEFT JOIN ev USING (grp)
    ORDER BY g.ot DESC, entity
    """
    return query_findings(ctx, a, sql, [p["ot_severity"], p["evidence_per_device"]])


def zone_mismatch(ctx: Context, a: Analytic) -> list[Finding]:
    _ensure(ctx)
    p = ctx.params(a.name)
    targets = """SELECT m.asset_id AS grp, m.ip AS sub, CASE WHEN m.name IS NULL THEN 'ip' ELSE 'pair' END AS col,
            CASE WHEN m.name IS NULL THEN o.v ELSE m.ip END AS v, m.name AS pair
        FROM gh_assets_mismatch m LEFT JOIN gh_assets_obs o ON m.name IS NULL AND o.kind = 'ip' AND o.key = m.ip"""
    sql = f"""
    WITH e AS ({_evidence_sql(targets, p["evidence_per_address"])}),
    ev AS (SELECT grp, list(ev ORDER BY rn, sub, ts)[1:{MAX_EVIDENCE_ROWS}] AS evidence FROM e GROUP BY grp),
    g AS (
        SELECT asset_id AS grp, any_value(hostname) AS hostname, any_value(inventory_zone) AS inventory_zone,
            any_value(role) AS role, bool_or(inventory_ot OR seen_ot) AS ot, sum(n)::BIGINT AS rows,
            min(first_seen) AS ts_first, max(last_seen) AS ts_last,
            list(DISTINCT seen_zone ORDER BY seen_zone) AS seen_zones,
            list(struct_pack(ip := ip, zone := seen_zone, placed_by := zone_how, how := how, workstation := name,
                 rows := n, first_seen := first_seen, last_seen := last_seen) ORDER BY ip, how) AS addresses
        FROM gh_assets_mismatch GROUP BY asset_id
    )
    SELECT coalesce(g.hostname, g.grp) || ' (' || g.grp || ')' AS entity,
        coalesce(g.hostname, g.grp) || ' (inventory zone ' || g.inventory_zone || ') seen in zone '
            || array_to_string(g.seen_zones, ', ') AS title,
        g.ts_first, g.ts_last, g.rows AS count, coalesce(ev.evidence, []) AS evidence,
        CASE WHEN g.ot THEN ? END AS severity,
        struct_pack(asset_id := g.grp, hostname := g.hostname, role := g.role, inventory_zone := g.inventory_zone,
            seen_zones := g.seen_zones, addresses := g.addresses) AS details
    FROM g LEFT JOIN ev USING (grp)
    ORDER BY g.ts_first, entity
    """
    return query_findings(ctx, a, sql, [p["ot_severity"]])


_INV_EVIDENCE = """struct_pack(source_file := c.source_file, source_ref := c.source_ref, ts := NULL::TIMESTAMPTZ,
    fields := struct_pack(asset_id := c.asset_id, hostname := c.hostname, zone := c.zone, role := c.role,
        criticality := c.criticality, vendor := c.vendor, ips := array_to_string(c.ips, ', '){extra}))"""


def stale(ctx: Context, a: Analytic) -> list[Finding]:
    _ensure(ctx)
    observed = ctx.case.con.execute("SELECT count(*) FROM gh_assets_obs").fetchall()[0][0]
    if not observed:
        ctx.notes.append(f"{a.name}: no host in any evidence table; every inventory item would be stale: not run")
        return []
    ev = _INV_EVIDENCE.format(extra="")
    sql = f"""
    WITH c AS (SELECT * FROM gh_assets_cov WHERE rows = 0 AND NOT stale_ignored),
    z AS (SELECT coalesce(zone, '(no zone)') AS zone, count(*) FILTER (WHERE rows = 0 AND NOT stale_ignored) AS stale,
              count(*) AS assets FROM gh_assets_cov GROUP BY 1)
    SELECT 'inventory' AS entity,
        count(*) || ' inventory ' || CASE WHEN count(*) = 1 THEN 'item' ELSE 'items' END
            || ' never seen in the evidence' AS title,
        NULL::TIMESTAMPTZ AS ts_first, NULL::TIMESTAMPTZ AS ts_last, count(*) AS count,
        list({ev} ORDER BY c.asset_id)[1:{MAX_EVIDENCE_ROWS}] AS evidence,
        struct_pack(stale := count(*), assets := (SELECT count(*) FROM gh_assets_cov),
            by_zone := (SELECT list(struct_pack(zone := zone, stale := stale, assets := assets) ORDER BY zone) FROM z),
            items := list(struct_pack(asset_id := c.asset_id, hostname := c.hostname, zone := c.zone, role := c.role,
                ips := c.ips, unanswered_connections := c.unanswered) ORDER BY c.asset_id)[1:{MAX_EVIDENCE_ROWS}])
            AS details
    FROM c HAVING count(*) > 0
    """
    return query_findings(ctx, a, sql)


def coverage_gap(ctx: Context, a: Analytic) -> list[Finding]:
    _ensure(ctx)
    p = ctx.params(a.name)
    ev = _INV_EVIDENCE.format(extra=", missing := array_to_string(c.gaps, ', '), why := array_to_string(c.why, ', ')")
    sql = f"""
    WITH c AS (SELECT * FROM gh_assets_cov WHERE len(why) > 0 AND len(gaps) > 0 AND NOT ignored),
    g AS (
        SELECT coalesce(zone, '') AS grp, any_value(zone) AS zone, bool_or(ot) AS ot, count(*) AS n,
            min(first_seen) AS ts_first, max(last_seen) AS ts_last,
            list({ev} ORDER BY c.asset_id)[1:{MAX_EVIDENCE_ROWS}] AS evidence,
            list(struct_pack(asset_id := asset_id, hostname := hostname, role := role, criticality := criticality,
                 vendors := vendors, why := why, missing := gaps, seen_in := logs) ORDER BY asset_id) AS assets,
            list_sort(list_distinct(flatten(list(gaps)))) AS missing
        FROM c GROUP BY 1
    ), m AS (
        SELECT coalesce(zone, '') AS grp, s, count(*) AS n FROM (SELECT zone, unnest(gaps) AS s FROM c) GROUP BY ALL
    ), mm AS (SELECT grp, map(list(s ORDER BY s), list(n ORDER BY s)) AS missing_by_source FROM m GROUP BY grp)
    SELECT coalesce(g.zone, '(no zone)') AS entity,
        g.n || CASE WHEN g.n = 1 THEN ' asset' ELSE ' assets' END
            || CASE WHEN g.zone IS NULL THEN ' (no zone)' ELSE ' in zone ' || g.zone END
            || ' without ' || array_to_string(g.missing, ' / ') AS title,
        g.ts_first, g.ts_last, g.n AS count, g.evidence,
        CASE WHEN g.ot THEN ? END AS severity,
        struct_pack(zone := g.zone, ot_zone := g.ot, assets_with_gaps := g.n, missing_by_source := mm.missing_by_source,
            assets := g.assets, required := ?::VARCHAR[]) AS details
    FROM g JOIN mm USING (grp)
    ORDER BY g.ot DESC, entity
    """
    return query_findings(ctx, a, sql, [p["ot_severity"], list(p["required"])])


ANALYTICS: tuple[Analytic, ...] = (
    Analytic(
        "assets.unknown_device",
        "Devices not in the asset inventory",
        "low",
        ("T1200",),
        ("assets",),
        unknown_device,
        "Internal addresses and host names in the evidence that match no inventory entry, one finding per zone "
        "(OT zones: ot_severity). VPN tunnel addresses are flagged as VPN clients.",
    ),
    Analytic(
        "assets.zone_mismatch",
        "Inventory asset seen in a zone other than its inventory zone",
        "medium",
        (),
        ("assets", "zones"),
        zone_mismatch,
        "An inventory asset at an address the zone policy places in another zone than the inventory gives it: "
        "one of its own addresses, or an unlisted address it logged on from (auth workstation + address).",
    ),
    Analytic(
        "assets.stale",
        "Inventory items never seen in the evidence",
        "informational",
        (),
        ("assets",),
        stale,
        "Inventory assets whose addresses and names appear in no evidence table; lists them per zone.",
    ),
    Analytic(
        "assets.coverage_gap",
        "Critical, OT or vendor-managed assets with a blind spot in the evidence",
        "low",
        (),
        ("assets",),
        coverage_gap,
        "Assets that are critical, in an OT zone or vendor-managed but have no rows from a required evidence source "
        "(Security log, Sysmon / EDR, flows by default; Windows sources not expected of non-Windows roles), one "
        "finding per zone.",
    ),
)


# ---- report (gridhunt assets) -------------------------------------------------------------------


def _rows(con: Any, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def asset_report(case: Any, settings: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything `gridhunt assets` shows: per asset its zone, vendor, first / last seen and rows per
    evidence source (SOURCES), why it is judged and what it lacks; unknown devices per zone; zone
    mismatches; stale items; and counts."""
    from gridhunt.detect.settings import load_settings

    settings = settings if settings is not None else load_settings()
    notes = build(case, settings)
    con = case.con
    assets = []
    for r in _rows(con, "SELECT * FROM gh_assets_cov ORDER BY asset_id"):
        assets.append(
            {
                "asset_id": r["asset_id"],
                "hostname": r["hostname"],
                "zone": r["zone"],
                "role": r["role"],
                "owner": r["owner"],
                "criticality": r["criticality"],
                "ips": r["ips"],
                "vendor": ", ".join(r["vendors"]) or None,
                "vendor_managed": bool(r["vendors"]),
                "vendor_via": r["vendor_via"],
                "ot_zone": bool(r["ot"]),
                "first_seen": r["first_seen"],
                "last_seen": r["last_seen"],
                "rows": r["rows"],
                "unanswered_connections": r["unanswered"],
                "seen_in": r["logs"],
                "coverage": {s: r[s] for s in SOURCES},
                "windows": bool(r["windows"]),
                "judged": bool(r["why"]) and not r["ignored"],
                "why": r["why"],
                "gaps": r["gaps"],
                "stale": r["rows"] == 0 and not r["stale_ignored"],
            }
        )
    unknown = _rows(
        con,
        """SELECT zone, device, ips, names, logs, first_seen, last_seen, rows, vpn_client, ot
        FROM gh_assets_devices ORDER BY ot DESC, zone NULLS LAST, device""",
    )
    mismatch = _rows(
        con,
        """SELECT asset_id, hostname, inventory_zone, ip, seen_zone, zone_how AS placed_by, how, name AS workstation,
            n AS rows, first_seen, last_seen FROM gh_assets_mismatch ORDER BY asset_id, ip, how""",
    )
    by_zone: dict[str, int] = {}
    for d in unknown:
        z = d["zone"] or "(no zone)"
        by_zone[z] = by_zone.get(z, 0) + 1
    summary = {
        "assets": len(assets),
        "seen": sum(1 for a in assets if a["rows"]),
        "stale": sum(1 for a in assets if a["stale"]),
        "judged": sum(1 for a in assets if a["judged"]),
        "judged_with_gaps": sum(1 for a in assets if a["judged"] and a["gaps"]),
        "with_gaps": sum(1 for a in assets if a["gaps"]),
        "vendor_managed": sum(1 for a in assets if a["vendor_managed"]),
        "unknown_devices": len(unknown),
        "unknown_by_zone": by_zone,
        "zone_mismatches": len({m["asset_id"] for m in mismatch}),
        "required": list(settings["assets.coverage_gap"]["required"]),
    }
    stale_items = [
        {k: a[k] for k in ("asset_id", "hostname", "zone", "role", "ips", "criticality", "unanswered_connections")}
        for a in assets
        if a["stale"]
    ]
    return {
        "summary": summary,
        "assets": assets,
        "unknown": unknown,
        "zone_mismatch": mismatch,
        "stale": stale_items,
        "notes": notes,
    }


def write_csv(assets: list[dict[str, Any]], path: Path) -> None:
    """One row per asset: inventory fields, first / last seen, rows per evidence source, gaps."""
    cols = ["asset_id", "hostname", "zone", "role", "criticality", "vendor", "ips", "first_seen", "last_seen",
            *SOURCES, "judged", "why", "gaps"]  # fmt: skip
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for a in assets:
            row = {**a, **a["coverage"]}
            w.writerow(
                [" ".join(row[c]) if isinstance(row[c], list) else ("" if row[c] is None else row[c]) for c in cols]
            )
