"""Exfiltration analytics: each fires on the attack shape and stays quiet on its benign twin.

Flows are written straight into a real case's `conn` table (as the Zeek and firewall readers
would), with TLS rows naming destinations. Public addresses are TEST-NET ranges; internal ones
RFC 1918. exfil.over_c2 joins the real beacon scoring of gridhunt.detect.beacon."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gridhunt.case import Case
from gridhunt.detect import run_analytics
from gridhunt.detect.base import Context
from gridhunt.detect.beacon import beacon_pairs
from gridhunt.detect.settings import load_settings
from tests.conftest import run_analytic, utc

T0 = utc(2026, 4, 1, 0, 0, 0)
MB = 1_000_000
_ref = iter(range(1, 10**9))
# (ts, src_ip, dst_ip, dst_port, bytes_out, bytes_in, source, uid)
Flow = tuple[datetime, str, str, int, int, int, str, str | None]


@pytest.fixture
def c(tmp_path: Path) -> Case:
    case = Case.open(tmp_path / "c.duckdb")
    yield case
    case.close()


def add(c: Case, flows: Iterable[Flow]) -> list[str]:
    """Insert conn rows; returns their source_refs."""
    refs, batch = [], []
    for ts, src, dst, port, out, inn, source, uid in flows:
        ref = f"line {next(_ref)}"
        refs.append(ref)
        batch.append(
            (ts, src, 50000, dst, port, "tcp", "ssl", 12.0, out, inn, "allow", uid, source, f"{source}.log", ref)
        )
    c.con.executemany(
        "INSERT INTO conn (ts, src_ip, src_port, dst_ip, dst_port, proto, service, duration, bytes_out, bytes_in, "
        "action, uid, source, source_file, source_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        batch,
    )
    return refs


def sni(c: Case, ts: datetime, src: str, dst: str, name: str, uid: str | None = None) -> None:
    c.con.execute(
        "INSERT INTO tls (ts, uid, src_ip, dst_ip, dst_port, server_name, established, source_file, source_ref) "
        "VALUES (?, ?, ?, ?, 443, ?, true, 'ssl.log', ?)",
        [ts, uid, src, dst, name, f"line {next(_ref)}"],
    )


def daily(src: str, dst: str, days: Iterable[int], size: int, hour: int = 10, per_day: int = 4) -> list[Flow]:
    """`per_day` flows a day from src to dst adding up to about `size` bytes, a little varied."""
    r = random.Random(f"{src}{dst}{size}")
    return [
        (T0 + timedelta(days=d, hours=hour, minutes=13 * i), src, dst, 443,
         int(size / per_day * r.uniform(0.8, 1.2)), 20_000, "zeek", None)
        for d in days for i in range(per_day)
    ]  # fmt: skip


run = run_analytic


def found(c: Case, name: str, settings: dict | None = None):
    return run(c, name, settings).findings


def office(c: Case, days: int = 12) -> None:
    """Everyday traffic: workstations to a SaaS everyone uses."""
    flows = []
    for h in range(5):
        flows += daily(f"10.20.1.{50 + h}", "192.0.2.10", range(days), 15 * MB)
    add(c, flows)
    sni(c, T0, "10.20.1.50", "192.0.2.10", "outlook.office365.com")


# ---- exfil.volume_vs_baseline --------------------------------------------------------------------


def test_volume_spike_against_the_hosts_own_baseline_fires(c: Case) -> None:
    office(c)
    add(c, daily("10.20.1.15", "192.0.2.10", range(11), 20 * MB))
    spike = add(c, daily("10.20.1.15", "198.51.100.77", [11], 1500 * MB, hour=2, per_day=6))
    (f,) = found(c, "exfil.volume_vs_baseline")
    assert f.entity == "10.20.1.15 2026-04-12" and f.severity == "high"
    d = f.details
    assert d["bytes_out"] > 1500 * MB * 0.9 and d["history_days"] == 11
    assert 15 * MB < d["baseline_median"] < 25 * MB and d["bytes_out"] > d["threshold"]
    assert d["top_destinations"][0]["dst_ip"] == "198.51.100.77"
    # evidence: that day's outbound flows, biggest first, spike rows among them
    assert set(spike) <= {e["source_ref"] for e in f.evidence}
    sizes = [e["fields"]["bytes_out"] for e in f.evidence]
    assert sizes == sorted(sizes, reverse=True)


def test_volume_quiet_on_nightly_backup_new_host_and_a_double_logged_flow(c: Case) -> None:
    office(c)
    # a backup server sending 50 GB every night: its baseline
    add(c, daily("10.20.9.5", "203.0.113.80", range(12), 50_000 * MB, hour=1))
    # a host first seen today sending 1 GB: no history to judge
    add(c, daily("10.20.1.70", "198.51.100.77", [11], 1000 * MB))
    # 80 MB seen by both Zeek and the firewall: 160 MB if summed, under min_bytes (100 MB) counted once
    add(c, daily("10.20.1.16", "192.0.2.10", range(11), 2 * MB))
    big = daily("10.20.1.16", "198.51.100.78", [11], 80 * MB, per_day=2)
    add(c, big + [(t, s, d, p, o, i, "firewall", None) for t, s, d, p, o, i, _, _ in big])
    assert found(c, "exfil.volume_vs_baseline") == []
    (f,) = found(c, "exfil.volume_vs_baseline", {"min_bytes": 50 * MB})
    assert f.entity == "10.20.1.16 2026-04-12" and f.details["bytes_out"] < 100 * MB


def test_volume_quiet_on_weekly_full_backup_and_a_call_to_an_org_wide_service(c: Case) -> None:
    # incremental backups nightly, a full one every 7th night: the full is no bigger than the last full
    for d in range(20):
        add(c, daily("10.20.9.5", "203.0.113.80", [d], (270_000 if d % 7 == 3 else 30_000) * MB, hour=1))
    # a video call uploading 700 MB from a host that usually sends little, to a service 12 hosts use
    for h in range(12):
        add(c, daily(f"10.20.2.{h + 1}", "192.0.2.77", range(20), 5 * MB))
    add(c, daily("10.20.2.1", "192.0.2.77", [15], 700 * MB, hour=14))
    assert found(c, "exfil.volume_vs_baseline") == []
    # the call is a spike by the numbers: the org-wide exclusion is what keeps it quiet
    (f,) = found(c, "exfil.volume_vs_baseline", {"common_destination_hosts": 50})
    assert f.entity == "10.20.2.1 2026-04-16"


def test_volume_denied_and_inbound_flows_do_not_count(c: Case) -> None:
    office(c)
    add(c, daily("10.20.1.15", "192.0.2.10", range(11), 20 * MB))
    c.con.execute(
        "INSERT INTO conn (ts, src_ip, dst_ip, dst_port, bytes_out, action, source, source_file, source_ref) VALUES "
        "(?, '10.20.1.15', '198.51.100.77', 443, 2000000000, 'deny', 'firewall', 'fw.csv', 'line 1'),"
        "(?, '198.51.100.77', '10.20.1.15', 443, 2000000000, 'allow', 'zeek', 'conn.log', 'line 2')",
        [T0 + timedelta(days=11, hours=3), T0 + timedelta(days=11, hours=4)],
    )
    assert found(c, "exfil.volume_vs_baseline") == []


# ---- exfil.large_upload_rare_destination ---------------------------------------------------------


def test_large_upload_to_a_rare_destination_fires(c: Case) -> None:
    office(c)
    t = T0 + timedelta(days=11, hours=3)
    (ref,) = add(c, [(t, "10.20.1.15", "198.51.100.77", 443, 300 * MB, 40_000, "zeek", "Cup1")])
    sni(c, t, "10.20.1.15", "198.51.100.77", "files.quickshare-drop.xyz", "Cup1")
    (f,) = found(c, "exfil.large_upload_rare_destination")
    assert f.entity == "10.20.1.15 -> quickshare-drop.xyz"
    assert [e["source_ref"] for e in f.evidence] == [ref]
    d = f.details
    assert d["largest_connection"] == 300 * MB and d["internal_hosts_to_destination"] == 1
    assert d["name"] == "files.quickshare-drop.xyz" and d["addresses"] == ["198.51.100.77"]
    assert d["earlier_days_with_traffic"] == 0


def test_large_upload_pair_day_total_fires_without_one_big_connection(c: Case) -> None:
    flows = [
        (T0 + timedelta(hours=1, minutes=i), "10.20.1.15", "198.51.100.90", 443, 8 * MB, 2000, "zeek", None)
        for i in range(20)
    ]
    add(c, flows)
    (f,) = found(c, "exfil.large_upload_rare_destination")
    assert f.entity == "10.20.1.15 -> 198.51.100.90" and f.count == 20
    assert f.details["bytes_out"] == 160 * MB and "name" not in f.details  # no name known: the address


def test_large_upload_quiet_on_backup_popular_cloud_and_shared_destination(c: Case) -> None:
    office(c)
    # nightly backup to the same off-site destination for 12 days: established
    add(c, daily("10.20.9.5", "203.0.113.80", range(12), 50_000 * MB, hour=1))
    sni(c, T0, "10.20.9.5", "203.0.113.80", "vault.offsite-backup.net")
    # a one-off big upload to a popular cloud domain
    t = T0 + timedelta(days=11, hours=15)
    add(c, [(t, "10.20.1.60", "192.0.2.200", 443, 700 * MB, 9000, "zeek", "Cdb")])
    sni(c, t, "10.20.1.60", "192.0.2.200", "uploads.dropbox.com", "Cdb")
    # big uploads from many hosts to the utility's own cloud tenant (not rare)
    for h in range(4):
        add(c, [(t, f"10.20.1.{50 + h}", "198.51.100.5", 443, 200 * MB, 9000, "zeek", None)])
    sni(c, t, "10.20.1.50", "198.51.100.5", "utility.scada-cloud.example")
    assert found(c, "exfil.large_upload_rare_destination") == []
    # the one-off popular-cloud upload is the only one left once popular names are judged too
    (f,) = found(c, "exfil.large_upload_rare_destination", {"skip_popular": False})
    assert f.entity == "10.20.1.60 -> dropbox.com"


# ---- exfil.over_c2 -------------------------------------------------------------------------------

C2 = "198.51.100.66"


def beacon(c: Case, src: str, days: int = 3, size: int = 600) -> None:
    """A 10-minute HTTPS check-in of ~`size` bytes to the C2 name for `days` days."""
    r = random.Random(src)
    flows, t, i = [], T0, 0
    while t < T0 + timedelta(days=days):
        flows.append((t, src, C2, 443, size + r.randrange(-size // 30, size // 30), 900, "zeek", f"Cb{src}{i}"))
        t += timedelta(seconds=600 + r.uniform(-30, 30))
        i += 1
    add(c, flows)
    for ts, s, d, *_rest, uid in flows:
        sni(c, ts, s, d, "cdn.meterco-update.net", uid)


def test_over_c2_fires_on_volume_to_a_beaconing_destination(c: Case) -> None:
    beacon(c, "10.20.1.15")
    t = T0 + timedelta(days=2, hours=1)
    uploads = [(t + timedelta(minutes=2 * i), "10.20.1.15", C2, 443, 7 * MB, 300, "zeek", f"Cx{i}") for i in range(30)]
    refs = add(c, uploads)
    for ts, s, d, *_rest, uid in uploads:
        sni(c, ts, s, d, "cdn.meterco-update.net", uid)
    res = run(c, "exfil.over_c2")
    (f,) = res.findings
    assert f.entity == "10.20.1.15 -> cdn.meterco-update.net"
    assert f.severity == "critical"  # >= 10 x min_bytes
    d = f.details
    assert d["upload_bytes"] == 210 * MB and d["uploads"] == 30 and d["bytes_out"] > 210 * MB
    assert d["beacon_score"] >= 0.7 and d["addresses"] == [C2]
    assert d["largest_connection"] == 7 * MB and d["median_connection"] < 10_000
    assert f.evidence[0]["source_ref"] in refs  # the biggest flows first


def test_over_c2_quiet_on_a_heartbeat_alone_and_volume_to_a_non_beacon(c: Case) -> None:
    beacon(c, "10.20.1.15")
    # a big upload from the same host, but to somewhere that does not beacon
    add(c, [(T0 + timedelta(days=2), "10.20.1.15", "203.0.113.9", 443, 400 * MB, 300, "zeek", None)])
    res = run(c, "exfil.over_c2")
    assert res.findings == []
    assert not any("no beacon scoring" in n for n in res.notes)


def test_over_c2_quiet_on_steady_telemetry_that_scores_as_a_beacon(c: Case) -> None:
    """A sensor uploading ~300 kB every 10 minutes: a beacon by timing and size, 120 MB over three
    days, but no transfer stands out from its usual size, so it is not exfiltration on top of C2."""
    beacon(c, "10.20.1.15", size=300_000)
    assert beacon_pairs(Context(c, load_settings()))  # the beacon analytics do score it
    assert found(c, "exfil.over_c2") == []


def test_dns_and_exfil_themes_run_on_an_empty_case(c: Case) -> None:
    res = run_analytics(c, only=["dns", "exfil"])
    assert res.findings == [] and all(r.error is None for r in res.runs)
    assert {r.skipped_reason for r in res.runs} == {"no rows in dns", "no rows in conn"}


def test_a_flow_logged_by_zeek_and_the_firewall_is_one_evidence_row_and_counts_once(c: Case) -> None:
    # bytes are taken from one sensor per pair and day; count and evidence must be that sensor's rows too
    office(c)
    add(c, daily("10.20.1.15", "192.0.2.10", range(11), 20 * MB))
    spike = daily("10.20.1.15", "198.51.100.77", [11], 1500 * MB, hour=2, per_day=6)
    add(c, spike)
    add(c, [(t, s, d, p, o, i, "firewall", None) for t, s, d, p, o, i, _, _ in spike])
    (f,) = found(c, "exfil.volume_vs_baseline")
    assert f.count == len(f.evidence) == 6  # the spike's 6 flows (org-wide SaaS left out), once each
    assert len({e["fields"]["source"] for e in f.evidence}) == 1
    (g,) = found(c, "exfil.large_upload_rare_destination")
    assert g.count == len(g.evidence) == 6
    assert len({e["fields"]["source"] for e in g.evidence}) == 1
