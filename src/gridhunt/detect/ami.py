"""AMI head-end / DMS / MDM analytics over `ami_audit`, judged against the change calendar.

`prepare` builds one table, `gh_ami`: every audit record with
- `account` (lower-cased user), `job`, `ticket` (params.ticket, else params.change), `token_id`;
- `vendor`: the vendor whose register lists the account or the API token the record used
  (vpn_account / service_account / api_token identifiers), and `creator_vendor`: the vendor whose
  account created this account on the AMI (a vendor-made account acts for the vendor);
- `approved_by` / `ticket_status`: a record is approved when its ticket is in the change calendar
  with a window covering it, or a calendar window for its system covers it ('ami' / 'ami-*' windows
  cover the head-end and MDM; '*', 'all' or an empty system cover everything).

Approved records never fire. Severity climbs one step for each aggravating fact the analytic
weighs: off-hours (`work_hours` of each analytic), a vendor or vendor-made account, no ticket at all.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pyarrow as pa

from gridhunt.detect.base import Analytic, Context, query_findings
from gridhunt.geo import is_internal, parse_ip
from gridhunt.report.findings import Finding
from gridhunt.sql import sql_literal, temp_table

LEVELS = ("informational", "low", "medium", "high", "critical")
CONTROL_ACTIONS = ("EndDeviceControl:disconnect", "EndDeviceControl:connect", "EndDeviceControl:load_limit")
SESSION_ACTIONS = ("login", "logout", "login_failed")

TABLE = """
CREATE OR REPLACE TEMP TABLE gh_ami AS
WITH vend AS (
    SELECT lower(identifier) AS ident, min(vendor) AS vendor FROM vendor_access
    WHERE kind IN ('vpn_account', 'service_account', 'api_token') GROUP BY 1
), a AS (
    SELECT row_number() OVER () AS rid, x.ts, x.system, x."user", lower(x."user") AS account, x.src_ip,
        x.action, x.target_type, x.target_id, x.target_count, x.params, x.result, x.source_file, x.source_ref,
        json_extract_string(x.params, '$.job') AS job,
        coalesce(nullif(trim(json_extract_string(x.params, '$.ticket')), ''),
                 nullif(trim(json_extract_string(x.params, '$.change')), '')) AS ticket,
        json_extract_string(x.params, '$.token_id') AS token_id
    -- the reader stores valid JSON only; a row written by other means must not stop the theme
    FROM (SELECT * REPLACE (CASE WHEN json_valid(params) THEN params END AS params) FROM ami_audit) x
), creators AS (
    SELECT lower(target_id) AS account, arg_min(account, ts) AS created_by FROM a
    WHERE action = 'create_user' AND result = 'ok' AND target_id IS NOT NULL GROUP BY 1
), appr AS (
    -- the record's own ticket when the calendar has it for this time, else any window for its system
    SELECT a.rid, coalesce(min(w.ticket) FILTER (WHERE lower(w.ticket) = lower(a.ticket)), min(w.ticket)) AS ticket
    FROM a JOIN change_windows w ON a.ts BETWEEN w.window_start AND w.window_end
        AND (lower(w.ticket) = lower(a.ticket)
             OR w.system IS NULL OR lower(w.system) IN ('', '*', 'all', 'any')
             OR contains(lower(w.system), a.system)
             OR a.system IN ('headend', 'mdm') AND regexp_matches(lower(w.system), '^ami([^a-z0-9]|$)'))
    GROUP BY a.rid
), known AS (
    SELECT DISTINCT lower(ticket) AS t FROM change_windows
)
SELECT a.*, coalesce(v.vendor, vt.vendor) AS vendor, c.created_by, cv.vendor AS creator_vendor,
    appr.ticket AS approved_by,
    CASE WHEN appr.ticket IS NOT NULL THEN 'approved'
         WHEN a.ticket IS NULL THEN 'no ticket'
         WHEN known.t IS NULL THEN 'ticket not in the change calendar'
         ELSE 'ticket outside its change window' END AS ticket_status
FROM a
LEFT JOIN vend v ON v.ident = a.account
LEFT JOIN vend vt ON vt.ident = lower(a.token_id)
LEFT JOIN creators c ON c.account = a.account
LEFT JOIN vend cv ON cv.ident = c.created_by
LEFT JOIN appr ON appr.rid = a.rid
LEFT JOIN known ON known.t = lower(a.ticket)
ORDER BY a.rid
"""

EV_FIELDS = ("user", "system", "src_ip", "action", "target_type", "target_id", "target_count", "result", "ticket")


def _ev(alias: str = "") -> str:
    """The evidence struct of one gh_ami row (of table alias `alias`)."""
    p = f"{alias}." if alias else ""
    fields = ", ".join(f'"{f}" := {p}"{f}"' for f in EV_FIELDS)
    return (
        f"struct_pack(source_file := {p}source_file, source_ref := {p}source_ref, ts := {p}ts, "
        f"fields := struct_pack({fields}))"
    )


EV = _ev()
ORDER = "ts, source_file, source_ref"
VENDORISH = "(vendor IS NOT NULL OR creator_vendor IS NOT NULL)"
UNAPPROVED = "ticket_status <> 'approved'"


def prepare(ctx: Context) -> None:
    con = ctx.case.con
    con.execute(TABLE)
    # public or not, per source address (few distinct ones): Python's ipaddress, as gridhunt.geo decides it;
    # a host name or other non-address in src_ip is neither (NULL)
    ips = [
        r[0] for r in con.execute("SELECT DISTINCT src_ip FROM gh_ami WHERE src_ip IS NOT NULL ORDER BY 1").fetchall()
    ]
    public = [None if (addr := parse_ip(ip)) is None else not is_internal(addr) for ip in ips]
    temp_table(con, "gh_ami_ips", pa.table({"ip": pa.array(ips, pa.string()), "public": pa.array(public, pa.bool_())}))
    if ctx.table_rows("ami_audit") and not ctx.table_rows("change_windows"):
        ctx.notes.append("ami: no change calendar (change_windows is empty): every change counts as unapproved")


# ---- SQL helpers ---------------------------------------------------------------------------------


def _severity(base: str, *factors: str) -> str:
    """SQL: `base` raised one level per true factor, at most critical."""
    steps = " + ".join(f"coalesce(({f}), false)::INT" for f in factors) or "0"
    levels = ", ".join(sql_literal(level) for level in LEVELS)
    return f"[{levels}][least({len(LEVELS)}, {LEVELS.index(base) + 1} + {steps})]"


def _glob_any(expr: str, patterns: list[Any]) -> str:
    """SQL: `expr` matches one of the case-insensitive glob `patterns`."""
    terms = [f"lower({expr}) GLOB {sql_literal(str(p).lower())}" for p in patterns]
    return "(" + " OR ".join(terms) + ")" if terms else "false"


def _off_hours(ctx: Context, p: dict[str, Any], name: str, col: str = "ts") -> str:
    """SQL: `col` falls outside the analytic's work_hours {timezone, days, hours: [from, to)}."""
    wh = p.get("work_hours")
    if not isinstance(wh, dict):
        raise ValueError(f"{name}.work_hours: expected {{timezone, days, hours}}, got {wh!r}")
    tz = str(wh.get("timezone", "UTC"))
    days, hours = wh.get("days", []), wh.get("hours", [])
    if not (isinstance(days, list) and all(isinstance(d, int) and 1 <= d <= 7 for d in days)):
        raise ValueError(f"{name}.work_hours.days: expected ISO weekday numbers 1 (Monday) .. 7, got {days!r}")
    if not (isinstance(hours, list) and len(hours) == 2 and all(isinstance(h, int) and 0 <= h <= 24 for h in hours)):
        raise ValueError(f"{name}.work_hours.hours: expected [from, to) hours 0 .. 24, got {hours!r}")
    if hours[0] >= hours[1]:  # [22, 6] would leave no working hour at all: every record off-hours
        raise ValueError(f"{name}.work_hours.hours: from must be before to (no shift across midnight), got {hours!r}")
    try:
        ctx.case.con.execute(f"SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00' AT TIME ZONE {sql_literal(tz)}").fetchall()
    except Exception:  # noqa: BLE001 - DuckDB's error names the function, ours names the setting
        raise ValueError(f"{name}.work_hours.timezone: unknown time zone {tz!r}") from None
    local = f"({col} AT TIME ZONE {sql_literal(tz)})"
    day_list = ", ".join(str(d) for d in days) or "0"
    return f"NOT (isodow({local}) IN ({day_list}) AND hour({local}) >= {hours[0]} AND hour({local}) < {hours[1]})"


def _control_job(p: dict[str, Any]) -> str:
    job = _glob_any("coalesce(job, '')", p["control_jobs"])
    return f"(action = 'bulk_job' AND {job})"


def _controls(p: dict[str, Any]) -> str:
    """SQL: gh_ami rows that command meters (EndDeviceControl other than ping, control bulk jobs), with
    n_cmd / n_job: meters each commands. A bulk job and the per-meter commands it fans out into are
    counted apart (the larger wins below), so one job is never counted twice."""
    acts = ", ".join(sql_literal(a) for a in CONTROL_ACTIONS)
    return f"""SELECT *,
            CASE WHEN action = 'bulk_job' THEN 0 ELSE greatest(coalesce(target_count, 1), 1) END AS n_cmd,
            CASE WHEN action = 'bulk_job' THEN coalesce(target_count, 0) ELSE 0 END AS n_job
        FROM gh_ami WHERE action IN ({acts}) OR {_control_job(p)}"""


def _rates(p: dict[str, Any], window_minutes: int, where: str = "true") -> str:
    """SQL: the `_controls` rows matching `where`, with cmd_w / job_w: meters the account commanded in
    the window_minutes up to each row (per-meter commands and bulk jobs apart, as in _controls)."""
    return f"""SELECT *, sum(n_cmd) OVER w AS cmd_w, sum(n_job) OVER w AS job_w
        FROM ({_controls(p)}) WHERE {where}
        WINDOW w AS (PARTITION BY account ORDER BY ts RANGE BETWEEN to_minutes({int(window_minutes)}::BIGINT) PRECEDING
                     AND CURRENT ROW)"""


def _bursts(source: str, gap_minutes: int) -> str:
    """SQL: rows of `source` numbered into bursts per account (no pause longer than gap_minutes)."""
    return f"""SELECT *, sum(brk) OVER (PARTITION BY account ORDER BY {ORDER} ROWS UNBOUNDED PRECEDING) AS burst
        FROM (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY account ORDER BY {ORDER})
                             > to_minutes({int(gap_minutes)}::BIGINT) THEN 1 ELSE 0 END AS brk
              FROM ({source}))"""


# ---- accounts ------------------------------------------------------------------------------------


def new_account(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    off = _off_hours(ctx, p, a.name)
    sev = _severity(a.severity, "off", VENDORISH, "ticket IS NULL")
    sql = f"""
    WITH x AS (SELECT *, {off} AS off FROM gh_ami WHERE action = 'create_user' AND {UNAPPROVED})
    SELECT coalesce(x.target_id, '?') || ' created by ' || coalesce(x.account, '?') AS entity,
        x.ts AS ts_first, x.ts AS ts_last, 1 AS count, [{EV}] AS evidence, {sev} AS severity,
        struct_pack(new_account := x.target_id, created_by := x."user", system := x.system, src_ip := x.src_ip,
            result := x.result, vendor := coalesce(x.vendor, x.creator_vendor), off_hours := x.off,
            ticket := x.ticket, ticket_status := x.ticket_status,
            actions_by_new_account := (SELECT count(*) FROM gh_ami y
                                       WHERE y.account = lower(x.target_id) AND y.ts >= x.ts),
            roles_granted := (SELECT list(DISTINCT y.role ORDER BY y.role)
                              FROM (SELECT *, json_extract_string(params, '$.role') AS role FROM gh_ami) y
                              WHERE y.action = 'grant_role'
                                  AND lower(y.target_id) = lower(x.target_id) AND y.ts >= x.ts)) AS details
    FROM x ORDER BY x.ts, x.source_file, x.source_ref
    """
    return query_findings(ctx, a, sql)


def role_grant(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    off = _off_hours(ctx, p, a.name)
    role = "coalesce(json_extract_string(params, '$.role'), json_extract_string(params, '$.group'), '?')"
    privileged = _glob_any("role", p["privileged_roles"])
    sev = _severity(a.severity, "off", VENDORISH, "ticket IS NULL", "privileged")
    sql = f"""
    WITH x AS (
        SELECT *, {off} AS off, {privileged} AS privileged
        FROM (SELECT *, {role} AS role FROM gh_ami WHERE action = 'grant_role' AND {UNAPPROVED})
    )
    SELECT coalesce(target_id, '?') || ' +' || role AS entity, ts AS ts_first, ts AS ts_last, 1 AS count,
        [{EV}] AS evidence, {sev} AS severity,
        struct_pack(account := target_id, role := role, privileged := privileged, granted_by := "user",
            system := system, src_ip := src_ip, result := result, vendor := coalesce(vendor, creator_vendor),
            off_hours := off, ticket := ticket, ticket_status := ticket_status,
            account_created_by := (SELECT min(y.account) FROM gh_ami y WHERE y.action = 'create_user'
                                   AND lower(y.target_id) = lower(x.target_id))) AS details
    FROM x ORDER BY ts, source_file, source_ref
    """
    return query_findings(ctx, a, sql)


# ---- logins --------------------------------------------------------------------------------------


def _networks(ctx: Context, cidrs: list[Any], zones: list[Any]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """`cidrs` if any, else the CIDRs of the named zones in the zones table, plus the addresses of
    inventory assets placed in those zones (zones may be drawn by asset rather than by CIDR)."""
    if cidrs:
        return [ipaddress.ip_network(str(c), strict=False) for c in cidrs]
    if not zones:
        return []
    names = [str(z).lower() for z in zones]
    rows = ctx.case.con.execute(
        """SELECT unnest(cidrs) FROM zones WHERE list_contains(?::VARCHAR[], lower(name))
        UNION SELECT unnest(ips) FROM assets WHERE list_contains(?::VARCHAR[], lower(zone))""",
        [names, names],
    ).fetchall()
    nets = {ipaddress.ip_network(r[0], strict=False) for r in rows if r[0]}
    # drop host addresses a zone CIDR already holds, so details name the networks, not every asset
    wide = [n for n in nets if n.num_addresses > 1]
    nets = {n for n in nets if n.num_addresses > 1 or not any(n.version == w.version and n.subnet_of(w) for w in wide)}
    return sorted(nets, key=lambda n: (n.version, n))


def login_outside_admin_network(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    try:
        admin = _networks(ctx, p["admin_cidrs"], p["admin_zones"])
        vendor_nets = _networks(ctx, [], p["vendor_zones"])
    except ValueError as exc:
        raise ValueError(f"{a.name}.admin_cidrs: {exc}") from None
    if not admin:
        ctx.notes.append(
            f"{a.name}: no admin network (admin_cidrs is empty and the zones table has none of "
            f"{', '.join(map(str, p['admin_zones'])) or 'the admin_zones'}): not run"
        )
        return []
    ips, is_admin, is_vendor_zone = [], [], []
    for (ip,) in ctx.case.con.execute(
        "SELECT DISTINCT src_ip FROM gh_ami WHERE action = 'login' AND src_ip IS NOT NULL ORDER BY 1"
    ).fetchall():
        addr = parse_ip(ip)  # a host name is in no network: judged as outside the admin ones
        ips.append(ip)
        is_admin.append(addr is not None and any(addr.version == n.version and addr in n for n in admin))
        is_vendor_zone.append(addr is not None and any(addr.version == n.version and addr in n for n in vendor_nets))
    src = pa.table(
        {
            "ip": pa.array(ips, pa.string()),
            "admin": pa.array(is_admin, pa.bool_()),
            "vendor_zone": pa.array(is_vendor_zone, pa.bool_()),
        }
    )
    ctx.case.con.register("gh_ami_src", src)
    try:
        off = _off_hours(ctx, p, a.name)
        sev = _severity(a.severity, "bool_or(off)", f"bool_or({VENDORISH})", "any_value(public)")
        nets = ", ".join(str(n) for n in admin[:20])
        sql = f"""
        WITH x AS (
            SELECT g.*, i.public, s.vendor_zone, {off} AS off
            FROM gh_ami g JOIN gh_ami_src s ON s.ip = g.src_ip JOIN gh_ami_ips i ON i.ip = g.src_ip
            WHERE g.action = 'login' AND g.result = 'ok' AND NOT s.admin
                -- the vendor's own accounts on their jump path are judged by vendor_login_outside_change_window
                AND NOT (s.vendor_zone AND g.vendor IS NOT NULL)
        )
        SELECT account || ' from ' || src_ip AS entity, min(ts) AS ts_first, max(ts) AS ts_last, count(*) AS count,
            list({EV} ORDER BY {ORDER}) AS evidence, {sev} AS severity,
            struct_pack(account := account, src_ip := src_ip, public := any_value(public),
                vendor_zone := any_value(vendor_zone), systems := list(DISTINCT system ORDER BY system),
                vendor := any_value(coalesce(vendor, creator_vendor)), created_by := any_value(created_by),
                off_hours_logins := count(*) FILTER (WHERE off), admin_networks := {sql_literal(nets)},
                logins_from_admin_networks := (SELECT count(*) FROM gh_ami y JOIN gh_ami_src t ON t.ip = y.src_ip
                    WHERE y.account = x.account AND y.action = 'login' AND t.admin)) AS details
        FROM x GROUP BY account, src_ip ORDER BY ts_first, account, src_ip
        """
        return query_findings(ctx, a, sql)
    finally:
        ctx.case.con.unregister("gh_ami_src")


def vendor_login_outside_change_window(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    off = _off_hours(ctx, p, a.name)
    day = "strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d')"
    sql = f"""
    WITH x AS (
        SELECT *, {off} AS off, {day} AS day FROM gh_ami
        WHERE action = 'login' AND result = 'ok' AND vendor IS NOT NULL AND {UNAPPROVED}
    )
    SELECT account || ' ' || day AS entity, min(ts) AS ts_first, max(ts) AS ts_last, count(*) AS count,
        list({EV} ORDER BY {ORDER}) AS evidence,
        CASE WHEN bool_or(off) THEN ? END AS severity,
        struct_pack(account := account, vendor := any_value(vendor), off_hours := bool_or(off),
            src_ips := list(DISTINCT src_ip ORDER BY src_ip), systems := list(DISTINCT system ORDER BY system),
            ticket_status := list(DISTINCT ticket_status ORDER BY ticket_status),
            actions_that_day := (SELECT list(DISTINCT y.action ORDER BY y.action) FROM gh_ami y
                WHERE y.account = x.account AND strftime(y.ts AT TIME ZONE 'UTC', '%Y-%m-%d') = x.day
                    AND y.action NOT IN ('login', 'logout')),
            allow_work_hours := ?) AS details
    FROM x WHERE NOT ? OR off
    GROUP BY account, day ORDER BY ts_first, account
    """
    return query_findings(ctx, a, sql, [p["off_hours_severity"], p["allow_work_hours"], p["allow_work_hours"]])


# ---- changes -------------------------------------------------------------------------------------


def config_change(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    off = _off_hours(ctx, p, a.name)
    sensitive = _glob_any("coalesce(target_id, '')", p["sensitive_keys"])
    ignore = [str(t).lower() for t in p["ignore_target_types"]]
    rows = f"""SELECT *, {off} AS off, {sensitive} AS sensitive FROM gh_ami
        WHERE action = 'config_change' AND {UNAPPROVED}
            AND NOT list_contains(?::VARCHAR[], lower(coalesce(target_type, '')))"""
    sev = _severity(
        a.severity, "bool_or(off)", f"bool_or({VENDORISH})", "bool_and(ticket IS NULL)", "bool_or(sensitive)"
    )
    change = """struct_pack(key := target_id, target_type := target_type,
        old := json_extract_string(params, '$.old'), new := json_extract_string(params, '$.new'))"""
    sql = f"""
    WITH b AS ({_bursts(rows, p["gap_minutes"])})
    SELECT account || ' on ' || system || ' ' || strftime(min(ts) AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M') AS entity,
        min(ts) AS ts_first, max(ts) AS ts_last, count(*) AS count,
        list({EV} ORDER BY {ORDER}) AS evidence, {sev} AS severity,
        struct_pack(account := account, system := system, changes := list({change} ORDER BY {ORDER})[1:50],
            sensitive_keys := list(DISTINCT target_id ORDER BY target_id) FILTER (WHERE sensitive),
            src_ips := list(DISTINCT src_ip ORDER BY src_ip), vendor := any_value(coalesce(vendor, creator_vendor)),
            off_hours := bool_or(off),
            tickets := list(DISTINCT ticket ORDER BY ticket) FILTER (WHERE ticket IS NOT NULL),
            ticket_status := list(DISTINCT ticket_status ORDER BY ticket_status), gap_minutes := ?) AS details
    FROM b GROUP BY account, system, burst ORDER BY ts_first, account, system
    """
    return query_findings(ctx, a, sql, [ignore, p["gap_minutes"]])


def firmware_push(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    off = _off_hours(ctx, p, a.name)
    sev = _severity(a.severity, "off", VENDORISH, "ticket IS NULL")
    sql = f"""
    WITH x AS (SELECT *, {off} AS off FROM gh_ami WHERE action = 'firmware_push' AND {UNAPPROVED})
    SELECT coalesce(account, '?') || ' -> ' || coalesce(target_type, '?') || ' ' || coalesce(target_id, '?') AS entity,
        ts AS ts_first, ts AS ts_last, 1 AS count, [{EV}] AS evidence, {sev} AS severity,
        struct_pack(account := account, system := system, target_type := target_type, target_id := target_id,
            devices := target_count, src_ip := src_ip, result := result, vendor := coalesce(vendor, creator_vendor),
            off_hours := off, ticket := ticket, ticket_status := ticket_status,
            image := coalesce(json_extract_string(params, '$.version'), json_extract_string(params, '$.image'),
                              json_extract_string(params, '$.file')),
            channel := json_extract_string(params, '$.channel')) AS details
    FROM x ORDER BY ts, source_file, source_ref
    """
    return query_findings(ctx, a, sql)


# ---- meter commands ------------------------------------------------------------------------------


def _fleet(ctx: Context, p: dict[str, Any]) -> tuple[int | None, str]:
    """Meters in the fleet: the setting, else the largest fleet-wide read, else the assets' meters."""
    if p["fleet_size"]:
        return int(p["fleet_size"]), "setting fleet_size"
    reads = f"""SELECT max(target_count) FROM gh_ami WHERE action = 'bulk_job' AND target_type = 'meter'
        AND upper(coalesce(target_id, '')) IN ('ALL', '*') AND NOT {_control_job(p)}"""
    n = ctx.case.con.execute(reads).fetchall()[0][0]
    if n:
        return int(n), "largest fleet-wide bulk read"
    sql = "SELECT count(*) FROM assets WHERE regexp_matches(lower(coalesce(role, '')), '(^|_)meter$')"
    n = ctx.case.con.execute(sql).fetchall()[0][0]
    if n:
        return int(n), "meters in the asset inventory"
    return None, "unknown"


def bulk_control(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    off = _off_hours(ctx, p, a.name)
    fleet, fleet_from = _fleet(ctx, p)
    win = int(p["window_minutes"])
    rate = _rates(p, win)
    # unapproved by construction, so a missing ticket does not raise it further
    sev = _severity(a.severity, "off_hours", "vendorish")
    sql = f"""
    WITH b AS ({_bursts(rate, win)}),
    g AS (
        SELECT account, burst, min(ts) AS ts_first, max(ts) AS ts_last, count(*) AS n,
            max(greatest(cmd_w, job_w)) AS peak, greatest(sum(n_cmd), sum(n_job)) AS meters,
            bool_and(ticket_status = 'approved') AS approved, bool_or({off}) AS off_hours,
            bool_or({VENDORISH}) AS vendorish,
            any_value(coalesce(vendor, creator_vendor)) AS vendor,
            histogram(action) AS actions, histogram(result) AS results,
            list(DISTINCT src_ip ORDER BY src_ip) AS src_ips, list(DISTINCT job ORDER BY job) AS jobs,
            list(DISTINCT ticket_status ORDER BY ticket_status) AS ticket_status
        FROM b GROUP BY account, burst
    ), h AS (
        SELECT *, coalesce(max(peak) OVER prior, 0) AS base_peak, coalesce(max(meters) OVER prior, 0) AS base_meters,
            count(*) OVER prior AS bursts_before
        FROM g WINDOW prior AS (PARTITION BY account ORDER BY ts_first ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    ), r AS (
        SELECT *, meters / ?::DOUBLE AS share,
            list_concat(
                CASE WHEN bursts_before > 0 AND peak >= ? AND peak > ? * base_peak
                     THEN ['rate above the account''s baseline'] END,
                CASE WHEN peak >= ? THEN ['rate above the absolute threshold'] END,
                CASE WHEN meters / ?::DOUBLE >= ? THEN ['share of fleet above the absolute threshold'] END,
                CASE WHEN bursts_before > 0 AND meters / ?::DOUBLE >= ? AND meters > ? * base_meters
                     THEN ['share of fleet above the account''s baseline'] END) AS reasons
        FROM h WHERE NOT approved
    ), fired AS (
        SELECT * FROM r WHERE len(reasons) > 0
    ), ev AS (
        -- evidence lists only for the bursts that fire: a busy head-end has millions of routine commands
        SELECT account, burst, list({EV} ORDER BY {ORDER}) AS evidence
        FROM b SEMI JOIN fired USING (account, burst) GROUP BY account, burst
    )
    SELECT account || ' ' || strftime(ts_first AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M') AS entity, ts_first, ts_last,
        n AS count, evidence, {sev} AS severity,
        struct_pack(account := account, reasons := reasons, meters := meters, peak_per_window := peak,
            window_minutes := {win}, fleet_size := ?, fleet_size_from := ?, share_of_fleet := round(share, 4),
            baseline_peak_per_window := base_peak, baseline_meters_per_burst := base_meters,
            bursts_before := bursts_before, actions := actions, results := results, jobs := jobs,
            src_ips := src_ips, vendor := vendor, off_hours := off_hours, ticket_status := ticket_status,
            min_per_window := ?, baseline_factor := ?, max_per_window := ?, min_fleet_share := ?,
            max_fleet_share := ?) AS details
    FROM fired JOIN ev USING (account, burst) ORDER BY ts_first, account
    """
    fl = fleet or None
    args = [
        fl,
        p["min_per_window"],
        p["baseline_factor"],
        p["max_per_window"],
        fl,
        p["max_fleet_share"],
        fl,
        p["min_fleet_share"],
        p["baseline_factor"],
        fleet,
        fleet_from,
        p["min_per_window"],
        p["baseline_factor"],
        p["max_per_window"],
        p["min_fleet_share"],
        p["max_fleet_share"],
    ]
    return query_findings(ctx, a, sql, args)


def command_outside_change_window(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    off = _off_hours(ctx, p, a.name)
    win = int(p["window_minutes"])
    # a batch is a rate, not a day's total: a busy operator's single work-order disconnects add up
    # to hundreds a day without ever being one
    rows = _rates(p, win, UNAPPROVED)
    sev = _severity(a.severity, f"bool_or({off})", f"bool_or({VENDORISH})", "bool_and(ticket IS NULL)")
    sql = f"""
    WITH b AS ({_bursts(rows, win)}),
    fired AS (
        -- only bursts holding a batch are aggregated (a busy head-end has millions of routine commands)
        SELECT account, burst FROM b GROUP BY account, burst HAVING max(greatest(cmd_w, job_w)) >= ?
    )
    SELECT account || ' ' || strftime(min(ts) AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M') AS entity,
        min(ts) AS ts_first, max(ts) AS ts_last, count(*) AS count,
        list({EV} ORDER BY {ORDER}) AS evidence, {sev} AS severity,
        struct_pack(account := account, meters := greatest(sum(n_cmd), sum(n_job)),
            peak_per_window := max(greatest(cmd_w, job_w)), actions := histogram(action),
            jobs := list(DISTINCT job ORDER BY job), systems := list(DISTINCT system ORDER BY system),
            src_ips := list(DISTINCT src_ip ORDER BY src_ip), vendor := any_value(coalesce(vendor, creator_vendor)),
            off_hours := bool_or({off}),
            tickets := list(DISTINCT ticket ORDER BY ticket) FILTER (WHERE ticket IS NOT NULL),
            ticket_status := list(DISTINCT ticket_status ORDER BY ticket_status),
            min_per_window := ?, window_minutes := {win}) AS details
    FROM b SEMI JOIN fired USING (account, burst) GROUP BY account, burst
    ORDER BY ts_first, account
    """
    return query_findings(ctx, a, sql, [p["min_per_window"], p["min_per_window"]])


def new_source_ip(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    off = _off_hours(ctx, p, a.name)
    sessions = ", ".join(sql_literal(s) for s in SESSION_ACTIONS)
    acts = ", ".join(
        sql_literal(s) for s in (*CONTROL_ACTIONS, "firmware_push", "config_change", "create_user", "grant_role")
    )
    sev = _severity(
        a.severity, f"bool_or({VENDORISH})", "bool_or(public)", f"bool_or({off})", f"bool_or(action IN ({acts}))"
    )
    sql = f"""
    WITH h AS (
        SELECT *, count(*) OVER w AS prior, min(ts) OVER w AS since FROM gh_ami
        WHERE account IS NOT NULL AND src_ip IS NOT NULL
        WINDOW w AS (PARTITION BY account ORDER BY {ORDER} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    ), firsts AS (
        -- the first record from each (account, address), and whether the account had history then
        SELECT account, src_ip, ts AS first_ts, prior, since FROM h
        QUALIFY row_number() OVER (PARTITION BY account, src_ip ORDER BY {ORDER}) = 1
    ), news AS (
        SELECT * FROM firsts WHERE prior >= ? AND first_ts - since >= to_days(?::BIGINT)
    ), x AS (
        SELECT g.*, n.first_ts, n.prior, i.public
        FROM gh_ami g JOIN news n USING (account, src_ip) JOIN gh_ami_ips i ON i.ip = g.src_ip
    )
    SELECT account || ' from ' || src_ip AS entity, min(ts) AS ts_first, max(ts) AS ts_last, count(*) AS count,
        list({EV} ORDER BY {ORDER}) AS evidence, {sev} AS severity,
        struct_pack(account := account, src_ip := src_ip, public := any_value(public),
            first_seen := any_value(first_ts), records_before := any_value(prior),
            usual_src_ips := (SELECT list(DISTINCT y.src_ip ORDER BY y.src_ip)[1:20] FROM gh_ami y
                              WHERE y.account = x.account AND y.ts < any_value(x.first_ts)),
            actions := histogram(action), vendor := any_value(coalesce(vendor, creator_vendor)),
            token_ids := list(DISTINCT token_id ORDER BY token_id) FILTER (WHERE token_id IS NOT NULL),
            off_hours := bool_or({off}), min_history := ?, min_history_days := ?) AS details
    FROM x
    GROUP BY account, src_ip
    HAVING count(*) FILTER (WHERE action NOT IN ({sessions}) AND {UNAPPROVED}) > 0
    ORDER BY ts_first, account, src_ip
    """
    args = [p["min_history"], p["min_history_days"], p["min_history"], p["min_history_days"]]
    return query_findings(ctx, a, sql, args)


NEEDS = ("ami_audit",)
ANALYTICS = (
    Analytic(
        "ami.new_account",
        "New account created on the AMI head-end / DMS / MDM outside an approved change",
        "low",
        ("T1136", "T0859"),
        NEEDS,
        new_account,
    ),
    Analytic(
        "ami.role_grant",
        "Role granted on the AMI head-end / DMS / MDM outside an approved change",
        "low",
        ("T1098", "T0859"),
        NEEDS,
        role_grant,
    ),
    Analytic(
        "ami.login_outside_admin_network",
        "AMI / DMS login from outside the admin network",
        "medium",
        ("T1078", "T1133", "T0859", "T0822"),
        NEEDS,
        login_outside_admin_network,
    ),
    Analytic(
        "ami.vendor_login_outside_change_window",
        "Vendor account logs in to the AMI / DMS outside a change window",
        "low",
        ("T1199", "T1078", "T0859", "T0822"),
        ("ami_audit", "vendor_access"),
        vendor_login_outside_change_window,
    ),
    Analytic(
        "ami.config_change",
        "AMI / DMS configuration changed outside an approved change",
        "low",
        ("T0836", "T1562"),
        NEEDS,
        config_change,
    ),
    Analytic(
        "ami.firmware_push",
        "Firmware pushed to meters / collectors outside an approved change",
        "medium",
        ("T0839", "T0857", "T1195.002"),
        NEEDS,
        firmware_push,
    ),
    Analytic(
        "ami.bulk_control",
        "Bulk remote disconnect / load limit beyond the account's baseline or the fleet threshold",
        "high",
        ("T0831", "T0813", "T0826", "T1489"),
        NEEDS,
        bulk_control,
    ),
    Analytic(
        "ami.command_outside_change_window",
        "Batch of meter control commands outside an approved change window",
        "medium",
        ("T0831", "T0855"),
        NEEDS,
        command_outside_change_window,
    ),
    Analytic(
        "ami.new_source_ip",
        "Account issues AMI commands from a source address it never used",
        "medium",
        ("T1078", "T1550", "T0859"),
        NEEDS,
        new_source_ip,
    ),
)
