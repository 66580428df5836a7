"""Network analytics (detect/beacon.py): the RITA v5 beacon components pinned on constructed series,
strobes, allow-lists, FQDN pairing, sensor de-duplication, long connections, rare destinations and
`gridhunt beacons`. Rows go straight into a real DuckDB case (Arrow inserts), no mocks."""

from __future__ import annotations

import copy
import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from gridhunt.case import Case
from gridhunt.cli import app
from gridhunt.detect import run_analytics
from gridhunt.detect.base import MAX_EVIDENCE_ROWS, Context
from gridhunt.detect.beacon import beacon_pairs, beacon_scores, prepare_network
from gridhunt.detect.settings import load_settings

T0 = 1_740_787_200  # 2025-03-01 00:00:00 UTC
DAY = 86_400
RITA_T0 = 1517338924  # the epoch RITA's own test vectors use (analysis/beacons_test.go)


@pytest.fixture
def case(tmp_path: Path) -> Iterator[Case]:
    c = Case.open(tmp_path / "case.duckdb")
    yield c
    c.close()


def add_conn(
    case: Case,
    src: str,
    dst: str | Sequence[str],
    times: Sequence[float] | np.ndarray,
    sizes: int | Sequence[int] | np.ndarray = 500,
    *,
    source: str = "zeek",
    duration: float | Sequence[float] = 0.5,
    uid_prefix: str | None = None,
    port: int = 443,
) -> list[str]:
    """Insert one conn row per time; returns the uids (for tls / http rows)."""
    n = len(times)
    ts = (np.asarray(times, dtype=float) * 1_000_000).astype(np.int64)
    sizes = np.broadcast_to(np.asarray(sizes, dtype=np.int64), (n,))
    dsts = [dst] * n if isinstance(dst, str) else [dst[i % len(dst)] for i in range(n)]
    prefix = uid_prefix or f"C{src}-{dsts[0]}-{source}-"
    uids = [f"{prefix}{i}" for i in range(n)]
    tbl = pa.table(
        {
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "src_ip": [src] * n,
            "src_port": pa.array([40000 + i % 20000 for i in range(n)], pa.int32()),
            "dst_ip": dsts,
            "dst_port": pa.array([port] * n, pa.int32()),
            "proto": ["tcp"] * n,
            "duration": pa.array(np.broadcast_to(np.asarray(duration, dtype=float), (n,))),
            "bytes_out": pa.array(sizes),
            "bytes_in": pa.array(np.full(n, 1000, dtype=np.int64)),
            "uid": uids,
            "source": [source] * n,
            "source_file": [f"{source}/conn.log"] * n,
            "source_ref": [f"{prefix}{i}" for i in range(n)],
        }
    )
    case.con.register("_t", tbl)
    case.con.execute("INSERT INTO conn BY NAME SELECT * FROM _t")
    case.con.unregister("_t")
    return uids


def add_rows(case: Case, table: str, rows: list[dict[str, Any]]) -> None:
    cols = {k: [r.get(k) for r in rows] for k in rows[0]}
    arrays = {
        k: pa.array([int(x * 1_000_000) for x in v], pa.timestamp("us", tz="UTC")) if k == "ts" else pa.array(v)
        for k, v in cols.items()
    }
    case.con.register("_t", pa.table(arrays))
    case.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _t")
    case.con.unregister("_t")


def by_pair(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["src_ip"], r["dst"]): r for r in rows}


def settings(**net_beacon: Any) -> dict[str, dict[str, Any]]:
    s = copy.deepcopy(load_settings())
    s["net.beacon"].update(net_beacon)
    return s


def findings(case: Case, only: str, s: dict[str, dict[str, Any]] | None = None) -> list:
    result = run_analytics(case, settings=s, only=[only])
    assert all(r.error is None for r in result.runs), [r.error for r in result.runs]
    return result.findings


def periodic(period: float, n: int, start: float = T0, jitter: float = 0.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return start + np.arange(n) * period + rng.uniform(-jitter, jitter, n) * period


# ---- the four components on constructed series ------------------------------------------------


def test_periodic_constant_size_scores_one(case: Case) -> None:
    add_conn(case, "10.0.0.5", "203.0.113.9", periodic(60, 1440), 512)  # every minute for a day
    r = by_pair(beacon_scores(case))[("10.0.0.5", "203.0.113.9")]
    assert (r["score"], r["ts_score"], r["ds_score"], r["dur_score"], r["hist_score"]) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert r["connections"] == r["window_connections"] == 1440 and r["hours_seen"] == 24
    assert r["ts_interval_median_s"] == 60 and r["ds_median_bytes"] == 512 and not r["strobe"]
    (f,) = findings(case, "net.beacon")
    assert f.rule_id == "net.beacon" and f.detector == "net" and f.severity == "high"
    assert f.entity == "10.0.0.5 -> 203.0.113.9" and f.count == 1440 and len(f.evidence) == 300  # max_evidence
    assert f.evidence[0]["source_file"] == "zeek/conn.log" and f.evidence[0]["fields"]["dst_port"] == 443
    d = f.details
    assert d["score"] == 1.0 and d["intervals"] == [{"seconds": 60, "count": 1439}]
    assert d["sizes"] == [{"bytes": 512, "count": 1440}] and d["hourly_connections"] == [60] * 24


@pytest.mark.parametrize(
    ("offsets", "expected"),
    [
        # RITA's own timestamp-score vectors (analysis/beacons_test.go, TestGetTimestampScore)
        ([0, 98, 197, 296, 396, 496, 596, 697, 798, 900], 0.995),  # closely-valued intervals
        ([0, 98, 398, 496, 796, 894, 1194, 1292, 1592, 1690, 1990], 0.746),  # bimodal intervals
        ([0, 1, 300, 325, 5300, 5390, 5392, 5434, 5934, 7434], 0.083),  # random intervals
    ],
)
def test_timestamp_score_matches_rita_vectors(case: Case, offsets: list[int], expected: float) -> None:
    add_conn(case, "10.0.0.5", "203.0.113.9", [RITA_T0 + o for o in offsets])
    assert by_pair(beacon_scores(case))[("10.0.0.5", "203.0.113.9")]["ts_score"] == expected


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        # RITA's data-size vectors (TestGetDataSizeScore): 1..10, identical, closely valued
        (list(range(1, 11)), 0.773),
        ([60] * 9, 1.0),
        ([98, 99, 99, 100, 100, 100, 101, 101, 102], 0.995),
        ([0] * 9, 0.5),  # median under 1 byte: MADM score 0 (RITA's default for sizes), skew score 1
    ],
)
def test_data_size_score_matches_rita_vectors(case: Case, sizes: list[int], expected: float) -> None:
    add_conn(case, "10.0.0.5", "203.0.113.9", periodic(60, len(sizes)), sizes)
    assert by_pair(beacon_scores(case))[("10.0.0.5", "203.0.113.9")]["ds_score"] == expected


def test_duration_and_histogram_office_hours(case: Case) -> None:
    # every 5 min from 08:00 to 17:00 only; another pair stretches the window over the whole day
    add_conn(case, "10.0.0.5", "203.0.113.9", periodic(300, 108, T0 + 8 * 3600), 700)
    add_conn(case, "10.0.0.6", "198.51.100.1", [T0, T0 + DAY - 1])
    r = by_pair(beacon_scores(case))[("10.0.0.5", "203.0.113.9")]
    assert r["hours_seen"] == 9 and r["longest_run_hours"] == 9
    assert r["dur_consistency"] == 0.75 and r["dur_coverage"] == 0.372 and r["dur_score"] == 0.75
    # 9 of 24 bins: coefficient of variation > 1 and too few bars for the bimodal fit
    assert r["hist_cv_score"] == 0.0 and r["hist_bimodal_score"] == 0.0 and r["hist_score"] == 0.0
    assert r["ts_score"] == r["ds_score"] == 1.0 and r["score"] == 0.688  # (1 + 1 + 0.75 + 0) / 4


def test_histogram_bimodal_fit(case: Case) -> None:
    # hours alternate between 4 and 1 connections (RITA's bimodal shape): cv score 0.4, bimodal fit 1
    times = [T0 + h * 3600 + k * 600 for h in range(24) for k in range(4 if h % 2 == 0 else 1)]
    add_conn(case, "10.0.0.5", "203.0.113.9", times)
    add_conn(case, "10.0.0.6", "198.51.100.1", [T0, T0 + DAY])  # window = the whole day, 1 h bins
    r = by_pair(beacon_scores(case))[("10.0.0.5", "203.0.113.9")]
    assert r["hourly_connections"] == [4, 1] * 12
    assert r["hist_cv_score"] == 0.4 and r["hist_bimodal_score"] == 1.0 and r["hist_score"] == 1.0


def test_uniform_random_arrivals_score_low(case: Case) -> None:
    rng = np.random.default_rng(5)
    add_conn(case, "10.0.0.7", "198.51.100.7", np.sort(rng.uniform(T0, T0 + DAY, 150)), rng.lognormal(7, 1, 150))
    add_conn(case, "10.0.0.8", "198.51.100.8", np.sort(rng.uniform(T0, T0 + DAY, 150)), 512)
    rows = by_pair(beacon_scores(case))
    noisy, steady_size = rows[("10.0.0.7", "198.51.100.7")], rows[("10.0.0.8", "198.51.100.8")]
    # exponential gaps: Bowley skew ~0.26 and MAD ~0.7 x median pull the timestamp score to ~0.5
    assert noisy["ts_score"] < 0.65 and steady_size["ts_score"] < 0.65
    assert noisy["ds_score"] < 0.65 and steady_size["ds_score"] == 1.0
    assert noisy["score"] < 0.7
    # (a constant size alone can lift steady random traffic into RITA's medium band: the timing stays low)
    assert "10.0.0.7 -> 198.51.100.7" not in [f.entity for f in findings(case, "net.beacon")]


def test_jittered_beacon_high_benign_twin_quiet(case: Case) -> None:
    rng = np.random.default_rng(11)
    n = 3 * 288  # every 5 min ±15 % for three days
    add_conn(case, "10.0.0.9", "203.0.113.50", periodic(300, n, jitter=0.15, seed=3), 900 * rng.uniform(0.95, 1.05, n))
    # the same host, as many connections, a person's pattern: office-hours bursts, varied sizes
    day = rng.integers(0, 3, n)
    hour = np.clip(rng.normal(11, 2.5, n), 7, 18)
    burst = rng.exponential(40, n)
    add_conn(case, "10.0.0.9", "198.51.100.50", np.sort(T0 + day * DAY + hour * 3600 + burst),
             rng.lognormal(8, 1.5, n))  # fmt: skip
    rows = by_pair(beacon_scores(case))
    beacon, twin = rows[("10.0.0.9", "203.0.113.50")], rows[("10.0.0.9", "198.51.100.50")]
    assert beacon["score"] >= 0.9 and beacon["ts_score"] >= 0.85 and beacon["windows_scored"] == 3
    assert beacon["windows_at_min_score"] == 3
    assert twin["score"] < 0.7
    (f,) = findings(case, "net.beacon")
    assert f.entity == "10.0.0.9 -> 203.0.113.50" and f.severity == "high"
    assert 290 <= f.details["ts_interval_median_s"] <= 310


def test_strobe_flagged_not_scored(case: Case) -> None:
    times = T0 + np.sort(np.random.default_rng(2).uniform(0, DAY - 1, 90_000))
    add_conn(case, "10.0.0.10", "203.0.113.77", times, 60)
    r = by_pair(beacon_scores(case))[("10.0.0.10", "203.0.113.77")]
    assert r["strobe"] and r["score"] is None and r["max_window_connections"] == 90_000
    (f,) = findings(case, "net.strobe")
    assert f.rule_id == "net.strobe" and f.severity == "high" and f.count == 90_000
    assert len(f.evidence) == MAX_EVIDENCE_ROWS and f.details["max_window_connections"] == 90_000
    assert findings(case, "net.beacon") == []


def test_fewer_than_four_timestamps_not_scored(case: Case) -> None:
    add_conn(case, "10.0.0.11", "203.0.113.1", periodic(60, 3))
    add_conn(case, "10.0.0.12", "203.0.113.2", [T0, T0 + 0.2, T0 + 60, T0 + 60.5, T0 + 120])  # 3 distinct seconds
    add_conn(case, "10.0.0.13", "203.0.113.3", periodic(60, 4))
    rows = by_pair(beacon_scores(case))
    assert ("10.0.0.11", "203.0.113.1") not in rows and ("10.0.0.12", "203.0.113.2") not in rows
    assert rows[("10.0.0.13", "203.0.113.3")]["connections"] == 4


# ---- pairing, sensors, allow-lists --------------------------------------------------------------


def test_fqdn_pairing_by_sni_across_rotating_addresses(case: Case) -> None:
    ips = ["203.0.113.10", "203.0.113.11", "203.0.113.12"]
    uids = add_conn(case, "10.0.0.14", ips, periodic(600, 144), 400)
    add_rows(case, "tls", [{"ts": T0, "uid": u, "server_name": "Updates.Vendor-Cloud.example"} for u in uids])
    rows = by_pair(beacon_scores(case))
    r = rows[("10.0.0.14", "updates.vendor-cloud.example")]
    assert r["kind"] == "fqdn" and r["dst_ips"] == ips and r["named_by"] == ["tls"] and r["score"] == 1.0
    assert not any(k[1] in ips for k in rows)  # no connection is also scored under its address
    assert sorted(x[1] for x in beacon_pairs(Context(case, load_settings()))) == ips


def test_fqdn_from_http_host_and_dns_answers(case: Case) -> None:
    uids = add_conn(case, "10.0.0.15", "203.0.113.20", periodic(300, 50), 300)
    add_rows(case, "http", [{"ts": T0, "uid": u, "host": "c2.example.org:8080"} for u in uids])
    add_conn(case, "10.0.0.16", "203.0.113.21", periodic(300, 50, T0 + 100), 300)
    add_conn(case, "10.0.0.17", "203.0.113.21", periodic(300, 50, T0 + 100), 300)
    # 10.0.0.16 resolved the name itself; 10.0.0.17's conns are only named by someone else's answer
    add_rows(case, "dns", [{"ts": T0 + 50, "src_ip": "10.0.0.16", "query": "tick.example.org.",
                            "answers": "tick-cname.example.net,203.0.113.21", "source": "zeek"}])  # fmt: skip
    rows = by_pair(beacon_scores(case))
    assert rows[("10.0.0.15", "c2.example.org")]["named_by"] == ["http"]
    assert rows[("10.0.0.16", "tick.example.org")]["named_by"] == ["dns"]
    assert ("10.0.0.17", "203.0.113.21") in rows
    off = by_pair(beacon_scores(case, settings(fqdn_from_dns_hours=0)))
    assert ("10.0.0.16", "203.0.113.21") in off and ("10.0.0.15", "c2.example.org") in off


def test_dns_answer_too_old_is_not_used(case: Case) -> None:
    add_rows(case, "dns", [{"ts": T0, "src_ip": "10.0.0.16", "query": "old.example.org", "answers": "203.0.113.22"}])
    add_conn(case, "10.0.0.16", "203.0.113.22", periodic(300, 50, T0 + 2 * DAY), 300)
    assert ("10.0.0.16", "203.0.113.22") in by_pair(beacon_scores(case))


def test_flow_in_zeek_and_firewall_counted_once(case: Case) -> None:
    times = periodic(120, 500)
    add_conn(case, "10.0.0.18", "203.0.113.30", times, 640)
    add_conn(case, "10.0.0.18", "203.0.113.30", times, 700, source="firewall")
    add_conn(case, "10.0.0.19", "203.0.113.31", times, 640, source="firewall")  # only the firewall saw this one
    summary = prepare_network(case, load_settings())
    rows = by_pair(beacon_scores(case))
    assert rows[("10.0.0.18", "203.0.113.30")]["connections"] == 500
    assert rows[("10.0.0.18", "203.0.113.30")]["sources"] == ["zeek"]
    assert rows[("10.0.0.19", "203.0.113.31")]["sources"] == ["firewall"]
    assert summary.duplicate_rows == 500


def test_only_internal_to_external(case: Case) -> None:
    add_conn(case, "10.0.0.20", "10.9.9.9", periodic(60, 100))  # internal -> internal
    add_conn(case, "198.51.100.60", "10.0.0.20", periodic(60, 100))  # inbound
    add_conn(case, "192.0.2.10", "203.0.113.40", periodic(60, 100))  # public source ...
    add_rows(case, "zones", [{"name": "ot-dmz", "cidrs": ["192.0.2.0/24"], "level": 3}])  # ... inside a zone
    add_conn(case, "fd00::5", "2001:db8::1", periodic(60, 100))  # IPv6 ULA -> global
    rows = by_pair(beacon_scores(case))
    assert set(rows) == {("192.0.2.10", "203.0.113.40"), ("fd00::5", "2001:db8::1")}


def test_allow_lists_applied_before_scoring(case: Case) -> None:
    uids = add_conn(case, "10.0.0.21", "203.0.113.50", periodic(60, 300))
    add_rows(case, "tls", [{"ts": T0, "uid": u, "server_name": "ctldl.windowsupdate.com"} for u in uids])
    add_conn(case, "10.0.0.21", "52.96.1.1", periodic(60, 300))
    add_conn(case, "10.0.0.21", "203.0.113.51", periodic(60, 300))
    s = settings(allow_domains=["WindowsUpdate.com"], allow_cidrs=["52.96.0.0/14"])
    rows = by_pair(beacon_scores(case, s))
    assert set(rows) == {("10.0.0.21", "203.0.113.51")}
    summary = prepare_network(case, s)
    assert summary.allowed_rows == 600 and summary.allowed_destinations == 2
    result = run_analytics(case, settings=s, only=["net.beacon"])
    assert any("allow-lists dropped 600 connections to 2 destinations" in n for n in result.notes)
    assert [f.entity for f in result.findings] == ["10.0.0.21 -> 203.0.113.51"]


def test_bad_settings_are_errors(case: Case) -> None:
    add_conn(case, "10.0.0.5", "203.0.113.9", periodic(60, 10))
    with pytest.raises(ValueError, match="sum to 1"):
        beacon_scores(case, settings(timestamp_weight=0.5))
    with pytest.raises(ValueError, match="allow_cidrs: .52.96.0.0/33. is not an address or CIDR"):
        beacon_scores(case, settings(allow_cidrs=["52.96.0.0/33"]))
    result = run_analytics(case, settings=settings(min_connections=3), only=["net.beacon"])
    assert "at least 4" in (result.runs[0].error or "")


# ---- long connections, rare destinations ---------------------------------------------------------


def test_long_connection(case: Case) -> None:
    add_conn(case, "10.0.0.22", "203.0.113.60", [T0, T0 + 3600], duration=[9000.0, 9000.0])  # 5 h in a day
    add_conn(case, "10.0.0.23", "203.0.113.61", [T0], duration=[1800.0])
    (f,) = findings(case, "net.long_connection")
    assert f.entity == "10.0.0.22 -> 203.0.113.60" and f.severity == "medium" and f.count == 2
    assert f.details["total_seconds"] == 18000 and f.details["longest_connection_seconds"] == 9000
    assert [e["fields"]["duration"] for e in f.evidence] == [9000.0, 9000.0]


def test_long_sessions_to_a_service_many_hosts_use_are_left_out_unless_very_long(case: Case) -> None:
    for h in range(10):  # an hour-long call each, to the collaboration service everyone uses
        add_conn(case, f"10.0.2.{h}", "198.51.100.206", [T0 + h * 60], duration=[4000.0])
    add_conn(case, "10.0.2.99", "198.51.100.206", [T0], duration=[20000.0])  # 5.5 h: still shown
    result = run_analytics(case, only=["net.long_connection"])
    assert [f.entity for f in result.findings] == ["10.0.2.99 -> 198.51.100.206"]
    assert any("10 pairs under 4 h to destinations 10+ internal hosts use" in n for n in result.notes)
    s = load_settings()
    s["net.long_connection"]["common_destination_sources"] = 0
    assert len(run_analytics(case, s, only=["net.long_connection"]).findings) == 11


def test_beacon_to_a_registered_vendor_channel_is_informational_and_named(case: Case) -> None:
    uids = add_conn(case, "10.0.0.15", "203.0.113.3", periodic(600, 144), 400)
    add_rows(case, "tls", [{"ts": T0, "uid": u, "server_name": "telemetry.meterco.example"} for u in uids])
    uids = add_conn(case, "10.0.0.16", "203.0.113.4", periodic(600, 144), 400)
    add_rows(case, "tls", [{"ts": T0, "uid": u, "server_name": "telemetry.meterco-status.example"} for u in uids])
    case.con.execute(
        "INSERT INTO vendor_access (vendor, kind, identifier) VALUES ('MeterCo', 'telemetry', 'meterco.example')"
    )
    got = {f.entity: f for f in findings(case, "net.beacon")}
    vendor = got["10.0.0.15 -> telemetry.meterco.example"]
    assert vendor.severity == "informational"
    assert vendor.details["registered_vendor_path"] == "MeterCo telemetry meterco.example"
    lookalike = got["10.0.0.16 -> telemetry.meterco-status.example"]  # a look-alike name is not the channel
    assert lookalike.severity == "high" and "registered_vendor_path" not in lookalike.details


def test_rare_destination_first_seen_late(case: Case) -> None:
    for h in range(5):  # an old destination everyone uses, across ten days
        add_conn(case, f"10.0.1.{h}", "198.51.100.90", periodic(DAY, 10, T0 + h))
    add_conn(case, "10.0.1.9", "203.0.113.70", periodic(3600, 5, T0 + 8 * DAY))  # new, one host, late
    add_conn(case, "10.0.1.9", "203.0.113.71", periodic(3600, 5, T0 + 1 * DAY))  # one host but early
    (f,) = findings(case, "net.rare_destination")
    assert f.entity == "203.0.113.70 (first seen late, 1 internal host)" and f.severity == "low"
    assert f.details["sources"] == 1 and f.details["internal_hosts_talking_out"] == 6 and f.count == 5


def test_rare_destination_needs_history(case: Case) -> None:
    add_conn(case, "10.0.1.9", "203.0.113.70", periodic(600, 5))
    result = run_analytics(case, only=["net.rare_destination"])
    assert result.findings == [] and any("spans 0.0 days" in n for n in result.notes)


# ---- gridhunt beacons ------------------------------------------------------------------------------


def test_cli_beacons_table_csv_and_sort(tmp_path: Path) -> None:
    path = tmp_path / "case.duckdb"
    with Case.open(path) as c:
        add_conn(c, "10.0.0.30", "203.0.113.80", periodic(60, 1440), 512)  # score 1.0, 1440 conns
        add_conn(c, "10.0.0.31", "203.0.113.81", periodic(30, 2000, T0 + 3600), 5000)  # more conns and bytes
        add_conn(c, "10.0.0.32", "203.0.113.82", periodic(600, 3))  # not scored
    runner = CliRunner(env={"COLUMNS": "200"})
    out = tmp_path / "beacons.csv"
    res = runner.invoke(app, ["beacons", str(path), "--sort", "connections", "--csv", str(out), "--min-score", "0"])
    assert res.exit_code == 0, res.output
    assert "203.0.113.80" in res.output and "203.0.113.82" not in res.output
    with open(out, newline="") as f:
        got = list(csv.DictReader(f))
    assert [r["dst"] for r in got] == ["203.0.113.81", "203.0.113.80"]
    assert got[1]["score"] == "1.0" and got[1]["connections"] == "1440" and got[1]["first_seen"].endswith("Z")
    assert {"ts_score", "ds_score", "dur_score", "hist_score", "bytes_out", "last_seen"} <= set(got[0])
    res = runner.invoke(app, ["beacons", str(path), "--sort", "score", "--csv", str(out), "--limit", "1"])
    assert res.exit_code == 0, res.output
    with open(out, newline="") as f:
        assert [r["dst"] for r in csv.DictReader(f)] == ["203.0.113.80"]
    res = runner.invoke(app, ["beacons", str(path), "--sort", "loudest"])
    assert res.exit_code != 0
    assert runner.invoke(app, ["beacons", "--help"]).output.count("Example") == 1
