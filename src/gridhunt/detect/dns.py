"""DNS analytics over the `dns` table (Zeek dns.log, Sysmon 22, resolver logs together).

prepare() splits every DISTINCT queried name once, in SQL, with the rules of the Public Suffix
List snapshot bundled in tldextract (detect/domains.py), scores every distinct registered domain
once in Python (popularity list, 3-gram DGA model), and puts both beside the rows in one view,
`gh_dns`; the analytics are then SQL on that view. Thresholds live in detect/defaults.yaml.

Single labels, IP addresses, internal TLDs (.local, .corp …) and reverse lookups (.arpa) have no
registered domain: they never count as new, DGA-like or tunnelling domains, but their NXDOMAIN
answers do count towards bursts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from gridhunt.detect import domains
from gridhunt.detect.base import MAX_EVIDENCE_ROWS, Analytic, Context, query_findings
from gridhunt.report.findings import Finding
from gridhunt.sql import temp_table

NXDOMAIN = "('NXDOMAIN', '3')"  # Zeek rcode_name, or the numeric code some resolvers log
TXT_NULL = "('TXT', 'NULL', '16', '10')"
# the name exists: an answer, or NOERROR (some sources log no answers)
RESOLVED = "(coalesce(answers, '') <> '' OR rcode IN ('NOERROR', '0'))"

VIEW = f"""
CREATE OR REPLACE TEMP VIEW gh_dns AS
SELECT d.ts, d.src_ip, d.query, upper(d.qtype) AS qtype, upper(d.rcode) AS rcode, d.answers, d.source,
    d.source_file, d.source_ref, n.name, n.registered, n.sub, n.label,
    coalesce(r.popular, false) AS popular, coalesce(r.dga, false) AS dga, r.dga_score
FROM dns d
JOIN gh_dns_names n ON n.name = {domains.NORMALISE_SQL.format(col="d.query")}
LEFT JOIN gh_dns_regs r ON r.registered = n.registered
"""

EVIDENCE = """struct_pack(source_file := source_file, source_ref := source_ref, ts := ts,
    fields := struct_pack(src_ip := src_ip, query := query, qtype := qtype, rcode := rcode,
        answers := answers, source := source))"""


def prepare(ctx: Context) -> None:
    con = ctx.case.con
    domains.name_table(
        con,
        "gh_dns_names",
        f"SELECT DISTINCT {domains.NORMALISE_SQL.format(col='query')} AS name FROM dns WHERE query IS NOT NULL",
    )
    # score each distinct registered domain once: popularity and DGA-likeness
    regs = [
        r[0]
        for r in con.execute("SELECT DISTINCT registered FROM gh_dns_names WHERE registered IS NOT NULL").fetchall()
    ]
    p = ctx.params("dns.dga")
    popular = domains.popular_domains()
    model = domains.benign_model() if regs else None
    labels = [r.split(".", 1)[0] for r in regs]
    pop = [r in popular for r in regs]
    scores = [model.score(lb) if model else None for lb in labels]
    dga = [
        not is_pop
        and model is not None
        and domains.dga_like(lb, model, p["min_length"], p["max_logprob"], p["min_entropy"], p["entropy_logprob"])
        for lb, is_pop in zip(labels, pop, strict=True)
    ]
    tbl = pa.table(
        {
            "registered": pa.array(regs, pa.string()),
            "popular": pa.array(pop, pa.bool_()),
            "dga": pa.array(dga, pa.bool_()),
            "dga_score": pa.array(scores, pa.float64()),
        }
    )
    temp_table(con, "gh_dns_regs", tbl)
    con.execute(VIEW)


def _allowed(ctx: Context, table: str, allow: list[Any]) -> str:
    """Create temp table `table` of the distinct names covered by the allow-list (an entry covers
    itself and every name below it) and return a predicate that keeps only the other rows.
    Entries are matched through their registered domain (a hash join); only entries without one
    (a public suffix, an internal name) are compared with every name."""
    entries = sorted({domains.normalise(str(a)) for a in allow if str(a).strip()})
    regs = [domains.split(e)[0] for e in entries]
    keyed = [(e, r) for e, r in zip(entries, regs, strict=True) if r]
    loose = [e for e, r in zip(entries, regs, strict=True) if not r]
    ctx.case.con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT DISTINCT n.name FROM gh_dns_names n
        JOIN (SELECT unnest(?::VARCHAR[]) AS a, unnest(?::VARCHAR[]) AS r) x ON n.registered = x.r
        WHERE n.name = x.a OR ends_with(n.name, '.' || x.a)
        UNION
        SELECT n.name FROM gh_dns_names n JOIN (SELECT unnest(?::VARCHAR[]) AS a) y
            ON n.name = y.a OR ends_with(n.name, '.' || y.a)""",
        [[e for e, _ in keyed], [r for _, r in keyed], loose],
    )
    return f"name NOT IN (SELECT name FROM {table})"


def _ev_cte(hit: str, keys: str, where: str = "TRUE", order: str = "ts, source_file, source_ref") -> str:
    """SQL CTE body: the evidence list per hit group (`keys` columns shared by `hit` and gh_dns),
    at most MAX_EVIDENCE_ROWS rows each, cut before aggregating so huge groups stay cheap."""
    return f"""SELECT {keys}, list({EVIDENCE} ORDER BY {order}) AS evidence FROM (
        SELECT d.* FROM gh_dns d JOIN {hit} h USING ({keys}) WHERE {where}
        QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {order}) <= {MAX_EVIDENCE_ROWS}
    ) GROUP BY {keys}"""


# ---- new domains -------------------------------------------------------------------------------


def _window(ctx: Context, p: dict[str, Any]) -> tuple[datetime, datetime, str] | None:
    """(start, end, how chosen) of 'first seen in the window': the vendor incident window when the
    case has one, else the whole evidence; either way not before the first min_history_days of DNS,
    which are the history a new domain is new against. None (noted) when no such time is left."""
    con = ctx.case.con
    t0, t1 = con.execute("SELECT min(ts), max(ts) FROM dns").fetchall()[0]
    if t0 is None:
        return None
    learn = t0 + timedelta(days=p["min_history_days"])
    v_start, v_end = con.execute(
        "SELECT min(incident_start), max(incident_end) FROM vendors WHERE incident_start IS NOT NULL"
    ).fetchall()[0]
    start, end = learn, t1
    how = f"after the first {p['min_history_days']} days of DNS"
    if v_start is not None:
        start, end = max(learn, v_start), min(v_end or t1, t1)
        how = "vendor incident window" + (f", {how}" if learn > v_start else "")
    if start > end:
        have = (t1 - t0).total_seconds() / 86400
        ctx.notes.append(
            f"dns.new_domain: {have:.1f} days of DNS; it needs {p['min_history_days']} days before the window "
            "(the vendor incident window, else the whole evidence) to tell a new domain from an old one"
        )
        return None
    return start, end, how


def new_domain(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    window = _window(ctx, p)
    if window is None:
        return []
    start, end, how = window
    keep = _allowed(ctx, "gh_dns_allow_new", p["allow_domains"])
    sql = f"""
    WITH firsts AS (
        SELECT registered, min(ts) AS first_seen, bool_or({RESOLVED}) AS resolved,
            -- a mail server checking a sender: only TXT / MX lookups, DMARC or DKIM names among them
            bool_and(qtype IN ('TXT', 'MX', '16', '15')) AND bool_or(sub = '_dmarc' OR sub LIKE '%._domainkey')
                AS mail_auth
        FROM gh_dns
        WHERE registered IS NOT NULL AND NOT popular AND {keep}
        GROUP BY registered
    ), hit AS (
        SELECT registered FROM firsts WHERE first_seen >= ?::TIMESTAMPTZ AND first_seen <= ?::TIMESTAMPTZ
            AND (resolved OR NOT ?) AND NOT (mail_auth AND ?)
    ), agg AS (
        SELECT d.registered, count(*) AS n, min(d.ts) AS ts_first, max(d.ts) AS ts_last,
            count(DISTINCT d.src_ip) AS hosts, list(DISTINCT d.src_ip ORDER BY d.src_ip)[1:50] AS host_list,
            count(DISTINCT d.name) AS names, list(DISTINCT d.name ORDER BY d.name)[1:20] AS name_list,
            count(*) FILTER (WHERE d.rcode IN {NXDOMAIN}) AS nxdomain,
            list(DISTINCT d.answers ORDER BY d.answers) FILTER (WHERE d.answers IS NOT NULL)[1:10] AS answers,
            any_value(d.dga) AS dga_like
        FROM gh_dns d JOIN hit USING (registered) WHERE {keep}
        GROUP BY d.registered
    ), ev AS ({_ev_cte("hit", "registered", keep)})
    SELECT agg.registered AS entity, agg.ts_first, agg.ts_last, agg.n AS count, ev.evidence,
        struct_pack(domain := agg.registered, first_seen := agg.ts_first, queries := agg.n, hosts := agg.hosts,
            host_list := agg.host_list, names := agg.names, name_list := agg.name_list,
            nxdomain := agg.nxdomain, answers := agg.answers, dga_like := agg.dga_like, in_popular_list := false,
            window_start := ?::TIMESTAMPTZ, window_end := ?::TIMESTAMPTZ, window_chosen_by := ?, require_resolved := ?,
            history_days := round(epoch(?::TIMESTAMPTZ - (SELECT min(ts) FROM dns)) / 86400, 1)) AS details
    FROM agg JOIN ev USING (registered)
    ORDER BY agg.ts_first, agg.registered
    """
    resolved = p["require_resolved"]
    args = [start, end, resolved, p["skip_mail_lookups"], start, end, how, resolved, start]
    return query_findings(ctx, a, sql, args)


# ---- DGA-like domains ----------------------------------------------------------------------------


def dga(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    keep = _allowed(ctx, "gh_dns_allow_dga", p["allow_domains"])
    sql = f"""
    WITH d AS (SELECT * FROM gh_dns WHERE dga AND {keep}),
    per AS (
        SELECT src_ip, count(DISTINCT registered) AS doms, count(*) AS n, min(ts) AS ts_first, max(ts) AS ts_last,
            list(DISTINCT registered ORDER BY registered)[1:50] AS dom_list,
            count(DISTINCT registered) FILTER (WHERE rcode IN {NXDOMAIN}) AS nx_doms,
            list(DISTINCT registered ORDER BY registered) FILTER (
                WHERE rcode NOT IN {NXDOMAIN} AND answers IS NOT NULL AND answers <> '')[1:20] AS resolved,
            round(min(dga_score), 3) AS min_score, round(median(dga_score), 3) AS median_score
        FROM d WHERE src_ip IS NOT NULL GROUP BY src_ip
        HAVING count(DISTINCT registered) >= ?
    ), hit AS (SELECT src_ip FROM per),
    ev AS ({_ev_cte("hit", "src_ip", f"d.dga AND {keep}")})
    SELECT per.src_ip AS entity, per.ts_first, per.ts_last, per.n AS count, ev.evidence,
        CASE WHEN len(per.resolved) > 0 THEN 'high' END AS severity,
        struct_pack(dga_like_domains := per.doms, domains := per.dom_list, nxdomain_domains := per.nx_doms,
            resolved_domains := per.resolved, queries := per.n, lowest_3gram_score := per.min_score,
            median_3gram_score := per.median_score, min_domains := ?, min_length := ?, max_logprob := ?,
            min_entropy := ?, entropy_logprob := ?) AS details
    FROM per JOIN ev USING (src_ip)
    ORDER BY per.ts_first, per.src_ip
    """
    args = [p["min_domains"], p["min_domains"], p["min_length"], p["max_logprob"], p["min_entropy"]]
    args += [p["entropy_logprob"]]
    return query_findings(ctx, a, sql, args)


# ---- tunnelling ------------------------------------------------------------------------------------


def _sub_entropy(ctx: Context, min_subs: int) -> None:
    """Temp table gh_dns_sub_entropy(name, sub_entropy): character entropy of the subdomain (dots
    left out), computed only for names under parents with at least `min_subs` distinct subdomains
    in the whole case (no source / parent pair can reach the threshold otherwise)."""
    con = ctx.case.con
    got = con.execute(
        """SELECT name, replace(sub, '.', '') AS flat FROM gh_dns_names WHERE registered IN (
            SELECT registered FROM gh_dns_names WHERE sub <> '' GROUP BY registered HAVING count(*) >= ?)""",
        [min_subs],
    ).fetchnumpy()
    names, flat = got["name"].tolist(), got["flat"].tolist()
    tbl = pa.table({"name": pa.array(names, pa.string()), "sub_entropy": domains.entropies(flat)})
    temp_table(con, "gh_dns_sub_entropy", tbl)


def tunnel(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    keep = _allowed(ctx, "gh_dns_allow_tunnel", p["allow_parents"])
    popular = "NOT popular" if p["ignore_popular"] else "TRUE"
    _sub_entropy(ctx, p["min_unique_subdomains"])
    # an attacker must run the parent's authoritative server: per (source, parent) many unique,
    # long or random subdomains, or TXT/NULL-heavy traffic, is the channel
    base = f"registered IS NOT NULL AND sub <> '' AND src_ip IS NOT NULL AND {popular} AND {keep}"
    sql = f"""
    WITH r AS (SELECT d.*, coalesce(e.sub_entropy, 0) AS sub_entropy
               FROM gh_dns d LEFT JOIN gh_dns_sub_entropy e USING (name) WHERE {base}),
    g AS (
        SELECT src_ip, registered, count(*) AS n, count(DISTINCT sub) AS subs, avg(length(sub)) AS sub_len,
            max(length(name)) AS max_len, avg(sub_entropy) AS ent,
            count(*) FILTER (WHERE qtype IN {TXT_NULL}) AS txt_null, sum(length(sub)) AS sub_bytes,
            sum(coalesce(length(answers), 0)) AS answer_bytes, min(ts) AS ts_first, max(ts) AS ts_last,
            list(DISTINCT qtype ORDER BY qtype) AS qtypes
        FROM r GROUP BY src_ip, registered
        HAVING count(DISTINCT sub) >= ?
    ), ind AS (
        SELECT *, list_sort(list_distinct([
                CASE WHEN sub_len >= ? THEN 'long_subdomains' END,
                CASE WHEN ent >= ? THEN 'random_subdomains' END,
                CASE WHEN txt_null / n >= ? THEN 'txt_null_records' END])) AS indicators
        FROM g
    ), hit AS (SELECT * FROM ind WHERE len(indicators) > 0),
    peak AS (
        SELECT src_ip, registered, max(c) AS peak_hour FROM (
            SELECT r.src_ip, r.registered, count(*) AS c FROM r JOIN hit USING (src_ip, registered)
            GROUP BY r.src_ip, r.registered, date_trunc('hour', r.ts)) GROUP BY ALL
    ), ev AS ({_ev_cte("hit", "src_ip, registered", base)})
    SELECT h.src_ip || ' -> ' || h.registered AS entity, h.ts_first, h.ts_last, h.n AS count, ev.evidence,
        CASE WHEN len(h.indicators) >= 2 OR h.subs >= 10 * ? THEN 'high' END AS severity,
        struct_pack(src_ip := h.src_ip, parent_domain := h.registered, queries := h.n,
            unique_subdomains := h.subs, indicators := h.indicators,
            mean_subdomain_length := round(h.sub_len, 1), max_query_length := h.max_len,
            mean_subdomain_entropy := round(h.ent, 2), txt_null_share := round(h.txt_null / h.n, 3),
            qtypes := h.qtypes, peak_queries_per_hour := pk.peak_hour,
            queries_per_hour := round(h.n / greatest(epoch(h.ts_last - h.ts_first) / 3600, 1), 1),
            subdomain_bytes := h.sub_bytes, subdomain_bytes_per_query := round(h.sub_bytes / h.n, 1),
            answer_bytes := h.answer_bytes,
            min_unique_subdomains := ?, min_mean_subdomain_length := ?, min_subdomain_entropy := ?,
            min_txt_null_share := ?) AS details
    FROM hit h JOIN peak pk USING (src_ip, registered) JOIN ev USING (src_ip, registered)
    ORDER BY h.ts_first, h.src_ip, h.registered
    """
    thr = [p["min_unique_subdomains"], p["min_mean_subdomain_length"], p["min_subdomain_entropy"]]
    thr += [p["min_txt_null_share"]]
    return query_findings(ctx, a, sql, thr + [p["min_unique_subdomains"]] + thr)


# ---- NXDOMAIN bursts -----------------------------------------------------------------------------


def nxdomain_burst(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    keep = _allowed(ctx, "gh_dns_allow_nx", p["allow_parents"])
    sql = f"""
    WITH f AS (
        SELECT *, CASE WHEN ts - lag(ts) OVER w > to_minutes(?::BIGINT) THEN 1 ELSE 0 END AS brk
        FROM gh_dns WHERE rcode IN {NXDOMAIN} AND src_ip IS NOT NULL AND {keep}
        WINDOW w AS (PARTITION BY src_ip ORDER BY ts, source_file, source_ref)
    ), b AS (
        SELECT *, sum(brk) OVER (PARTITION BY src_ip ORDER BY ts, source_file, source_ref
                                 ROWS UNBOUNDED PRECEDING) AS burst FROM f
    ), g AS (
        SELECT src_ip, burst, count(*) AS n, count(DISTINCT name) AS names, count(DISTINCT registered) AS regs,
            count(DISTINCT registered) FILTER (WHERE dga) AS dga_regs, min(ts) AS ts_first, max(ts) AS ts_last,
            list(DISTINCT name ORDER BY name)[1:20] AS name_list
        FROM b GROUP BY src_ip, burst
        HAVING count(*) >= ? AND count(DISTINCT name) >= ?
    ), tops AS (
        SELECT src_ip, burst, list(coalesce(registered, '(no public suffix)') ORDER BY c DESC,
            registered)[1:10] AS top_parents
        FROM (SELECT b.src_ip, b.burst, b.registered, count(*) AS c FROM b JOIN g USING (src_ip, burst)
              GROUP BY ALL) GROUP BY ALL
    ), ev AS (
        SELECT src_ip, burst, list({EVIDENCE} ORDER BY ts, source_file, source_ref) AS evidence FROM (
            SELECT b.* FROM b JOIN g USING (src_ip, burst)
            QUALIFY row_number() OVER (PARTITION BY src_ip, burst ORDER BY ts, source_file, source_ref)
                <= {MAX_EVIDENCE_ROWS}) GROUP BY ALL
    )
    SELECT g.src_ip AS entity, g.ts_first, g.ts_last, g.n AS count, ev.evidence,
        CASE WHEN g.dga_regs >= 3 THEN 'high' END AS severity,
        struct_pack(src_ip := g.src_ip, nxdomain := g.n, distinct_names := g.names, distinct_parents := g.regs,
            dga_like_parents := g.dga_regs, top_parents := t.top_parents, names := g.name_list,
            minutes := round(epoch(g.ts_last - g.ts_first) / 60, 1),
            per_minute := round(g.n / greatest(epoch(g.ts_last - g.ts_first) / 60, 1), 1),
            gap_minutes := ?, min_nxdomain := ?, min_distinct_names := ?) AS details
    FROM g JOIN tops t USING (src_ip, burst) JOIN ev USING (src_ip, burst)
    ORDER BY g.ts_first, g.src_ip
    """
    args = [p["gap_minutes"], p["min_nxdomain"], p["min_distinct_names"]]
    args += [p["gap_minutes"], p["min_nxdomain"], p["min_distinct_names"]]
    return query_findings(ctx, a, sql, args)


ANALYTICS = (
    Analytic(
        "dns.new_domain",
        "Domain first queried in the hunt window and absent from the popularity list",
        "low",
        ("T1071.004", "T1568"),
        ("dns",),
        new_domain,
    ),
    Analytic(
        "dns.dga",
        "Host queries several machine-generated-looking (DGA) domains",
        "medium",
        ("T1568.002",),
        ("dns",),
        dga,
    ),
    Analytic(
        "dns.tunnel",
        "DNS tunnelling: many long / random subdomains or TXT / NULL records under one parent domain",
        "medium",
        ("T1071.004", "T1048.003"),
        ("dns",),
        tunnel,
    ),
    Analytic(
        "dns.nxdomain_burst",
        "Burst of NXDOMAIN answers for many different names from one host",
        "low",
        ("T1568.002",),
        ("dns",),
        nxdomain_burst,
    ),
)
