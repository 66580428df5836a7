"""Exfiltration analytics over the `conn` table (Zeek conn, firewall and VPN flows together).

prepare() keeps the outbound flows in a temp table `gh_out`: internal source -> external destination,
bytes_out > 0, not denied (internal = gridhunt.geo's private ranges or a `zones` CIDR, as for the
beacon analytics). It names every external destination once (TLS SNI, else HTTP Host, else the DNS
query that answered with its address) and sums bytes per (source, destination, UTC day) in
`gh_pair_day`.

The same flow seen by two sensors (Zeek and the firewall) is counted once: per pair and day the
volume is that of the sensor reporting the most bytes, never the sum over sensors.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pyarrow as pa

from gridhunt import geo
from gridhunt.detect import domains
from gridhunt.detect.base import MAX_EVIDENCE_ROWS, Analytic, Context, query_findings
from gridhunt.report.findings import Finding
from gridhunt.sql import temp_table

OUT = """
CREATE OR REPLACE TEMP TABLE gh_out AS
SELECT c.ts, c.src_ip, c.dst_ip, c.dst_port, c.proto, c.service, c.duration, c.bytes_out, c.bytes_in,
    coalesce(c.source, '?') AS sensor, c.source, c.source_file, c.source_ref,
    CAST(c.ts AT TIME ZONE 'UTC' AS DATE) AS day
FROM conn c
JOIN gh_exfil_ip s ON s.ip = c.src_ip AND s.internal
JOIN gh_exfil_ip d ON d.ip = c.dst_ip AND NOT d.internal AND d.valid
WHERE c.bytes_out > 0 AND c.ts IS NOT NULL AND coalesce(c.action, 'allow') <> 'deny'
"""

# every (address, name) pair the case saw, and the best name per address (SNI > Host > DNS, then count)
NAMES = f"""
CREATE OR REPLACE TEMP TABLE gh_ip_names_all AS
WITH ips AS (SELECT DISTINCT dst_ip AS ip FROM gh_out),
n AS (
    SELECT t.dst_ip AS ip, {domains.NORMALISE_SQL.format(col="t.server_name")} AS name, 3 AS pri
    FROM tls t JOIN ips ON ips.ip = t.dst_ip WHERE coalesce(t.server_name, '') <> ''
    UNION ALL
    SELECT h.dst_ip, {domains.NORMALISE_SQL.format(col="split_part(h.host, ':', 1)")}, 2
    FROM http h JOIN ips ON ips.ip = h.dst_ip WHERE coalesce(h.host, '') <> ''
    UNION ALL
    SELECT a.ip, a.name, 1 FROM (
        SELECT trim(unnest(string_split(answers, ','))) AS ip, {domains.NORMALISE_SQL.format(col="query")} AS name
        FROM dns WHERE coalesce(answers, '') <> '' AND query IS NOT NULL
    ) a JOIN ips ON ips.ip = a.ip
)
SELECT ip, name, max(pri) AS pri, count(*) AS seen FROM n WHERE name <> '' GROUP BY ip, name;
CREATE OR REPLACE TEMP TABLE gh_ip_name AS
SELECT ip, first(name ORDER BY pri DESC, seen DESC, name) AS name FROM gh_ip_names_all GROUP BY ip;
"""

DEST = """
CREATE OR REPLACE TEMP TABLE gh_dest AS
SELECT o.ip, n.name, p.registered, coalesce(p.registered, o.ip) AS dest, pop.registered IS NOT NULL AS popular
FROM (SELECT DISTINCT dst_ip AS ip FROM gh_out) o
LEFT JOIN gh_ip_name n USING (ip)
LEFT JOIN gh_exfil_names p ON p.name = n.name
LEFT JOIN gh_popular pop ON pop.registered = p.registered
"""

PAIR_DAY = """
CREATE OR REPLACE TEMP TABLE gh_pair_day AS
WITH s AS (
    SELECT src_ip, dst_ip, day, sensor, sum(bytes_out) AS b, sum(coalesce(bytes_in, 0)) AS b_in, count(*) AS n,
        max(bytes_out) AS mx
    FROM gh_out GROUP BY ALL
)
SELECT src_ip, dst_ip, day, b AS bytes, b_in AS bytes_in, n AS conns, mx AS max_conn, sensor,
    list(sensor) OVER (PARTITION BY src_ip, dst_ip, day ORDER BY sensor
                       ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS sensors
FROM s
QUALIFY row_number() OVER (PARTITION BY src_ip, dst_ip, day ORDER BY b DESC, sensor) = 1
"""

EVIDENCE = """struct_pack(source_file := o.source_file, source_ref := o.source_ref, ts := o.ts,
    fields := struct_pack(src_ip := o.src_ip, dst_ip := o.dst_ip, dst_port := o.dst_port, proto := o.proto,
        service := o.service, bytes_out := o.bytes_out, bytes_in := o.bytes_in, duration := o.duration,
        source := o.source))"""


def _evidence_groups(keys: tuple[str, ...], source: str) -> str:
    """Per group of `keys` (qualified columns, e.g. "o.src_ip") over the connections `source` (a FROM
    clause naming them `o`): first / last time, row count and the evidence, largest uploads first,
    capped at MAX_EVIDENCE_ROWS."""
    cols = ", ".join(keys)
    names = ", ".join(k.split(".", 1)[1] for k in keys)
    return f"""SELECT {names}, min(ts) AS ts_first, max(ts) AS ts_last, count(*) AS n,
            list(ev ORDER BY bytes_out DESC, ts, source_file, source_ref)
                FILTER (WHERE rn <= {MAX_EVIDENCE_ROWS}) AS evidence
        FROM (
            SELECT {cols}, o.ts, o.bytes_out, o.source_file, o.source_ref, {EVIDENCE} AS ev,
                row_number() OVER (PARTITION BY {cols} ORDER BY o.bytes_out DESC, o.ts, o.source_file,
                    o.source_ref) AS rn
            {source}
        ) GROUP BY {names}"""


def _classify_ips(con: Any) -> None:
    """Temp table gh_exfil_ip(ip, valid, internal) for every distinct conn address, once each:
    internal = gridhunt.geo's private / loopback / link-local ranges or inside a `zones` CIDR."""
    zones = []
    for (z,) in con.execute("SELECT DISTINCT unnest(cidrs) FROM zones WHERE cidrs IS NOT NULL").fetchall():
        try:
            zones.append(ipaddress.ip_network(str(z).strip(), strict=False))
        except ValueError:
            continue  # the context reader reports bad CIDRs
    ips = (
        con.execute(
            "SELECT DISTINCT ip FROM (SELECT src_ip AS ip FROM conn UNION SELECT dst_ip FROM conn) WHERE ip IS NOT NULL"
        )
        .fetchnumpy()["ip"]
        .tolist()
    )
    valid, internal = [], []
    for ip in ips:
        try:
            addr = ipaddress.ip_address(str(ip).strip().split("%", 1)[0])
        except ValueError:
            valid.append(False)
            internal.append(False)
            continue
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        valid.append(True)
        internal.append(geo.is_internal(addr) or any(addr.version == n.version and addr in n for n in zones))
    tbl = pa.table(
        {
            "ip": pa.array(ips, pa.string()),
            "valid": pa.array(valid, pa.bool_()),
            "internal": pa.array(internal, pa.bool_()),
        }
    )
    temp_table(con, "gh_exfil_ip", tbl)


def prepare(ctx: Context) -> None:
    con = ctx.case.con
    _classify_ips(con)
    con.execute(OUT)
    con.execute(NAMES)
    domains.name_table(con, "gh_exfil_names", "SELECT DISTINCT name FROM gh_ip_name")
    pop = pa.table({"registered": pa.array(sorted(domains.popular_domains()), pa.string())})
    temp_table(con, "gh_popular", pop)
    con.execute(DEST)
    con.execute(PAIR_DAY)


def _allowed(allow: list[Any]) -> tuple[str, list[str]]:
    """Predicate over gh_dest columns (d.ip, d.name, d.dest) that drops allow-listed destinations:
    an address, or a name and everything below it."""
    entries = sorted({domains.normalise(str(a)) for a in allow if str(a).strip()})
    pred = """NOT EXISTS (SELECT 1 FROM (SELECT unnest(?::VARCHAR[]) AS a) x
        WHERE d.ip = x.a OR d.dest = x.a OR d.name = x.a OR ends_with(coalesce(d.name, ''), '.' || x.a))"""
    return pred, entries


# ---- per-host volume against its own baseline --------------------------------------------------


def volume_vs_baseline(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    days = int(p["baseline_days"])
    # every day the case has flow data counts, a host's quiet day as 0 bytes (from its first day on);
    # traffic to org-wide services (destinations many internal hosts use: collaboration, updates) is
    # left out, so a video call is not a spike
    # the rows of the sensor whose bytes were counted (a flow logged twice is one row)
    evidence = _evidence_groups(
        ("o.src_ip", "o.day"),
        "FROM gh_out o JOIN hit USING (src_ip, day) JOIN gh_dest d ON d.ip = o.dst_ip "
        "JOIN gh_pair_day k ON k.src_ip = o.src_ip AND k.dst_ip = o.dst_ip AND k.day = o.day "
        "AND k.sensor = o.sensor "
        "WHERE d.dest NOT IN (SELECT dest FROM common) ",
    )
    sql = f"""
    WITH pdd AS (SELECT p.*, d.dest, d.name FROM gh_pair_day p JOIN gh_dest d ON d.ip = p.dst_ip),
    common AS (SELECT dest FROM pdd GROUP BY dest HAVING count(DISTINCT src_ip) >= ?),
    pdx AS (SELECT * FROM pdd WHERE dest NOT IN (SELECT dest FROM common)),
    days AS (SELECT DISTINCT CAST(ts AT TIME ZONE 'UTC' AS DATE) AS day FROM conn WHERE ts IS NOT NULL),
    hosts AS (SELECT src_ip, min(day) AS first_day FROM gh_pair_day GROUP BY src_ip),
    daily AS (
        SELECT h.src_ip, d.day, d.day - DATE '1970-01-01' AS dn, coalesce(sum(p.bytes), 0) AS bytes,
            count(p.dst_ip) AS dests
        FROM hosts h JOIN days d ON d.day >= h.first_day
        LEFT JOIN pdx p ON p.src_ip = h.src_ip AND p.day = d.day
        GROUP BY ALL
    ), w AS (
        SELECT *, median(bytes) OVER win AS med, mad(bytes) OVER win AS mad, max(bytes) OVER win AS peak,
            count(*) OVER win AS hist
        FROM daily
        WINDOW win AS (PARTITION BY src_ip ORDER BY dn RANGE BETWEEN {days} PRECEDING AND 1 PRECEDING)
    ), hit AS (
        SELECT * FROM w
        WHERE hist >= ? AND bytes >= ? AND bytes > med + ? * mad AND bytes >= ? * med AND bytes >= ? * peak
    ), tops AS (
        SELECT p.src_ip, p.day, list(struct_pack(dst_ip := p.dst_ip, name := p.name, bytes := p.bytes,
                sensor := p.sensor) ORDER BY p.bytes DESC, p.dst_ip)[1:10] AS top_destinations
        FROM pdx p JOIN hit USING (src_ip, day)
        GROUP BY ALL
    ), ev AS (
        {evidence}
    )
    SELECT h.src_ip || ' ' || strftime(h.day, '%Y-%m-%d') AS entity, e.ts_first, e.ts_last, e.n AS count,
        e.evidence,
        CASE WHEN h.bytes >= 10 * greatest(h.med, ?) THEN 'high' END AS severity,
        struct_pack(src_ip := h.src_ip, day := h.day, bytes_out := h.bytes, destinations := h.dests,
            baseline_median := h.med, baseline_mad := h.mad, baseline_max := h.peak,
            threshold := greatest(h.med + ? * h.mad, ? * h.med, ? * h.peak, ?),
            times_median := CASE WHEN h.med > 0 THEN round(h.bytes / h.med, 1) END, history_days := h.hist,
            top_destinations := t.top_destinations, k_mad := ?, min_bytes := ?, min_times_median := ?,
            min_times_max := ?, baseline_days := {days}, min_history_days := ?,
            common_destination_hosts := ?) AS details
    FROM hit h JOIN tops t USING (src_ip, day) JOIN ev e USING (src_ip, day)
    ORDER BY e.ts_first, h.src_ip
    """
    k, mb, tm, tx = p["k_mad"], p["min_bytes"], p["min_times_median"], p["min_times_max"]
    args = [p["common_destination_hosts"], p["min_history_days"], mb, k, tm, tx, mb, k, tm, tx, mb]
    args += [k, mb, tm, tx, p["min_history_days"], p["common_destination_hosts"]]
    return query_findings(ctx, a, sql, args)


# ---- large uploads to rare destinations ----------------------------------------------------------


def large_upload_rare_destination(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    allowed, entries = _allowed(p["allow_destinations"])
    # a destination is its registered domain when a name is known, else its address
    evidence = _evidence_groups(
        ("o.src_ip", "d.dest", "o.day"),
        "FROM gh_out o JOIN gh_dest d ON d.ip = o.dst_ip JOIN hit h ON h.src_ip = o.src_ip AND h.dest = d.dest "
        "AND h.day = o.day "
        "JOIN gh_pair_day k ON k.src_ip = o.src_ip AND k.dst_ip = o.dst_ip AND k.day = o.day "
        "AND k.sensor = o.sensor ",
    )
    sql = f"""
    WITH dd AS (SELECT * FROM gh_dest d WHERE {allowed}),
    pd AS (
        SELECT p.*, d.dest, d.name, d.popular FROM gh_pair_day p JOIN dd d ON d.ip = p.dst_ip
    ), kd AS (
        SELECT src_ip, dest, day, sum(bytes) AS bytes, max(max_conn) AS max_conn, sum(conns) AS conns,
            bool_or(popular) AS popular
        FROM pd GROUP BY src_ip, dest, day
    ), rar AS (
        SELECT dest, count(DISTINCT src_ip) AS hosts FROM kd GROUP BY dest
    ), hist AS (
        -- established pair: traffic on more than max_earlier_days earlier days; in the first
        -- min_history_days of the evidence (no past to look at) on more than that many other days
        SELECT *, count(*) OVER (PARTITION BY src_ip, dest ORDER BY day
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_days,
            count(*) OVER (PARTITION BY src_ip, dest) - 1 AS other_days,
            day < (SELECT min(CAST(ts AT TIME ZONE 'UTC' AS DATE)) FROM conn) + ?::INTEGER AS early
        FROM kd
    ), hit AS (
        SELECT h.*, r.hosts FROM hist h JOIN rar r USING (dest)
        WHERE (h.max_conn >= ? OR h.bytes >= ?) AND r.hosts <= ?
            AND CASE WHEN h.early THEN h.other_days ELSE h.earlier_days END <= ?
            AND NOT (? AND coalesce(h.popular, false))
    ), names AS (
        SELECT pd.src_ip, pd.dest, pd.day, list(DISTINCT pd.dst_ip ORDER BY pd.dst_ip) AS ips, min(pd.name) AS name,
            list(DISTINCT pd.sensor ORDER BY pd.sensor) AS sensors
        FROM pd JOIN hit USING (src_ip, dest, day) GROUP BY ALL
    ), ev AS (
        {evidence}
    )
    SELECT h.src_ip || ' -> ' || h.dest AS entity, e.ts_first, e.ts_last, e.n AS count, e.evidence,
        CASE WHEN h.bytes >= 10 * ? THEN 'high' END AS severity,
        struct_pack(src_ip := h.src_ip, destination := h.dest, name := nm.name, addresses := nm.ips,
            day := h.day, bytes_out := h.bytes, largest_connection := h.max_conn, connections := h.conns,
            internal_hosts_to_destination := h.hosts, earlier_days_with_traffic := h.earlier_days,
            other_days_with_traffic := h.other_days,
            judged_against := CASE WHEN h.early THEN 'all other days (start of evidence)' ELSE 'earlier days' END,
            sensors := nm.sensors, min_single_bytes := ?, min_pair_day_bytes := ?, max_internal_hosts := ?,
            max_earlier_days := ?, min_history_days := ?) AS details
    FROM hit h JOIN ev e USING (src_ip, dest, day) JOIN names nm USING (src_ip, dest, day)
    ORDER BY e.ts_first, h.src_ip, h.dest
    """
    args: list[Any] = [entries, p["min_history_days"], p["min_single_bytes"], p["min_pair_day_bytes"]]
    args += [p["max_internal_hosts"], p["max_earlier_days"], p["skip_popular"], p["min_pair_day_bytes"]]
    args += [p["min_single_bytes"], p["min_pair_day_bytes"], p["max_internal_hosts"], p["max_earlier_days"]]
    args += [p["min_history_days"]]
    return query_findings(ctx, a, sql, args)


# ---- exfiltration over a beaconing channel (C2 + exfil, T1041) ------------------------------------


def beacon_pairs(ctx: Context) -> list[tuple[str, str | None, str | None, float]] | None:
    """Scored beacon pairs from gridhunt.detect.beacon: `beacon_pairs(ctx) -> [(src_ip, dst_ip,
    fqdn, score)]`. None (and a note) when that module or function is not there."""
    try:
        from gridhunt.detect import beacon  # imported here: the beacon theme is optional for this one
    except ImportError:
        beacon = None
    fn = getattr(beacon, "beacon_pairs", None)
    if fn is None:
        ctx.notes.append("exfil.over_c2: no beacon scoring (gridhunt.detect.beacon.beacon_pairs) to join with")
        return None
    return [(str(s), d and str(d), f and str(f), float(sc)) for s, d, f, sc in fn(ctx)]


def over_c2(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    pairs = beacon_pairs(ctx)
    if not pairs:
        return []
    con = ctx.case.con
    tbl = pa.table(
        {
            "src_ip": pa.array([x[0] for x in pairs], pa.string()),
            "dst_ip": pa.array([x[1] for x in pairs], pa.string()),
            "fqdn": pa.array([domains.normalise(x[2]) if x[2] else None for x in pairs], pa.string()),
            "score": pa.array([x[3] for x in pairs], pa.float64()),
        }
    )
    temp_table(con, "gh_beacons", tbl)
    evidence = _evidence_groups(
        ("o.src_ip", "o.c2"),
        "FROM o JOIN g USING (src_ip, c2, sensor)",  # the sensor whose uploads were counted
    )
    # a beacon's destination: its own address and every address its name was seen at
    sql = f"""
    WITH bd AS (
        SELECT src_ip, coalesce(fqdn, dst_ip) AS c2, dst_ip AS ip, score FROM gh_beacons WHERE dst_ip IS NOT NULL
        UNION
        SELECT b.src_ip, b.fqdn, n.ip, b.score FROM gh_beacons b JOIN gh_ip_names_all n ON n.name = b.fqdn
    ), bp AS (
        SELECT src_ip, c2, ip, max(score) AS score FROM bd GROUP BY ALL
    ), o AS (
        SELECT o.*, bp.c2, bp.score FROM gh_out o JOIN bp ON bp.src_ip = o.src_ip AND bp.ip = o.dst_ip
    ), med AS (
        SELECT src_ip, c2, sensor, median(bytes_out) AS med FROM o GROUP BY ALL
    ), s AS (
        -- uploads: connections far above the pair's usual (heartbeat) size
        SELECT o.src_ip, o.c2, o.sensor, sum(o.bytes_out) AS b, count(*) AS n, max(o.bytes_out) AS mx,
            any_value(m.med) AS med, count(DISTINCT o.day) AS days,
            count(*) FILTER (WHERE o.bytes_out >= greatest(?, ? * m.med)) AS up_n,
            coalesce(sum(o.bytes_out) FILTER (WHERE o.bytes_out >= greatest(?, ? * m.med)), 0) AS up_b
        FROM o JOIN med m USING (src_ip, c2, sensor) GROUP BY o.src_ip, o.c2, o.sensor
    ), g AS (
        SELECT src_ip, c2, b AS bytes, n AS conns, mx AS max_conn, med AS median_conn, days, sensor,
            up_n AS uploads, up_b AS upload_bytes
        FROM s WHERE up_b >= ?
        QUALIFY row_number() OVER (PARTITION BY src_ip, c2 ORDER BY up_b DESC, sensor) = 1
    ), meta AS (
        SELECT src_ip, c2, max(score) AS score, list(DISTINCT ip ORDER BY ip) AS ips FROM bp GROUP BY ALL
    ), posts AS (
        SELECT bp.src_ip, bp.c2, sum(h.request_body_len) AS http_request_bytes,
            count(*) FILTER (WHERE h.method = 'POST' OR h.method = 'PUT') AS http_uploads
        FROM http h JOIN bp ON bp.src_ip = h.src_ip AND bp.ip = h.dst_ip GROUP BY ALL
    ), ev AS (
        {evidence}
    )
    SELECT g.src_ip || ' -> ' || g.c2 AS entity, e.ts_first, e.ts_last, e.n AS count, e.evidence,
        CASE WHEN g.upload_bytes >= 10 * ? THEN 'critical' END AS severity,
        struct_pack(src_ip := g.src_ip, c2 := g.c2, addresses := m.ips, beacon_score := m.score,
            upload_bytes := g.upload_bytes, uploads := g.uploads, bytes_out := g.bytes, connections := g.conns,
            largest_connection := g.max_conn, median_connection := g.median_conn, days := g.days,
            sensor := g.sensor, http_request_bytes := ps.http_request_bytes, http_uploads := ps.http_uploads,
            min_bytes := ?, min_upload_bytes := ?, min_times_median := ?) AS details
    FROM g JOIN meta m USING (src_ip, c2) JOIN ev e USING (src_ip, c2)
    LEFT JOIN posts ps USING (src_ip, c2)
    ORDER BY e.ts_first, g.src_ip, g.c2
    """
    up = [p["min_upload_bytes"], p["min_times_median"]]
    args = [*up, *up, p["min_bytes"], p["min_bytes"], p["min_bytes"], *up]
    return query_findings(ctx, a, sql, args)


ANALYTICS = (
    Analytic(
        "exfil.volume_vs_baseline",
        "Host sends far more data out than on its usual days",
        "medium",
        ("T1048", "T1030"),
        ("conn",),
        volume_vs_baseline,
    ),
    Analytic(
        "exfil.large_upload_rare_destination",
        "Large upload to a destination few internal hosts use",
        "medium",
        ("T1048", "T1567"),
        ("conn",),
        large_upload_rare_destination,
    ),
    Analytic(
        "exfil.over_c2",
        "Outbound volume to a destination that is also beaconing (C2 + exfiltration)",
        "high",
        ("T1041",),
        ("conn",),
        over_c2,
    ),
)
