"""Network analytics over `conn`: beacons (the RITA v5 model), strobes, long connections, rare destinations.

Everything starts from one set of rows, `gh_net_rows` (a temp table built by `prepare_network`):
the `conn` rows from an internal source (`geo.is_internal`, or inside a `zones` CIDR) to an external
destination, each keyed to a *pair* = (source IP, destination) where the destination is the FQDN
when one is known — TLS SNI or HTTP Host of the same Zeek `uid` (RITA v5's "SNI beacons"), else the
source's own latest DNS answer for that address (ours, `fqdn_from_dns_hours`) — and the destination
IP otherwise. A connection belongs to exactly one pair, so nothing is scored twice; and a flow that
both Zeek and the firewall logged counts once (per address pair and window, only the preferred
sensor's rows are kept: zeek > firewall > other, as Zeek has the uid that names the destination).

Scoring follows RITA v5 (github.com/activecm/rita, `analysis/beacons.go`; thresholds from its
`default_config.hjson`; the 24 h beacon window from `database/db.go` GetBeaconMinMaxTimestamps).
RITA scores the last 24 h of a dataset; a hunt covers days or weeks, so we cut the evidence into 24 h
windows counting back from the last `conn` record (window 0 is exactly RITA's), score every window
of every pair, and report the pair's best window. Per pair and window, with at least `min_connections`
distinct timestamps (whole seconds, as RITA stores them) and fewer than a strobe's connections:

  timestamp score  over the sorted non-zero intervals between distinct timestamps:
                   mean of (1 - |Bowley skewness|) and the MADM score (median - MAD) / median
  data-size score  the same over bytes sent by the source per connection (Zeek orig_bytes; RITA
                   uses orig_ip_bytes, which `conn` does not keep); MADM score 0 when the median
                   is under 1 byte (RITA's default for sizes)
  duration score   0 unless >= 6 of the 24 histogram bins hold connections; then the larger of
                   coverage (pair's last - first timestamp over the window length) and
                   consistency (longest run of consecutive non-empty bins, wrapping, over 12)
  histogram score  connections per bin, 24 equal bins over the window (hourly for a full 24 h):
                   the larger of 1 - coefficient of variation and the bimodal fit (share of bars
                   in the two most common bar heights, heights grouped by 5 % of the tallest, one
                   outlier bar forgiven, only with >= 11 bars)
  score            0.25 each, rounded to 3 decimals like RITA

Each formula below names the RITA function it follows. Pairs with >= `connections_per_day`
(86,400) connections in a window are strobes: not beacon-scored (as in RITA), reported by
`net.strobe`. Library use (the CLI and other analytics):

    from gridhunt.detect.beacon import beacon_scores, prepare_network
    rows = beacon_scores(case, settings, min_score=0.7)   # list of dicts, one per pair
    prepare_network(case, settings)                       # or join the temp tables in SQL:
    #   gh_net_beacons  one row per scored pair (or strobe): src_ip, dst, kind, dst_ips, score, ...
    #   gh_net_rows     the conn rows behind them: rid (conn rowid), pair_id, w, ts, src_ip, dst_ip, dst, ...
    beacon_pairs(ctx)  # [(src_ip, dst_ip, fqdn, score)] at or above net.beacon.min_score (exfil.over_c2)
"""

from __future__ import annotations

import csv
import ipaddress
import json
import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from gridhunt import geo
from gridhunt.detect.base import MAX_EVIDENCE_ROWS, Analytic, Context, query_findings
from gridhunt.detect.domains import NORMALISE_SQL
from gridhunt.detect.zones import parse_cidrs
from gridhunt.report.findings import Finding
from gridhunt.sql import sql_literal, temp_table

DAY_S = 86_400
BINS = 24  # RITA: getHistogramScore(..., beaconTimeSpan=24)
BEACONS = "gh_net_beacons"
BEACON_CHUNK = 40  # pairs per findings query
ROWS = "gh_net_rows"
# sensors in order of preference when two saw the same flow: Zeek has uids (SNI / Host) and exact bytes
SOURCE_RANK = "CASE source WHEN 'zeek' THEN 0 WHEN 'firewall' THEN 1 ELSE 2 END"
SORTS = {
    "score": "strobe DESC, score DESC NULLS LAST",
    "connections": "connections DESC",
    "bytes": "bytes_out + bytes_in DESC",
    "first": "first_seen ASC",
    "last": "last_seen DESC",
}
EXPORT_COLUMNS = (
    "score", "strobe", "src_ip", "dst", "kind", "dst_ips", "ts_score", "ds_score", "dur_score", "hist_score",
    "connections", "bytes_out", "bytes_in", "first_seen", "last_seen", "window_start", "window_end",
    "window_connections", "windows_scored", "max_window_connections", "ts_interval_median_s", "ts_interval_mad_s",
    "ts_skew", "ds_median_bytes", "ds_mad_bytes", "ds_skew", "hist_cv_score", "hist_bimodal_score", "hours_seen",
    "longest_run_hours", "dur_coverage", "dur_consistency", "named_by", "sources",
)  # fmt: skip


@dataclass
class NetSummary:
    """What prepare_network built (also the notes an analytic reports)."""

    rows: int = 0  # internal -> external conn rows kept (after sensor de-duplication)
    duplicate_rows: int = 0  # rows of a flow another, preferred sensor also logged
    allowed_rows: int = 0  # rows dropped by allow_domains / allow_cidrs
    allowed_destinations: int = 0
    named_tls: int = 0
    named_http: int = 0
    named_dns: int = 0
    pairs: int = 0
    windows: int = 0
    pair_windows_scored: int = 0
    pairs_scored: int = 0
    strobes: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    seconds: float = 0.0

    def notes(self) -> list[str]:
        out = [
            f"net: {self.rows:,} internal->external connections, {self.pairs:,} pairs, {self.windows} 24 h "
            f"window(s) back from {self.last_ts}; {self.pairs_scored:,} pairs beacon-scored "
            f"({self.pair_windows_scored:,} pair-windows), {self.strobes} strobe(s)",
            f"net: destination names: {self.named_tls:,} connections by TLS SNI, {self.named_http:,} by HTTP Host, "
            f"{self.named_dns:,} by the source's DNS answers; the rest by IP",
        ]
        if self.duplicate_rows:
            out.append(f"net: {self.duplicate_rows:,} rows left out: the same address pair and window seen by a "
                       "preferred sensor (zeek > firewall > other)")  # fmt: skip
        if self.allowed_rows:
            out.append(f"net: allow-lists dropped {self.allowed_rows:,} connections to "
                       f"{self.allowed_destinations:,} destinations before scoring")  # fmt: skip
        return out


# --------------------------------------------------------------------------------------------
# RITA v5 formulas, vectorised over pair-windows (numpy arrays, one element per pair-window)
# --------------------------------------------------------------------------------------------


def _round3(x: np.ndarray) -> np.ndarray:
    # Go's math.Round(x*1000)/1000 rounds half away from zero (numpy's round is half-to-even)
    return np.floor(np.asarray(x, dtype=float) * 1000 + 0.5) / 1000


def _ceil3(x: np.ndarray) -> np.ndarray:
    return np.ceil(np.asarray(x, dtype=float) * 1000) / 1000


def bowley(q1: np.ndarray, q2: np.ndarray, q3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(skewness, score). RITA calculateBowleySkewness: (Q1 + Q3 - 2 Q2) / (Q3 - Q1), taken as 0 when
    Q3 - Q1 < 10 or the median equals a quartile; score = 1 - |skewness|. Quartiles are montanaflynn/stats
    Quartile's: medians of the lower and upper halves, the middle value left out of both when n is odd."""
    den = q3 - q1
    ok = (den >= 10) & (q2 != q1) & (q2 != q3)
    skew = np.where(ok, (q1 + q3 - 2 * q2) / np.where(ok, den, 1.0), 0.0)
    return skew, 1.0 - np.abs(skew)


def madm(median: np.ndarray, mad: np.ndarray, default: float) -> np.ndarray:
    """RITA calculateMedianAbsoluteDeviation: (median - MAD) / median, MAD = median |x - median|
    (montanaflynn MedianAbsoluteDeviation); `default` when the median is under 1 (1 for intervals,
    0 for sizes); negative or NaN -> 0."""
    ok = median >= 1
    score = np.where(ok, (median - mad) / np.where(ok, median, 1.0), default)
    return np.where(np.isnan(score) | (score < 0), 0.0, score)


def histogram_scores(
    hist: np.ndarray, sensitivity: float, outlier_removal: int, bimodal_min_bars: int
) -> dict[str, np.ndarray]:
    """`hist`: (n, 24) connection counts per bin. RITA getHistogramScore / getFrequencyCounts /
    calculateCoefficientOfVariationScore / calculateBimodalFitScore."""
    hist = np.asarray(hist, dtype=float)
    n, bins = hist.shape
    mean = hist.sum(1) / bins
    # coefficient of variation with the population standard deviation; 1 - cv, 0 when cv > 1
    cv = np.sqrt(((hist - mean[:, None]) ** 2).mean(1)) / np.where(mean > 0, mean, 1.0)
    cv_score = np.minimum(np.where(cv > 1, 0.0, _round3(1 - cv)), 1.0)
    bars = (hist > 0).sum(1)
    # bimodal fit: bar heights bucketed by ceil(tallest * sensitivity); the two most common buckets'
    # bar counts over (bars - outlier_removal); RITA falls back to 11 bars when configured under 6
    min_bars = bimodal_min_bars if bimodal_min_bars >= 6 else 11
    bimodal = np.zeros(n)
    step = 20_000  # (chunk, 24, 24) comparison cube stays ~10 MB
    for lo in range(0, n, step):
        h = hist[lo : lo + step]
        size = np.maximum(np.ceil(h.max(1) * sensitivity), 1.0)
        bucket = np.where(h > 0, np.floor(h / size[:, None]) * size[:, None], -1.0)
        same = (bucket[:, :, None] == bucket[:, None, :]) & (bucket[:, :, None] >= 0)
        count = same.sum(2)  # bars sharing each bar's bucket (0 for empty bins)
        top = count.max(1)
        top_bucket = bucket[np.arange(len(h)), count.argmax(1)]
        second = np.where(bucket == top_bucket[:, None], 0, count).max(1)
        fit = (top + second) / np.maximum(bars[lo : lo + step] - outlier_removal, 1)
        bimodal[lo : lo + step] = np.where(bars[lo : lo + step] >= min_bars, np.minimum(_round3(fit), 1.0), 0.0)
    # longest run of consecutive non-empty bins, wrapping from the last bin to the first
    run = np.zeros(n)
    longest = np.zeros(n)
    nonzero = hist > 0
    for j in range(2 * bins):
        run = np.where(nonzero[:, j % bins], run + 1, 0)
        longest = np.maximum(longest, run)
    return {
        "hist_score": np.maximum(cv_score, bimodal),
        "hist_cv_score": cv_score,
        "hist_bimodal_score": bimodal,
        "hours_seen": bars,
        "longest_run_hours": np.minimum(longest, bins),
    }


def duration_scores(
    window_start: np.ndarray,
    window_end: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    bars: np.ndarray,
    longest_run: np.ndarray,
    min_hours: int,
    ideal_hours: int,
) -> dict[str, np.ndarray]:
    """RITA getDurationScore: with >= min_hours non-empty bins, the larger of coverage
    ceil3((last - first) / window length) and consistency ceil3(longest run / ideal_hours), each capped at 1."""
    coverage = np.minimum(_ceil3((last - first) / np.maximum(window_end - window_start, 1)), 1.0)
    consistency = np.minimum(_ceil3(longest_run / ideal_hours), 1.0)
    enough = bars >= min_hours
    return {
        "dur_score": np.where(enough, np.maximum(coverage, consistency), 0.0),
        "dur_coverage": np.where(enough, coverage, 0.0),
        "dur_consistency": np.where(enough, consistency, 0.0),
    }


def score_pair_windows(a: dict[str, np.ndarray], hist: np.ndarray, p: dict[str, Any]) -> dict[str, np.ndarray]:
    """All four RITA v5 scores for pair-windows. `a` holds, per pair-window: ts_q1/ts_q2/ts_q3/ts_mad
    (intervals), ds_q1/ds_q2/ds_q3/ds_mad (sizes), first_s/last_s (pair), w_start/w_end (window)."""
    # RITA getTimestampScore -> calculateStatisticalScore(deltas, defaultMadScore=1)
    ts_skew, ts_skew_score = bowley(a["ts_q1"], a["ts_q2"], a["ts_q3"])
    ts_score = _round3((ts_skew_score + madm(a["ts_q2"], a["ts_mad"], 1.0)) / 2)
    # RITA getDataSizeScore -> calculateStatisticalScore(bytes, defaultMadScore=0)
    ds_skew, ds_skew_score = bowley(a["ds_q1"], a["ds_q2"], a["ds_q3"])
    ds_score = _round3((ds_skew_score + madm(a["ds_q2"], a["ds_mad"], 0.0)) / 2)
    h = histogram_scores(
        hist, p["histogram_mode_sensitivity"], p["histogram_bimodal_outlier_removal"],
        p["histogram_bimodal_min_hours_seen"],
    )  # fmt: skip
    d = duration_scores(
        a["w_start"], a["w_end"], a["first_s"], a["last_s"], h["hours_seen"], h["longest_run_hours"],
        p["duration_min_hours_seen"], p["duration_ideal_hours"],
    )  # fmt: skip
    # RITA getBeaconScore: weighted sum, rounded to 3 decimals
    score = _round3(
        p["timestamp_weight"] * ts_score + p["datasize_weight"] * ds_score
        + p["duration_weight"] * d["dur_score"] + p["histogram_weight"] * h["hist_score"]
    )  # fmt: skip
    return {
        "score": score, "ts_score": ts_score, "ds_score": ds_score, "dur_score": d["dur_score"],
        "hist_score": h["hist_score"], "ts_skew": ts_skew, "ds_skew": ds_skew, **h, **d,
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# building the tables
# --------------------------------------------------------------------------------------------


def _check(p: dict[str, Any]) -> None:
    weights = [p[k] for k in ("timestamp_weight", "datasize_weight", "duration_weight", "histogram_weight")]
    if any(w < 0 or w > 1 for w in weights) or abs(sum(weights) - 1) > 1e-6:
        raise ValueError(f"net.beacon: the four *_weight settings must lie in 0..1 and sum to 1, got {weights}")
    if p["min_connections"] < 4:  # RITA: three intervals at least (getTimestampScore)
        raise ValueError("net.beacon.min_connections: at least 4 (three intervals are needed)")
    if p["histogram_mode_sensitivity"] <= 0:
        raise ValueError("net.beacon.histogram_mode_sensitivity must be > 0")
    if p["duration_min_hours_seen"] < 1 or p["duration_ideal_hours"] < 1:
        raise ValueError("net.beacon.duration_min_hours_seen and duration_ideal_hours must be >= 1")


def _domain_regex(domains: list[Any]) -> str | None:
    names = sorted({str(d).strip().lower().lstrip("*").strip(".") for d in domains} - {""})
    if not names:
        return None
    # a name matches itself and its subdomains
    return r"(.*\.)?(" + "|".join(re.escape(n) for n in names) + r")"


def _classify_ips(case: Any, allow: list[Any]) -> None:
    """Temp table gh_net_ip(ip, valid, internal, allowed) for every distinct conn address; IPv4 with
    numpy masks, anything else with `ipaddress` (one Python call per distinct address, never per row)."""
    zones = [
        r[0] for r in case.con.execute("SELECT DISTINCT unnest(cidrs) FROM zones WHERE cidrs IS NOT NULL").fetchall()
    ]
    zone_nets = []
    for z in zones:
        try:
            zone_nets.append(ipaddress.ip_network(str(z).strip(), strict=False))
        except ValueError:
            continue  # the context ingest already reported it
    internal_nets = [*geo.INTERNAL_NETWORKS, *zone_nets]
    allow_nets = parse_cidrs(allow, "net.beacon.allow_cidrs")
    octet = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    got = case.con.execute(
        f"""SELECT ip, CASE WHEN regexp_full_match(ip, '{octet}(\\.{octet}){{3}}') THEN
                split_part(ip, '.', 1)::BIGINT * 16777216 + split_part(ip, '.', 2)::BIGINT * 65536
                + split_part(ip, '.', 3)::BIGINT * 256 + split_part(ip, '.', 4)::BIGINT ELSE -1 END AS v4
        FROM (SELECT src_ip AS ip FROM conn UNION SELECT dst_ip FROM conn) WHERE ip IS NOT NULL"""
    ).fetchnumpy()
    ips, v4 = got["ip"], np.asarray(got["v4"], dtype=np.int64)
    is4 = v4 >= 0

    def hits(nets: list[Any]) -> np.ndarray:
        out = np.zeros(len(ips), dtype=bool)
        for net in nets:
            if net.version == 4:
                mask = (0xFFFFFFFF << (32 - net.prefixlen)) & 0xFFFFFFFF
                out |= is4 & ((v4 & mask) == int(net.network_address))
        return out

    valid, internal, allowed = is4.copy(), hits(internal_nets), hits(allow_nets)
    for i in np.flatnonzero(~is4):  # IPv6, IPv4-mapped, or not an address at all
        try:
            addr = ipaddress.ip_address(str(ips[i]).strip().split("%", 1)[0])
        except ValueError:
            continue
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        valid[i] = True
        internal[i] = geo.is_internal(addr) or any(addr.version == n.version and addr in n for n in zone_nets)
        allowed[i] = any(addr.version == n.version and addr in n for n in allow_nets)
    tbl = pa.table(
        {"ip": pa.array(ips.tolist(), pa.string()), "valid": valid, "internal": internal, "allowed": allowed}
    )
    temp_table(case.con, "gh_net_ip", tbl)


def _cache_key(case: Any, settings: dict[str, dict[str, Any]]) -> str:
    stats = case.con.execute(
        """SELECT (SELECT count(*) FROM conn), (SELECT max(ts)::VARCHAR FROM conn), (SELECT count(*) FROM dns),
            (SELECT count(*) FROM http), (SELECT count(*) FROM tls), (SELECT count(*) FROM zones)"""
    ).fetchall()[0]
    used = {k: settings.get(k, {}) for k in ("net.beacon", "net.strobe")}
    return json.dumps([used, list(stats)], sort_keys=True, default=str)


def prepare_network(case: Any, settings: dict[str, dict[str, Any]] | None = None) -> NetSummary:
    """Build (or reuse, when the tables and settings are unchanged) gh_net_ip, gh_net_rows, gh_net_pw
    (pair x window aggregates) and gh_net_beacons (scored pairs and strobes)."""
    from gridhunt.detect.settings import load_settings

    settings = settings if settings is not None else load_settings()
    p = settings["net.beacon"]
    strobe_at = int(settings["net.strobe"]["connections_per_day"])
    _check(p)
    key = _cache_key(case, settings)
    con = case.con
    con.execute("CREATE TEMP TABLE IF NOT EXISTS gh_net_meta (key VARCHAR, summary VARCHAR)")
    cached = con.execute("SELECT summary FROM gh_net_meta WHERE key = ?", [key]).fetchall()
    if cached:
        return NetSummary(**json.loads(cached[0][0]))
    started = time.perf_counter()
    summary = NetSummary()
    _classify_ips(case, p["allow_cidrs"])
    lo_s, hi_s, lo_ts, hi_ts = con.execute(
        "SELECT epoch_ms(min(ts)) // 1000, epoch_ms(max(ts)) // 1000, min(ts)::VARCHAR, max(ts)::VARCHAR FROM conn"
    ).fetchall()[0]
    if hi_s is None:
        lo_s = hi_s = 0
    summary.first_ts, summary.last_ts = lo_ts, hi_ts
    _build_rows(case, p, int(lo_s), int(hi_s))
    counts = con.execute(
        f"""SELECT count(*) FILTER (WHERE NOT allowed), count(*) FILTER (WHERE allowed),
            count(DISTINCT CASE WHEN allowed THEN dst END), count(*) FILTER (WHERE named_by = 'tls'),
            count(*) FILTER (WHERE named_by = 'http'), count(*) FILTER (WHERE named_by = 'dns'),
            count(DISTINCT pair_id) FILTER (WHERE NOT allowed), count(DISTINCT w)
        FROM {ROWS}"""
    ).fetchall()[0]
    (summary.rows, summary.allowed_rows, summary.allowed_destinations, summary.named_tls, summary.named_http,
     summary.named_dns, summary.pairs, summary.windows) = (int(x or 0) for x in counts)  # fmt: skip
    summary.duplicate_rows = int(con.execute("SELECT n FROM gh_net_dups").fetchall()[0][0])
    _build_pair_windows(case, p, int(lo_s), int(hi_s), strobe_at)
    summary.pair_windows_scored = _score(case, p)
    _build_beacons(case, p, strobe_at)
    summary.pairs_scored, summary.strobes = (
        int(x or 0)
        for x in con.execute(f"SELECT count(score), count(*) FILTER (WHERE strobe) FROM {BEACONS}").fetchall()[0]
    )
    summary.seconds = round(time.perf_counter() - started, 3)
    con.execute("DELETE FROM gh_net_meta")
    con.execute("INSERT INTO gh_net_meta VALUES (?, ?)", [key, json.dumps(asdict(summary))])
    return summary


def _build_rows(case: Any, p: dict[str, Any], lo_s: int, hi_s: int) -> None:
    con = case.con
    hours = int(p["fqdn_from_dns_hours"])
    ip_literal = r"\d+\.\d+\.\d+\.\d+(:\d+)?"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_net_base AS
        SELECT c.rowid AS rid, c.ts, epoch_ms(c.ts) // 1000 AS ts_s, c.src_ip, c.dst_ip, c.uid,
            coalesce(c.source, '') AS source, coalesce(c.duration, 0)::DOUBLE AS duration,
            coalesce(c.bytes_out, 0) AS bytes_out, coalesce(c.bytes_in, 0) AS bytes_in, d.allowed AS ip_allowed,
            greatest(({hi_s} - epoch_ms(c.ts) // 1000 - 1) // {DAY_S}, 0) AS w
        FROM conn c JOIN gh_net_ip s ON s.ip = c.src_ip JOIN gh_net_ip d ON d.ip = c.dst_ip
        WHERE c.ts IS NOT NULL AND s.valid AND d.valid AND s.internal AND NOT d.internal"""
    )
    # one sensor per address pair and window: a flow in both Zeek and the firewall log counts once
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_net_best AS
        SELECT src_ip, dst_ip, w, min({SOURCE_RANK}) AS rank FROM gh_net_base GROUP BY ALL"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_net_dups AS SELECT count(*) AS n FROM gh_net_base b
        JOIN gh_net_best x USING (src_ip, dst_ip, w) WHERE {SOURCE_RANK.replace("source", "b.source")} > x.rank"""
    )
    dns_join = dns_name = ""
    if hours > 0:
        # the source's most recent answer naming that address, no older than fqdn_from_dns_hours
        qname = NORMALISE_SQL.format(col="query")
        dns_join = f"""ASOF LEFT JOIN (
            SELECT src_ip, ip, ts AS dns_ts, name FROM (
                SELECT src_ip, ts, {qname} AS name, trim(unnest(string_split(answers, ','))) AS ip
                FROM dns WHERE answers IS NOT NULL AND query IS NOT NULL AND query <> '' AND src_ip IS NOT NULL
                    AND src_ip IN (SELECT DISTINCT src_ip FROM gh_net_best))
            WHERE regexp_full_match(ip, '\\d+\\.\\d+\\.\\d+\\.\\d+') OR ip LIKE '%:%:%'
        ) m ON k.src_ip = m.src_ip AND k.dst_ip = m.ip AND k.ts >= m.dns_ts"""
        dns_name = f"CASE WHEN m.dns_ts >= k.ts - to_hours({hours}) THEN m.name END"
    else:
        dns_name = "NULL::VARCHAR"
    name_ok = f"NOT regexp_full_match({{c}}, '{ip_literal}') AND {{c}} NOT LIKE '%:%:%' AND {{c}} NOT IN ('', '-')"
    regex = _domain_regex(p["allow_domains"])
    allow_name = f"regexp_full_match(fqdn, {sql_literal(regex)})" if regex else "false"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {ROWS} AS
        WITH k AS (
            SELECT b.* FROM gh_net_base b JOIN gh_net_best x USING (src_ip, dst_ip, w)
            WHERE {SOURCE_RANK.replace("source", "b.source")} = x.rank
        ), sni AS (
            SELECT uid, min({NORMALISE_SQL.format(col="server_name")}) AS name FROM tls
            WHERE uid IS NOT NULL AND server_name IS NOT NULL AND {name_ok.format(c="server_name")} GROUP BY uid
        ), host AS (
            SELECT uid, min(lower(regexp_replace(host, ':\\d+$', ''))) AS name FROM http
            WHERE uid IS NOT NULL AND host IS NOT NULL AND {name_ok.format(c="host")} GROUP BY uid
        ), named AS (
            SELECT k.*, sni.name AS sni_name, host.name AS host_name, {dns_name} AS dns_name
            FROM k {dns_join}
            LEFT JOIN sni ON sni.uid = k.uid LEFT JOIN host ON host.uid = k.uid
        ), keyed AS (
            SELECT *, coalesce(sni_name, host_name, dns_name) AS fqdn,
                CASE WHEN sni_name IS NOT NULL THEN 'tls' WHEN host_name IS NOT NULL THEN 'http'
                     WHEN dns_name IS NOT NULL THEN 'dns' END AS named_by
            FROM named
        )
        SELECT rid, ts, ts_s, w, src_ip, dst_ip, source, duration, bytes_out, bytes_in, fqdn, named_by,
            CASE WHEN fqdn IS NULL THEN 'ip' ELSE 'fqdn' END AS kind, coalesce(fqdn, dst_ip) AS dst,
            hash(src_ip, coalesce(fqdn, dst_ip), fqdn IS NULL) AS pair_id,
            ip_allowed OR coalesce({allow_name}, false) AS allowed
        FROM keyed"""
    )
    con.execute("DROP TABLE IF EXISTS gh_net_base")
    con.execute("DROP TABLE IF EXISTS gh_net_best")


def _build_pair_windows(case: Any, p: dict[str, Any], lo_s: int, hi_s: int, strobe_at: int) -> None:
    con = case.con
    # window 0 is [hi - 24 h, hi] (RITA's); window w > 0 holds hi - (w+1) day < ts < hi - w day; the oldest
    # starts at the first conn record
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_net_pw AS
        SELECT pair_id, w, any_value(src_ip) AS src_ip, any_value(kind) AS kind, any_value(dst) AS dst,
            count(*) AS n, count(DISTINCT ts_s) AS n_unique, min(ts_s) AS first_s, max(ts_s) AS last_s,
            min(ts) AS first_ts, max(ts) AS last_ts, sum(duration) AS total_duration, max(duration) AS max_duration,
            sum(bytes_out) AS bytes_out, sum(bytes_in) AS bytes_in,
            greatest({hi_s} - (w + 1) * {DAY_S}, {lo_s}) AS w_start, {hi_s} - w * {DAY_S} AS w_end
        FROM {ROWS} WHERE NOT allowed GROUP BY pair_id, w"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gh_net_cand AS
        SELECT row_number() OVER (ORDER BY pair_id, w) - 1 AS ix, pair_id, w, w_start, w_end, first_s, last_s
        FROM gh_net_pw WHERE n_unique >= {int(p["min_connections"])} AND n < {strobe_at} AND w_end > w_start"""
    )


def _quartile_sql(values: str, distinct: bool) -> str:
    """Per candidate pair-window: montanaflynn Quartile (Q1/Q3 = medians of the lower/upper half,
    the middle value in neither when n is odd), the median, and the MAD of `values`."""
    if distinct:  # intervals between distinct timestamps (RITA drops zero intervals)
        src = f"""SELECT pair_id, w, ts_s - lag(ts_s) OVER (PARTITION BY pair_id, w ORDER BY ts_s) AS v
            FROM (SELECT DISTINCT r.pair_id, r.w, r.ts_s FROM {ROWS} r SEMI JOIN gh_net_cand c
                  ON c.pair_id = r.pair_id AND c.w = r.w WHERE NOT r.allowed)"""
    else:
        src = f"""SELECT r.pair_id, r.w, r.{values} AS v FROM {ROWS} r SEMI JOIN gh_net_cand c
            ON c.pair_id = r.pair_id AND c.w = r.w WHERE NOT r.allowed"""
    return f"""
    WITH s AS ({src}), o AS (
        SELECT pair_id, w, v::DOUBLE AS v, row_number() OVER (PARTITION BY pair_id, w ORDER BY v) AS rn,
            count(*) OVER (PARTITION BY pair_id, w) AS m
        FROM s WHERE v IS NOT NULL
    )
    SELECT pair_id, w, median(v) FILTER (WHERE rn <= m // 2) AS q1, median(v) AS q2,
        median(v) FILTER (WHERE rn > (m + 1) // 2) AS q3, mad(v) AS mad
    FROM o GROUP BY pair_id, w"""


SCORE_COLUMNS = (
    "score", "ts_score", "ds_score", "dur_score", "hist_score", "ts_skew", "ds_skew", "hist_cv_score",
    "hist_bimodal_score", "hours_seen", "longest_run_hours", "dur_coverage", "dur_consistency",
)  # fmt: skip


def _score(case: Any, p: dict[str, Any]) -> int:
    """Quartiles / MAD / histograms in DuckDB, the RITA formulas in numpy, results in gh_net_scores."""
    con = case.con
    con.execute(f"CREATE OR REPLACE TEMP TABLE gh_net_tsq AS {_quartile_sql('ts_s', True)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE gh_net_dsq AS {_quartile_sql('bytes_out', False)}")
    got = con.execute(
        """SELECT c.ix, c.w_start::DOUBLE AS w_start, c.w_end::DOUBLE AS w_end, c.first_s::DOUBLE AS first_s,
            c.last_s::DOUBLE AS last_s, t.q1 AS ts_q1, t.q2 AS ts_q2, t.q3 AS ts_q3, t.mad AS ts_mad,
            d.q1 AS ds_q1, d.q2 AS ds_q2, d.q3 AS ds_q3, d.mad AS ds_mad
        FROM gh_net_cand c JOIN gh_net_tsq t USING (pair_id, w) JOIN gh_net_dsq d USING (pair_id, w) ORDER BY c.ix"""
    ).fetchnumpy()
    ix = np.asarray(got.pop("ix"), dtype=np.int64)
    a = {k: np.asarray(v, dtype=float) for k, v in got.items()}
    n = len(ix)
    # RITA computeHistogramBins / createHistogram: 24 equal bins from window start to end, the end in the last
    h = con.execute(
        f"""SELECT c.ix, least(floor((r.ts_s - c.w_start) * {BINS}.0 / (c.w_end - c.w_start)), {BINS - 1})::INT AS bin,
            count(*) AS k
        FROM {ROWS} r JOIN gh_net_cand c ON c.pair_id = r.pair_id AND c.w = r.w WHERE NOT r.allowed GROUP BY ALL"""
    ).fetchnumpy()
    hist = np.zeros((n, BINS), dtype=np.int64)
    # ix is dense 0..n-1 and every candidate has >= 3 intervals, so row i of `a` is candidate i
    hist[np.asarray(h["ix"], dtype=np.int64), np.asarray(h["bin"], dtype=np.int64)] = h["k"]
    s = score_pair_windows(a, hist, p) if n else {k: np.zeros(0) for k in SCORE_COLUMNS}
    cols: dict[str, Any] = {"ix": ix, **{k: np.asarray(s[k], dtype=float) for k in SCORE_COLUMNS}}
    cols.update(ts_interval_median_s=a["ts_q2"], ts_interval_mad_s=a["ts_mad"],
                ds_median_bytes=a["ds_q2"], ds_mad_bytes=a["ds_mad"])  # fmt: skip
    offsets = pa.array(np.arange(0, n * BINS + 1, BINS, dtype=np.int32))
    cols["hourly_connections"] = pa.ListArray.from_arrays(offsets, pa.array(hist.reshape(-1), pa.int64()))
    temp_table(con, "gh_net_scores", pa.table(cols))
    for t in ("gh_net_tsq", "gh_net_dsq"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return n


def _build_beacons(case: Any, p: dict[str, Any], strobe_at: int) -> None:
    min_score = float(p["min_score"])
    case.con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {BEACONS} AS
        WITH s AS (
            SELECT c.pair_id, c.w, c.w_start, c.w_end, x.* EXCLUDE (ix)
            FROM gh_net_cand c JOIN gh_net_scores x USING (ix)
        ), best AS (
            SELECT *, count(*) OVER (PARTITION BY pair_id) AS windows_scored,
                count(*) FILTER (WHERE score >= {min_score}) OVER (PARTITION BY pair_id) AS windows_at_min_score
            FROM s QUALIFY row_number() OVER (PARTITION BY pair_id ORDER BY score DESC, w) = 1
        ), tot AS (
            SELECT pair_id, any_value(src_ip) AS src_ip, any_value(kind) AS kind, any_value(dst) AS dst,
                sum(n)::BIGINT AS connections, sum(bytes_out)::BIGINT AS bytes_out, sum(bytes_in)::BIGINT AS bytes_in,
                min(first_ts) AS first_seen, max(last_ts) AS last_seen, max(n) AS max_window_connections,
                max(n) >= {strobe_at} AS strobe, sum(total_duration) AS total_duration
            FROM gh_net_pw GROUP BY pair_id
        ), keep AS (
            SELECT t.* FROM tot t WHERE t.strobe OR t.pair_id IN (SELECT pair_id FROM best)
        ), meta AS (
            SELECT r.pair_id, list(DISTINCT r.dst_ip ORDER BY r.dst_ip)[1:10] AS dst_ips,
                list(DISTINCT r.source ORDER BY r.source) AS sources,
                list(DISTINCT r.named_by ORDER BY r.named_by) FILTER (WHERE r.named_by IS NOT NULL) AS named_by
            FROM {ROWS} r SEMI JOIN keep k ON k.pair_id = r.pair_id WHERE NOT r.allowed GROUP BY r.pair_id
        ), wpw AS (
            SELECT pair_id, w, n AS window_connections FROM gh_net_pw
        )
        SELECT k.pair_id, k.src_ip, k.dst, k.kind, m.dst_ips, m.sources, m.named_by, k.strobe,
            b.score, b.ts_score, b.ds_score, b.dur_score, b.hist_score, k.connections, k.bytes_out, k.bytes_in,
            k.first_seen, k.last_seen, to_timestamp(b.w_start) AS window_start, to_timestamp(b.w_end) AS window_end,
            b.w AS window, wpw.window_connections, coalesce(b.windows_scored, 0) AS windows_scored,
            coalesce(b.windows_at_min_score, 0) AS windows_at_min_score, k.max_window_connections,
            b.ts_interval_median_s, b.ts_interval_mad_s, b.ts_skew, b.ds_median_bytes, b.ds_mad_bytes, b.ds_skew,
            b.hist_cv_score, b.hist_bimodal_score, b.hourly_connections, b.hours_seen::INT AS hours_seen,
            b.longest_run_hours::INT AS longest_run_hours, b.dur_coverage, b.dur_consistency
        FROM keep k LEFT JOIN best b USING (pair_id) LEFT JOIN meta m USING (pair_id)
        LEFT JOIN wpw ON wpw.pair_id = b.pair_id AND wpw.w = b.w"""
    )


# --------------------------------------------------------------------------------------------
# library entry points
# --------------------------------------------------------------------------------------------


def beacon_scores(
    case: Any,
    settings: dict[str, dict[str, Any]] | None = None,
    min_score: float = 0.0,
    sort: str = "score",
    limit: int | None = None,
    strobes: bool = True,
) -> list[dict[str, Any]]:
    """One dict per scored pair (and per strobe when `strobes`), RITA-style: score, the four
    components, connections, bytes, first / last seen, the best window and its statistics.
    `sort`: score (strobes first, then highest), connections, bytes (most first), first (oldest
    first), last (most recent first). Pairs under 4 distinct timestamps in every window are absent."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}")
    prepare_network(case, settings)
    where = "score >= ?" + (" OR strobe" if strobes else "")
    sql = f"""SELECT * EXCLUDE (pair_id) FROM {BEACONS} WHERE {where}
        ORDER BY {SORTS[sort]}, score DESC NULLS LAST, src_ip, dst"""
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    cur = case.con.execute(sql, [float(min_score)])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def beacon_pairs(ctx: Context) -> list[tuple[str, str, str | None, float]]:
    """Beaconing pairs at or above net.beacon.min_score as (src_ip, dst_ip, fqdn, score): one tuple per
    destination address the pair used (fqdn None for IP beacons). For exfil.over_c2."""
    prepare_network(ctx.case, ctx.settings)
    min_score = float(ctx.params("net.beacon")["min_score"])
    rows = ctx.case.con.execute(
        f"""SELECT DISTINCT b.src_ip, r.dst_ip, CASE WHEN b.kind = 'fqdn' THEN b.dst END AS fqdn, b.score
        FROM {BEACONS} b JOIN {ROWS} r ON r.pair_id = b.pair_id AND NOT r.allowed
        WHERE b.score >= ? ORDER BY 1, 2, 3""",
        [min_score],
    ).fetchall()
    return [(str(s), str(d), f, float(sc)) for s, d, f, sc in rows]


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """The beacon table as CSV (EXPORT_COLUMNS; lists joined with ';', times ISO 8601 UTC)."""

    def cell(v: Any) -> Any:
        if v is None:
            return ""
        if isinstance(v, list | tuple):
            return ";".join(str(x) for x in v)
        if hasattr(v, "isoformat"):
            return v.isoformat().replace("+00:00", "Z")
        if isinstance(v, float):
            return "" if math.isnan(v) else round(v, 4)
        return v

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(EXPORT_COLUMNS)
        for r in rows:
            w.writerow([cell(r.get(c)) for c in EXPORT_COLUMNS])


# --------------------------------------------------------------------------------------------
# analytics
# --------------------------------------------------------------------------------------------


def _evidence_sql(
    select: str, keys: tuple[str, ...] = ("pair_id",), order: str = "ts, rid", cap: int = MAX_EVIDENCE_ROWS
) -> str:
    """Evidence per group `keys` for the gh_net_rows that `select` (a query returning `keys` columns)
    picks: the conn records (source_file, source_ref, ts, fields), at most `cap` per group."""
    on = " AND ".join(f"q.{k} = x.{k}" for k in keys)
    ordered = ", ".join(f"r.{o.strip()}" for o in order.split(","))
    return f"""
    SELECT {", ".join(f"r.{k}" for k in keys)}, list(struct_pack(source_file := c.source_file,
            source_ref := c.source_ref, ts := c.ts,
            fields := struct_pack(src_ip := c.src_ip, src_port := c.src_port, dst_ip := c.dst_ip,
                dst_port := c.dst_port, proto := c.proto, service := c.service, duration := c.duration,
                bytes_out := c.bytes_out, bytes_in := c.bytes_in, action := c.action, uid := c.uid,
                source := c.source, fqdn := r.fqdn, named_by := r.named_by))
            ORDER BY {ordered}) AS evidence
    FROM (SELECT x.* FROM {ROWS} x SEMI JOIN ({select}) q ON {on} WHERE NOT x.allowed
          QUALIFY row_number() OVER (PARTITION BY {", ".join(keys)} ORDER BY {order}) <= {int(cap)}) r
    JOIN conn c ON c.rowid = r.rid
    GROUP BY {", ".join(f"r.{k}" for k in keys)}"""


def beacons(ctx: Context, a: Analytic) -> list[Finding]:
    p = ctx.params(a.name)
    summary = prepare_network(ctx.case, ctx.settings)
    ctx.notes.extend(summary.notes())
    min_score, med, high = float(p["min_score"]), float(p["medium_score"]), float(p["high_score"])
    ids = [
        int(r[0])
        for r in ctx.case.con.execute(
            f"SELECT pair_id FROM {BEACONS} WHERE score >= {min_score} ORDER BY first_seen, src_ip, dst"
        ).fetchall()
    ]
    out: list[Finding] = []
    # a few dozen pairs per query: evidence lists of hundreds of pairs at once outgrow DuckDB's memory
    # limit (the large demo: 299 pairs, 1.3M connections)
    for i in range(0, len(ids), BEACON_CHUNK):
        cond = f"score >= {min_score} AND pair_id IN ({', '.join(str(x) for x in ids[i : i + BEACON_CHUNK])})"
        out.extend(_beacon_findings(ctx, a, cond, min_score, med, high))
    return out


def _beacon_findings(ctx: Context, a: Analytic, cond: str, min_score: float, med: float, high: float) -> list[Finding]:
    picked = f"SELECT pair_id FROM {BEACONS} WHERE {cond}"
    # the intervals and sizes RITA graphs (distinct value -> count), most common first, for the best window
    sql = f"""
    WITH b AS (SELECT * FROM {BEACONS} WHERE {cond}),
    ev AS ({_evidence_sql(picked, cap=int(ctx.params(a.name)["max_evidence"]))}),
    bw AS (
        SELECT r.* FROM {ROWS} r JOIN b ON b.pair_id = r.pair_id AND b.window = r.w WHERE NOT r.allowed
    ), iv AS (
        SELECT pair_id, list(struct_pack(seconds := v, count := k) ORDER BY k DESC, v)[1:10] AS intervals
        FROM (SELECT pair_id, v, count(*) AS k FROM (
                SELECT pair_id, ts_s - lag(ts_s) OVER (PARTITION BY pair_id ORDER BY ts_s) AS v
                FROM (SELECT DISTINCT pair_id, ts_s FROM bw)) WHERE v IS NOT NULL GROUP BY ALL)
        GROUP BY pair_id
    ), sz AS (
        SELECT pair_id, list(struct_pack(bytes := v, count := k) ORDER BY k DESC, v)[1:10] AS sizes
        FROM (SELECT pair_id, bytes_out AS v, count(*) AS k FROM bw GROUP BY ALL) GROUP BY pair_id
    )
    SELECT b.src_ip || ' -> ' || b.dst AS entity, b.first_seen AS ts_first, b.last_seen AS ts_last,
        b.connections AS count, ev.evidence,
        CASE WHEN reg.identifier IS NOT NULL THEN 'informational'
             WHEN b.score >= {high} THEN 'high' WHEN b.score >= {med} THEN 'medium' ELSE 'low' END AS severity,
        struct_pack(src_ip := b.src_ip, dst := b.dst, dst_kind := b.kind, dst_ips := b.dst_ips,
            named_by := b.named_by, sources := b.sources, score := b.score, ts_score := b.ts_score,
            ds_score := b.ds_score, dur_score := b.dur_score, hist_score := b.hist_score,
            ts_interval_median_s := b.ts_interval_median_s, ts_interval_mad_s := b.ts_interval_mad_s,
            ts_skew := b.ts_skew, ds_median_bytes := b.ds_median_bytes, ds_mad_bytes := b.ds_mad_bytes,
            ds_skew := b.ds_skew, hist_cv_score := b.hist_cv_score, hist_bimodal_score := b.hist_bimodal_score,
            hours_seen := b.hours_seen, longest_run_hours := b.longest_run_hours, dur_coverage := b.dur_coverage,
            dur_consistency := b.dur_consistency, hourly_connections := b.hourly_connections,
            window_start := b.window_start, window_end := b.window_end, window_connections := b.window_connections,
            windows_scored := b.windows_scored, windows_at_min_score := b.windows_at_min_score,
            connections := b.connections, bytes_out := b.bytes_out, bytes_in := b.bytes_in,
            intervals := iv.intervals, sizes := sz.sizes, min_score := {min_score}, medium_score := {med},
            high_score := {high}, model := 'RITA v5 beacon score, per 24 h window',
            registered_vendor_path := reg.vendor || ' ' || reg.kind || ' ' || reg.identifier) AS details
    FROM b LEFT JOIN ev USING (pair_id) LEFT JOIN iv USING (pair_id) LEFT JOIN sz USING (pair_id)
    -- a vendor's registered telemetry / update channel is periodic by design: still shown (a channel
    -- can be abused), at informational severity and named
    LEFT JOIN (
        SELECT vendor, kind, lower(identifier) AS identifier FROM vendor_access
        WHERE kind IN ('telemetry', 'update_channel') AND identifier IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY lower(identifier) ORDER BY vendor, kind) = 1
    ) reg ON b.kind = 'fqdn' AND (b.dst = reg.identifier OR ends_with(b.dst, '.' || reg.identifier))
    ORDER BY b.first_seen, entity
    """
    return query_findings(ctx, a, sql, title=None)


def strobes(ctx: Context, a: Analytic) -> list[Finding]:
    prepare_network(ctx.case, ctx.settings)
    per_day = int(ctx.params(a.name)["connections_per_day"])
    picked = f"SELECT pair_id FROM {BEACONS} WHERE strobe"
    sql = f"""
    WITH b AS (SELECT * FROM {BEACONS} WHERE strobe), ev AS ({_evidence_sql(picked)}),
    days AS (
        SELECT pair_id, list(struct_pack(window_end := to_timestamp(w_end), connections := n) ORDER BY w) AS windows
        FROM gh_net_pw WHERE pair_id IN (SELECT pair_id FROM b) GROUP BY pair_id
    )
    SELECT b.src_ip || ' -> ' || b.dst AS entity, b.first_seen AS ts_first, b.last_seen AS ts_last,
        b.connections AS count, ev.evidence,
        struct_pack(src_ip := b.src_ip, dst := b.dst, dst_kind := b.kind, dst_ips := b.dst_ips,
            max_window_connections := b.max_window_connections, connections := b.connections,
            bytes_out := b.bytes_out, bytes_in := b.bytes_in, windows := days.windows,
            connections_per_day := {per_day}) AS details
    FROM b LEFT JOIN ev USING (pair_id) LEFT JOIN days USING (pair_id)
    ORDER BY b.first_seen, entity
    """
    return query_findings(ctx, a, sql)


def long_connections(ctx: Context, a: Analytic) -> list[Finding]:
    """RITA v5 long connections: total duration of a pair's connections (RITA: in its 24 h window;
    here the pair's longest 24 h window) >= long_connection_minimum_duration; severity from RITA's
    long_connection_score_thresholds (1 h / 4 h / 8 h)."""
    prepare_network(ctx.case, ctx.settings)
    p = ctx.params(a.name)
    lo, med, high = float(p["min_seconds"]), float(p["medium_seconds"]), float(p["high_seconds"])
    common = int(p["common_destination_sources"])
    # a destination many internal hosts hold long sessions with (a call service, a SaaS) is the
    # organisation's, not one host's: below the medium threshold such pairs are left out (RITA
    # weighs prevalence the same way), and counted in a note
    prevalent = f"""SELECT dst FROM {ROWS} WHERE NOT allowed GROUP BY dst HAVING count(DISTINCT src_ip) >= {common}"""
    cut = f"total_duration >= {med} OR dst NOT IN ({prevalent})" if common > 0 else "true"
    skipped = ctx.case.con.execute(
        f"""SELECT count(DISTINCT pair_id) FROM gh_net_pw WHERE total_duration >= {lo}
        AND pair_id NOT IN (SELECT pair_id FROM gh_net_pw WHERE total_duration >= {lo} AND ({cut}))"""
    ).fetchall()[0][0]
    if skipped:
        ctx.notes.append(
            f"net.long_connection: {skipped} pairs under {med / 3600:g} h to destinations {common}+ internal hosts "
            "use were left out"
        )
    picked = f"""SELECT pair_id, w FROM gh_net_pw WHERE total_duration >= {lo} AND ({cut})
        QUALIFY row_number() OVER (PARTITION BY pair_id ORDER BY total_duration DESC, w) = 1"""
    sql = f"""
    WITH b AS ({picked.replace("pair_id, w", "*", 1)}),
    ev AS ({_evidence_sql(picked, ("pair_id", "w"), order="duration DESC, ts, rid")}),
    tot AS (SELECT pair_id, sum(total_duration) AS all_seconds, count(*) AS windows FROM gh_net_pw
            WHERE pair_id IN (SELECT pair_id FROM b) GROUP BY pair_id),
    meta AS (SELECT pair_id, list(DISTINCT dst_ip ORDER BY dst_ip)[1:10] AS dst_ips FROM {ROWS}
             WHERE NOT allowed AND pair_id IN (SELECT pair_id FROM b) GROUP BY pair_id)
    SELECT b.src_ip || ' -> ' || b.dst AS entity, b.first_ts AS ts_first, b.last_ts AS ts_last, b.n AS count,
        ev.evidence,
        CASE WHEN b.total_duration >= {high} THEN 'high' WHEN b.total_duration >= {med} THEN 'medium'
             ELSE 'low' END AS severity,
        struct_pack(src_ip := b.src_ip, dst := b.dst, dst_kind := b.kind, dst_ips := meta.dst_ips,
            total_seconds := round(b.total_duration, 1), total_hours := round(b.total_duration / 3600, 2),
            longest_connection_seconds := round(b.max_duration, 1), connections := b.n,
            window_start := to_timestamp(b.w_start), window_end := to_timestamp(b.w_end),
            seconds_all_windows := round(tot.all_seconds, 1), windows := tot.windows,
            bytes_out := b.bytes_out, bytes_in := b.bytes_in, min_seconds := {lo}, medium_seconds := {med},
            high_seconds := {high}) AS details
    FROM b LEFT JOIN ev USING (pair_id, w) LEFT JOIN tot USING (pair_id) LEFT JOIN meta USING (pair_id)
    ORDER BY b.first_ts, entity
    """
    return query_findings(ctx, a, sql)


def rare_destinations(ctx: Context, a: Analytic) -> list[Finding]:
    """External destinations (FQDN, else IP) talked to by few internal hosts and first seen late in the
    conn evidence: RITA v5's prevalence and first-seen modifiers turned into a finding of their own."""
    prepare_network(ctx.case, ctx.settings)
    p = ctx.params(a.name)
    lo, hi = ctx.case.con.execute("SELECT min(ts), max(ts) FROM conn").fetchall()[0]
    if lo is None:
        return []
    span_days = (hi - lo).total_seconds() / DAY_S
    if span_days < float(p["min_span_days"]):
        ctx.notes.append(f"net.rare_destination: skipped, conn evidence spans {span_days:.1f} days "
                         f"(needs {p['min_span_days']} to tell old destinations from new)")  # fmt: skip
        return []
    cutoff = lo + (hi - lo) * float(p["late_fraction"])
    beacon_min = float(ctx.settings["net.beacon"]["min_score"])
    hit = f"""
        WITH d AS (
            SELECT kind, dst, count(DISTINCT src_ip) AS sources, count(*) AS n, min(ts) AS first_seen,
                max(ts) AS last_seen, sum(bytes_out) AS bytes_out, sum(bytes_in) AS bytes_in,
                list(DISTINCT src_ip ORDER BY src_ip)[1:20] AS src_ips,
                list(DISTINCT dst_ip ORDER BY dst_ip)[1:10] AS dst_ips
            FROM {ROWS} WHERE NOT allowed GROUP BY kind, dst
        )
        SELECT * FROM d WHERE sources <= {int(p["max_sources"])} AND n >= {int(p["min_connections"])}
            AND first_seen >= $cutoff"""
    sql = f"""
    WITH h AS ({hit}),
    net AS (SELECT count(DISTINCT src_ip) AS hosts FROM {ROWS} WHERE NOT allowed),
    ev AS ({_evidence_sql("SELECT kind, dst FROM h", ("kind", "dst"))}),
    bea AS (SELECT kind, dst, max(score) AS beacon_score FROM {BEACONS} GROUP BY kind, dst)
    SELECT h.dst || ' (first seen late, ' || h.sources || ' internal host'
            || CASE WHEN h.sources > 1 THEN 's' ELSE '' END || ')' AS entity,
        h.first_seen AS ts_first, h.last_seen AS ts_last, h.n AS count, ev.evidence,
        CASE WHEN bea.beacon_score >= {beacon_min} THEN 'medium' END AS severity,
        struct_pack(dst := h.dst, dst_kind := h.kind, dst_ips := h.dst_ips, sources := h.sources,
            src_ips := h.src_ips, internal_hosts_talking_out := net.hosts,
            prevalence := round(h.sources / net.hosts, 4), first_seen := h.first_seen,
            evidence_start := $lo, evidence_end := $hi, first_seen_after := $cutoff, connections := h.n,
            bytes_out := h.bytes_out, bytes_in := h.bytes_in, beacon_score := bea.beacon_score,
            max_sources := {int(p["max_sources"])}, late_fraction := {float(p["late_fraction"])}) AS details
    FROM h CROSS JOIN net LEFT JOIN ev USING (kind, dst) LEFT JOIN bea USING (kind, dst)
    ORDER BY h.first_seen, entity
    """
    return query_findings(ctx, a, sql, {"lo": lo, "hi": hi, "cutoff": cutoff})  # type: ignore[arg-type]


ANALYTICS = (
    Analytic(
        "net.beacon",
        "Beaconing: regular connections from an internal host to an external destination (RITA v5 score)",
        "medium",
        ("T1071", "T1573"),
        ("conn",),
        beacons,
    ),
    Analytic(
        "net.strobe",
        "Strobe: an internal host connects to one external destination 86,400+ times in a day",
        "high",
        ("T1071",),
        ("conn",),
        strobes,
    ),
    Analytic(
        "net.long_connection",
        "Long connections: hours of connection time between an internal host and an external destination",
        "low",
        ("T1071", "T1572"),
        ("conn",),
        long_connections,
    ),
    Analytic(
        "net.rare_destination",
        "Rare destination: an external address or name few internal hosts use, first seen late in the evidence",
        "low",
        ("T1071",),
        ("conn",),
        rare_destinations,
    ),
)
