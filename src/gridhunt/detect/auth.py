"""Identity analytics over the `auth` table (Windows logons, VPN, AMI / DMS logins together).

Each is SQL on one view, `gh_auth`: auth rows with the account key (lower-cased user; machine
accounts `NAME$` left out), the source (IP, else workstation), geo from `ip_geo`, and the vendor
that owns the account in the vendor register. Thresholds live in detect/defaults.yaml.

The Windows-only shapes (Kerberoasting, AS-REP roasting, new privileged accounts, GPO changes,
LSASS access, PsExec, encoded PowerShell, log clearing) are Sigma rules in our pack
(rules/gridhunt/); what needs the auth table, geo or per-account history is here.
"""

from __future__ import annotations

from gridhunt.detect.base import Analytic, Context, query_findings
from gridhunt.detect.zones import ip4_num
from gridhunt.report.findings import Finding

# password attempts; 4648 (explicit credentials), 4769 (service tickets) and 4740 (lockout) are not
ATTEMPT = "(event_id IS NULL OR event_id IN (4624, 4625, 4768, 4771, 4776))"
# attempts that name the address they came from (a DC's 4771 and a workstation's 4625 for the same
# typo would otherwise look like two sources: an IP and a host name)
REMOTE = "(src_ip IS NOT NULL AND src_ip NOT IN ('127.0.0.1', '::1'))"
# logons a person makes (for usual-hours profiles); service, batch and network logons are machines
INTERACTIVE = "(source <> 'windows' OR logon_type IN ('2', '10', '11'))"

# src_ip holds an address (IPv4 dotted quad, or IPv6 text); readers sometimes put a host name there
IS_ADDRESS = (
    f"({ip4_num('a.src_ip')} IS NOT NULL "
    r"OR regexp_full_match(trim(a.src_ip), '[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%\S+)?'))"
)

VIEW = """
CREATE OR REPLACE TEMP VIEW gh_auth AS
SELECT a.ts, a."user", a.domain, a.src_ip, a.src_host, a.dst_host, a.outcome, a.logon_type, a.failure_reason,
    a.source, a.source_file, a.source_ref, a.event_id,
    lower(a."user") AS account,
    -- local logons (no address, or loopback) come from the machine itself, not from one shared "127.0.0.1"
    CASE WHEN a.src_ip IS NULL OR a.src_ip IN ('127.0.0.1', '::1')
         THEN coalesce(lower(a.src_host), lower(a.dst_host)) ELSE a.src_ip END AS src,
    -- a host name in src_ip is no public address (ip_geo keeps it as not internal, not found)
    CASE WHEN a.src_ip IS NOT NULL AND NOT IS_ADDRESS THEN true ELSE coalesce(g.internal, false) END AS internal,
    g.country, coalesce(g.asn, g.org) AS network, g.org, g.lat, g.lon,
    v.vendor
FROM auth a
LEFT JOIN ip_geo g ON g.ip = a.src_ip
LEFT JOIN (
    SELECT lower(identifier) AS account, min(vendor) AS vendor FROM vendor_access
    WHERE kind IN ('vpn_account', 'service_account', 'api_token') GROUP BY 1
) v ON v.account = lower(a."user")
WHERE a."user" IS NOT NULL AND NOT ends_with(a."user", '$') AND a.outcome IN ('success', 'failure')
""".replace("IS_ADDRESS", IS_ADDRESS)

# the auth columns each evidence record shows (user is quoted: a keyword)
_EVIDENCE_FIELDS = (
    '"user"', "src_ip", "src_host", "dst_host", "outcome", "source", "event_id", "logon_type",
    "failure_reason", "country", "network",
)  # fmt: skip


def _ev(alias: str = "") -> str:
    """The evidence struct of a gh_auth row; `alias` qualifies its columns (`s` -> s.source_file …)."""
    q = f"{alias}." if alias else ""
    fields = ", ".join(f"{c.strip(chr(34))} := {q}{c}" for c in _EVIDENCE_FIELDS)
    return (
        f"struct_pack(source_file := {q}source_file, source_ref := {q}source_ref, ts := {q}ts, "
        f"fields := struct_pack({fields}))"
    )


EVIDENCE = _ev()


def prepare(ctx: Context) -> None:
    ctx.case.con.execute(VIEW)


def password_spray(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    # bursts: failures from one source with no gap longer than gap_minutes
    sql = f"""
    WITH f AS (
        SELECT *, CASE WHEN ts - lag(ts) OVER w > to_minutes(?::BIGINT) THEN 1 ELSE 0 END AS brk
        FROM gh_auth WHERE outcome = 'failure' AND {ATTEMPT} AND src IS NOT NULL
        WINDOW w AS (PARTITION BY src ORDER BY ts, source_file, source_ref)
    ), b AS (
        SELECT *, sum(brk) OVER (PARTITION BY src ORDER BY ts, source_file, source_ref
                                 ROWS UNBOUNDED PRECEDING) AS burst FROM f
    ), g AS (
        SELECT src, burst, count(DISTINCT account) AS accounts, count(*) AS n, min(ts) AS ts_first,
            max(ts) AS ts_last, list({EVIDENCE} ORDER BY ts, source_file, source_ref) AS evidence,
            list(DISTINCT source ORDER BY source) AS sources, list(DISTINCT account ORDER BY account) AS tried,
            any_value(country) AS country, any_value(network) AS network
        FROM b GROUP BY src, burst
    ), hit AS (SELECT * FROM g WHERE accounts >= ? AND n <= accounts * ?::DOUBLE)
    SELECT h.src AS entity, h.ts_first, h.ts_last, h.n AS count, h.evidence,
        CASE WHEN s.accounts IS NOT NULL THEN 'high' END AS severity,
        struct_pack(accounts := h.accounts, failures := h.n,
            failures_per_account := round(h.n / h.accounts, 2), sources := h.sources,
            country := h.country, network := h.network, accounts_tried := h.tried[1:50],
            succeeded_afterwards := s.accounts,
            min_accounts := ?, max_failures_per_account := ?, gap_minutes := ?) AS details
    FROM hit h LEFT JOIN (
        -- did any sprayed account then log in from the same source?
        SELECT h2.src, h2.burst, list(DISTINCT x.account ORDER BY x.account) AS accounts
        FROM hit h2 JOIN gh_auth x ON x.src = h2.src AND x.outcome = 'success'
            AND x.ts BETWEEN h2.ts_first AND h2.ts_last + to_hours(?::BIGINT)
            AND list_contains(h2.tried, x.account)
        GROUP BY ALL
    ) s ON s.src = h.src AND s.burst = h.burst
    ORDER BY h.ts_first, h.src
    """
    args = [p["gap_minutes"], p["min_accounts"], p["max_failures_per_account"]]
    args += [p["min_accounts"], p["max_failures_per_account"], p["gap_minutes"], p["success_lookahead_hours"]]
    return query_findings(ctx, a, sql, args)


def brute_force(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    sql = f"""
    WITH f AS (
        SELECT *, CASE WHEN ts - lag(ts) OVER w > to_minutes(?::BIGINT) THEN 1 ELSE 0 END AS brk
        FROM gh_auth WHERE outcome = 'failure' AND {ATTEMPT}
        WINDOW w AS (PARTITION BY account ORDER BY ts, source_file, source_ref)
    ), b AS (
        SELECT *, sum(brk) OVER (PARTITION BY account ORDER BY ts, source_file, source_ref
                                 ROWS UNBOUNDED PRECEDING) AS burst FROM f
    ), g AS (
        SELECT account, burst, count(*) AS n, min(ts) AS ts_first, max(ts) AS ts_last,
            count(DISTINCT src) AS srcs, list(DISTINCT src ORDER BY src)[1:20] AS src_list,
            list(DISTINCT source ORDER BY source) AS sources, mode(failure_reason) AS reason,
            any_value(vendor) AS vendor,
            list({EVIDENCE} ORDER BY ts, source_file, source_ref) AS evidence
        FROM b GROUP BY account, burst
    )
    SELECT g.account AS entity, g.ts_first, g.ts_last, g.n AS count, g.evidence,
        CASE WHEN s.ts IS NOT NULL THEN 'high' END AS severity,
        struct_pack(failures := g.n, sources_ips := g.src_list, distinct_sources := g.srcs,
            log_sources := g.sources, usual_reason := g.reason, vendor := g.vendor,
            first_success_after := s.ts, success_from := s.src,
            min_failures := ?, gap_minutes := ?) AS details
    FROM g LEFT JOIN LATERAL (
        SELECT x.ts, x.src FROM gh_auth x
        WHERE x.account = g.account AND x.outcome = 'success' AND {ATTEMPT}
            AND x.ts BETWEEN g.ts_last AND g.ts_last + to_minutes(?::BIGINT)
        ORDER BY x.ts, x.source_file, x.source_ref LIMIT 1
    ) s ON true
    WHERE g.n >= ?
    ORDER BY g.ts_first, g.account
    """
    args = [p["gap_minutes"], p["min_failures"], p["gap_minutes"], p["gap_minutes"], p["min_failures"]]
    return query_findings(ctx, a, sql, args)


def failures_then_success(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    window = f"INTERVAL {int(p['window_minutes'])} MINUTE"
    # failures in the window from OTHER sources = all the account's failures in it minus those from
    # the success's own source: two window sums, O(n log n) even for accounts with millions of rows.
    # Evidence is gathered afterwards for the few successes that qualify: one finding per (account,
    # success source), at its first such success.
    sql = f"""
    WITH x AS (
        SELECT *, CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END AS is_fail
        FROM gh_auth WHERE {ATTEMPT} AND {REMOTE}
    ), w AS (
        SELECT *,
            sum(is_fail) OVER (PARTITION BY account ORDER BY ts
                               RANGE BETWEEN {window} PRECEDING AND CURRENT ROW) AS f_all,
            sum(is_fail) OVER (PARTITION BY account, src ORDER BY ts
                               RANGE BETWEEN {window} PRECEDING AND CURRENT ROW) AS f_same
        FROM x
    ), cand AS (
        SELECT *, count(*) OVER (PARTITION BY account, src) AS successes
        FROM w WHERE outcome = 'success' AND f_all - f_same >= ? AND (NOT ? OR NOT internal)
        QUALIFY row_number() OVER (PARTITION BY account, src ORDER BY ts, source_file, source_ref) = 1
    ), pairs AS (
        SELECT c.account, c.src AS ok_src, c.ts AS ok_ts, c.country AS ok_country, c.network AS ok_network,
            c.vendor, c.successes, {_ev("c")} AS ok_ev,
            count(*) AS failures, list(DISTINCT f.src ORDER BY f.src)[1:20] AS fail_src_list,
            list(DISTINCT f.country ORDER BY f.country) FILTER (WHERE f.country IS NOT NULL) AS fail_countries,
            list({_ev("f")} ORDER BY f.ts, f.source_file, f.source_ref) AS fail_ev
        FROM cand c JOIN x f ON f.account = c.account AND f.outcome = 'failure'
            AND f.ts BETWEEN c.ts - {window} AND c.ts AND f.src IS DISTINCT FROM c.src
        GROUP BY ALL
    ), seen AS (
        -- had the account ever succeeded from that source before?
        SELECT c.account, c.src AS ok_src, count(x.ts) AS earlier
        FROM cand c LEFT JOIN x ON x.account = c.account AND x.src = c.src AND x.outcome = 'success'
            AND x.ts < c.ts
        GROUP BY ALL
    )
    SELECT f.account || ' from ' || coalesce(f.ok_src, '?') AS entity,
        f.fail_ev[1].ts::TIMESTAMPTZ AS ts_first, f.ok_ts AS ts_last, f.failures + 1 AS count,
        list_append(f.fail_ev, f.ok_ev) AS evidence,
        CASE WHEN seen.earlier = 0 AND (f.vendor IS NOT NULL
                  OR list_position(f.fail_countries, f.ok_country) IS NULL AND f.ok_country IS NOT NULL)
             THEN 'critical'
             WHEN seen.earlier = 0 THEN 'high' END AS severity,
        struct_pack(account := f.account, success_from := f.ok_src, success_country := f.ok_country,
            success_network := f.ok_network, new_source := seen.earlier = 0, vendor := f.vendor,
            failures := f.failures, failure_sources := f.fail_src_list, failure_countries := f.fail_countries,
            successes_like_this := f.successes, window_minutes := ?, min_failures := ?) AS details
    FROM pairs f JOIN seen USING (account, ok_src)
    ORDER BY f.ok_ts, f.account, f.ok_src
    """
    args = [p["min_failures"], p["public_success_only"], p["window_minutes"], p["min_failures"]]
    return query_findings(ctx, a, sql, args)


def _first_seen(ctx: Context, a: Analytic, column: str, label: str) -> list[Finding]:
    """Successful logins from a `column` value (country / network) the account never used before,
    once the account has history enough to judge (min_history logins over min_history_days)."""
    p = ctx.params(a.name)
    sql = f"""
    WITH s AS (
        SELECT *, count(*) OVER w AS prior, min(ts) OVER w AS since
        FROM gh_auth WHERE outcome = 'success' AND NOT internal AND {column} IS NOT NULL AND {ATTEMPT}
        WINDOW w AS (PARTITION BY account ORDER BY ts, source_file, source_ref
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    ), firsts AS (
        SELECT * FROM s
        QUALIFY row_number() OVER (PARTITION BY account, {column} ORDER BY ts, source_file, source_ref) = 1
    ), news AS (
        SELECT * FROM firsts
        WHERE prior >= ? AND ts - since >= to_days(?::BIGINT)
    )
    SELECT n.account || ' ' || {label!r} || ' ' || n.{column} AS entity, n.ts AS ts_first, n.ts AS ts_last,
        1 AS count, [{_ev("n")}] AS evidence,
        CASE WHEN n.vendor IS NOT NULL THEN ? END AS severity,
        struct_pack(account := n.account, {column} := n.{column}, org := n.org, src_ip := n.src_ip,
            vendor := n.vendor, logins_before := n.prior,
            usual := (SELECT list(DISTINCT h.{column} ORDER BY h.{column}) FROM s h
                      WHERE h.account = n.account AND h.ts < n.ts),
            min_history := ?, min_history_days := ?) AS details
    FROM news n
    ORDER BY n.ts, n.account, n.{column}, n.source_file, n.source_ref
    """
    args = [p["min_history"], p["min_history_days"], p["vendor_severity"], p["min_history"], p["min_history_days"]]
    return query_findings(ctx, a, sql, args)


def new_country(ctx: Context, a: Analytic) -> list[Finding]:
    return _first_seen(ctx, a, "country", "new country")


def new_network(ctx: Context, a: Analytic) -> list[Finding]:
    return _first_seen(ctx, a, "network", "new network")


def impossible_travel(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    ignore = [str(x) for x in p["ignore_networks"]]
    # great-circle distance between consecutive public logins (haversine, R = 6371 km)
    sql = f"""
    WITH s AS (
        SELECT *, lag(ts) OVER w AS p_ts, lag(lat) OVER w AS p_lat, lag(lon) OVER w AS p_lon,
            lag(country) OVER w AS p_country, lag(src) OVER w AS p_src,
            lag({EVIDENCE}) OVER w AS p_ev
        FROM gh_auth
        WHERE outcome = 'success' AND NOT internal AND lat IS NOT NULL AND {ATTEMPT}
            AND NOT list_contains(?::VARCHAR[], coalesce(network, ''))
        WINDOW w AS (PARTITION BY account ORDER BY ts, source_file, source_ref)
    ), d AS (
        SELECT *, 2 * 6371 * asin(sqrt(
                power(sin(radians(lat - p_lat) / 2), 2)
                + cos(radians(p_lat)) * cos(radians(lat)) * power(sin(radians(lon - p_lon) / 2), 2))) AS km,
            greatest(epoch(ts) - epoch(p_ts), 60) / 3600.0 AS hours
        FROM s WHERE p_ts IS NOT NULL AND country IS DISTINCT FROM p_country
    )
    SELECT account || ' ' || p_country || '->' || country AS entity, p_ts AS ts_first, ts AS ts_last, 2 AS count,
        [p_ev, {EVIDENCE}] AS evidence,
        CASE WHEN vendor IS NOT NULL THEN 'high' END AS severity,
        struct_pack(account := account, from_country := p_country, to_country := country, from_src := p_src,
            to_src := src, km := round(km), hours := round(hours, 2), km_per_hour := round(km / hours),
            vendor := vendor, max_km_per_hour := ?, min_km := ?) AS details
    FROM d WHERE km >= ? AND km / hours > ?
    ORDER BY ts, account, source_file, source_ref
    """
    args = [ignore, p["max_km_per_hour"], p["min_km"], p["min_km"], p["max_km_per_hour"]]
    return query_findings(ctx, a, sql, args)


def off_hours(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    # an account's usual hours = its own interactive logins per UTC hour; a login in an hour
    # (with its neighbours) holding under max_share of them is unusual for that account
    sql = f"""
    WITH s AS (
        SELECT *, hour(ts AT TIME ZONE 'UTC') AS h FROM gh_auth
        WHERE outcome = 'success' AND {ATTEMPT} AND {INTERACTIVE}
    ), prof AS (
        SELECT account, h, count(*) AS n, sum(count(*)) OVER (PARTITION BY account) AS total
        FROM s GROUP BY account, h
    ), share AS (
        SELECT p.account, p.h, p.total,
            (SELECT sum(q.n) FROM prof q WHERE q.account = p.account
                AND (q.h = p.h OR q.h = (p.h + 1) % 24 OR q.h = (p.h + 23) % 24)) / p.total AS near
        FROM prof p
    ), hours AS (
        SELECT h, count(*) AS n FROM s GROUP BY h
    ), everyone AS (
        -- how busy that hour (± 1 h) is across all accounts: an hour many people work is not odd
        SELECT x.h, sum(y.n) / (SELECT sum(n) FROM hours) AS near_all
        FROM hours x JOIN hours y ON y.h = x.h OR y.h = (x.h + 1) % 24 OR y.h = (x.h + 23) % 24
        GROUP BY x.h
    ), odd AS (
        SELECT s.*, share.near, share.total, everyone.near_all
        FROM s JOIN share USING (account, h) JOIN everyone USING (h)
        WHERE share.total >= ? AND share.near < ? AND everyone.near_all < ?
    )
    SELECT account || ' ' || strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d') AS entity, min(ts) AS ts_first,
        max(ts) AS ts_last, count(*) AS count,
        list({EVIDENCE} ORDER BY ts, source_file, source_ref) AS evidence,
        CASE WHEN any_value(vendor) IS NOT NULL THEN ? END AS severity,
        struct_pack(account := account, hours_utc := list(DISTINCT h ORDER BY h),
            share_of_logins_near_that_hour := round(min(near), 4), logins_profiled := any_value(total),
            share_of_everyones_logins_near_that_hour := round(min(near_all), 4),
            usual_hours_utc := (SELECT list(q.h ORDER BY q.n DESC, q.h)[1:6] FROM prof q
                                WHERE q.account = odd.account),
            vendor := any_value(vendor), max_share := ?, max_share_everyone := ?, min_logins := ?) AS details
    FROM odd
    GROUP BY account, strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d')
    ORDER BY ts_first, account
    """
    args = [p["min_logins"], p["max_share"], p["max_share_everyone"], p["vendor_severity"]]
    args += [p["max_share"], p["max_share_everyone"], p["min_logins"]]
    return query_findings(ctx, a, sql, args)


ANALYTICS = (
    Analytic(
        "auth.password_spray",
        "Password spraying: one source, many accounts, few tries each",
        "medium",
        ("T1110.003",),
        ("auth",),
        password_spray,
    ),
    Analytic(
        "auth.brute_force",
        "Brute force: many failed logons for one account",
        "medium",
        ("T1110.001",),
        ("auth",),
        brute_force,
    ),
    Analytic(
        "auth.failures_then_success",
        "Failed logons, then a success for the same account from another source",
        "medium",
        ("T1110", "T1078"),
        ("auth",),
        failures_then_success,
    ),
    Analytic(
        "auth.new_country",
        "Account logs in from a country it never used before",
        "low",
        ("T1078",),
        ("auth",),
        new_country,
    ),
    Analytic(
        "auth.new_network",
        "Account logs in from a network (ASN) it never used before",
        "informational",
        ("T1078",),
        ("auth",),
        new_network,
    ),
    Analytic(
        "auth.impossible_travel",
        "Impossible travel between consecutive logins",
        "medium",
        ("T1078",),
        ("auth",),
        impossible_travel,
    ),
    Analytic(
        "auth.off_hours",
        "Logins at hours unusual for the account",
        "low",
        ("T1078",),
        ("auth",),
        off_hours,
    ),
)
