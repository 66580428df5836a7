"""Context reader: assets, zones/conduits, vendor register, update log."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from gridhunt.case import Case
from gridhunt.ingest import context
from tests.conftest import TEST_DATA, data_files, rows, sniff_and_ingest, utc

DATA = TEST_DATA / "context"
OTHER = data_files("zeek", "netlog", "ami")
load = partial(sniff_and_ingest, context)


def test_sniff() -> None:
    expect = {
        "assets.yaml": "context_assets",
        "zones.yaml": "context_zones",
        "vendors.yaml": "context_vendors",
        "broken.yaml": "context_assets",
        "updates/updates.csv": "context_updates",
    }
    for name, fmt in expect.items():
        assert context.sniff((DATA / name).read_bytes(), DATA / name) == fmt, name
    assert context.sniff(b"secrets:\n  - {secret_id: x}\n", Path("s.yaml")) == "context_vendors"
    assert context.sniff(b"date_time: ts\nsrcip: src_ip\n", Path("m.yaml")) is None
    # docker-compose has a top-level secrets: too, but not our entries
    compose = b"services:\n  web:\n    image: nginx\nsecrets:\n  db_pw:\n    file: ./pw.txt\n"
    assert context.sniff(compose, Path("docker-compose.yaml")) is None
    for path in OTHER:
        assert context.sniff(path.read_bytes()[:8192], path) is None, path


def test_assets(case: Case) -> None:
    path = DATA / "assets.yaml"
    res = load(case, path)
    assert (res.records_ok, res.records_bad) == (3, 4)
    assert res.errors == [
        ("assets[3]", "ips[0]: not an IP address: '10.40.0.300'"),
        ("assets[4]", "asset_id: missing"),
        ("assets[5]", "duplicate asset_id 'A-0001' (first at assets[0])"),
        ("assets[6]", "expected a mapping, got 'just-a-string'"),
    ]
    got = rows(
        case,
        "SELECT asset_id, hostname, ips, zone, role, owner, vendor, criticality, source_file, "
        "source_ref FROM assets ORDER BY asset_id",
    )
    src = str(path.resolve())
    assert got == [
        (
            "A-0001",
            "dc01",
            ["10.10.0.10"],
            "it",
            "domain_controller",
            "it-ops",
            None,
            "high",
            src,
            "assets[0]",
        ),
        (
            "A-0002",
            "hes01",
            ["10.20.1.15", "fd00::15"],
            "ami",
            "ami_headend",
            "ami-ops",
            "MeterCo",
            "critical",
            src,
            "assets[1]",
        ),
        # a single ip string becomes a one-element list
        (
            "A-0003",
            "plc-fdr12",
            ["10.40.0.21"],
            "ot-control",
            "plc",
            "ot-eng",
            None,
            "high",
            src,
            "assets[2]",
        ),
    ]


def test_zones_and_conduits(case: Case) -> None:
    res = load(case, DATA / "zones.yaml")
    assert (res.records_ok, res.records_bad) == (7, 3)
    assert res.errors == [
        ("line 6: zones[4]", "cidrs[0]: not a CIDR: '10.50.0.0/33'"),
        ("line 10: conduits[2]", "unknown zone 'ot-contrl'"),
        ("line 12: conduits[4]", "ports: not a port or range: 'http'"),
    ]
    assert rows(case, "SELECT name, cidrs, level, source_ref FROM zones ORDER BY source_ref") == [
        ("it", ["10.10.0.0/16"], 1, "zones[0]"),
        ("ami", ["10.20.0.0/16"], 2, "zones[1]"),
        ("vendor-access", ["10.99.0.0/24"], 1, "zones[2]"),
        ("ot-control", ["10.40.0.0/16", "10.41.0.0/16"], 3, "zones[3]"),
    ]
    assert rows(
        case,
        "SELECT from_zone, to_zone, proto, ports, via_host, source_ref FROM conduits ORDER BY source_ref",
    ) == [
        ("vendor-access", "ot-control", "tcp", "3389,22", "jump01", "conduits[0]"),
        ("it", "ami", "tcp", "443", None, "conduits[1]"),
        ("ami", "ot-control", "tcp", "20000-20010,502", None, "conduits[3]"),
    ]


def test_vendors_access_secrets(case: Case) -> None:
    res = load(case, DATA / "vendors.yaml")
    assert (res.records_ok, res.records_bad) == (13, 4)
    assert res.errors == [
        ("line 13: vendors[0].access[8]", "kind: unknown access kind 'carrier_pigeon'"),
        ("line 14: vendors[0].access[9]", "identifier[0]: not a CIDR: '203.0.113.0/40'"),
        ("line 19: vendors[2]", "incident_window: start is after end"),
        ("line 25: secrets[2]", "owner_vendor: unknown vendor 'MeterKo'"),
    ]
    assert rows(
        case, "SELECT vendor, incident_start, incident_end, source_ref FROM vendors ORDER BY vendor"
    ) == [
        ("GridSoft", None, None, "vendors[1]"),
        ("MeterCo", utc(2026, 3, 15), utc(2026, 4, 30), "vendors[0]"),
    ]
    got = rows(
        case,
        "SELECT vendor, kind, identifier, owner, last_rotated, source_ref FROM vendor_access "
        "ORDER BY vendor DESC, source_ref",
    )
    assert len(got) == 9
    assert got[0] == (
        "MeterCo",
        "vpn_account",
        "svc-meterco-vpn",
        "ot-eng",
        utc(2026, 1, 10),
        "vendors[0].access[0]",
    )
    assert [r[1] for r in got[:8]] == list(context.ACCESS_KINDS)
    assert got[5][4] == utc(2025, 11, 1)
    assert got[8] == (
        "GridSoft",
        "service_account",
        "svc_gridsoft",
        None,
        utc(2024, 6, 1),
        "vendors[1].access[0]",
    )
    assert rows(
        case,
        "SELECT secret_id, kind, owner_vendor, last_rotated, expires, source_ref FROM secrets "
        "ORDER BY source_ref",
    ) == [
        ("tok-headend-01", "api_token", "MeterCo", utc(2025, 11, 1), utc(2026, 12, 31), "secrets[0]"),
        ("svc-meterco-vpn", "password", "MeterCo", utc(2026, 1, 10), None, "secrets[1]"),
    ]


def test_yaml_syntax_error_names_line(case: Case) -> None:
    res = load(case, DATA / "broken.yaml")
    assert (res.records_ok, res.records_bad) == (0, 1)
    assert res.errors[0][0] == "line 4"
    assert res.errors[0][1].startswith("YAML syntax error")
    assert rows(case, "SELECT count(*) FROM assets")[0][0] == 0


def test_combined_file_and_wrong_shapes(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "assets:\n  - {asset_id: A-1, ips: []}\n"
        "zones: {name: it}\n"
        "conduits:\n  - {from: a, to: b, ports: 22}\n"
    )
    res = context.ingest(case, path, "context_assets")
    # zones not a list -> one bad record; the file still has a zones key, so conduits are checked
    # against it (no zone known -> 'a' is unknown)
    assert res.records_ok == 1
    assert res.errors == [("line 3: zones", "expected a list of entries"), ("line 5: conduits[0]", "unknown zone 'a'")]
    assert rows(case, "SELECT asset_id, ips FROM assets") == [("A-1", [])]


def test_conduits_alone_are_not_checked(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "conduits.yaml"
    path.write_text("conduits:\n  - {from: it, to: ot, proto: tcp, ports: [502, '20000']}\n")
    res = context.ingest(case, path, "context_zones")
    assert (res.records_ok, res.records_bad) == (1, 0)
    assert rows(case, "SELECT from_zone, to_zone, ports FROM conduits") == [("it", "ot", "502,20000")]


def test_updates_csv(case: Case) -> None:
    path = DATA / "updates" / "updates.csv"
    res = load(case, path)
    assert (res.format, res.records_ok, res.records_bad) == ("context_updates", 2, 2)
    assert res.errors == [("line 4", "ts_applied: bad timestamp 'not-a-date'"), ("line 5", "target: missing")]
    base = (DATA / "updates").resolve()
    got = rows(
        case,
        "SELECT ts_applied, target, product, version, vendor, artifact_sha256, signature_ref, "
        "channel, artifact_path, source_file, source_ref FROM updates ORDER BY ts_applied",
    )
    assert got == [
        (
            utc(2026, 3, 20, 2),
            "hes01",
            "MeterCo HES",
            "4.2.1",
            "MeterCo",
            "1298ae7bebc3e5aae52721fa2ef4345373b429a512870140351f3220d039366b",
            str(base / "artifacts" / "hes-4.2.1.bin.sig"),
            "updates.meterco.example",
            str(base / "artifacts" / "hes-4.2.1.bin"),
            str(path.resolve()),
            "line 2",
        ),
        (
            utc(2026, 4, 2, 2),
            "plc-fdr12",
            "GridSoft PLC FW",
            "7.0.3",
            "GridSoft",
            None,
            "https://sign.gridsoft.example/plc-7.0.3.sig",
            "manual",
            str(base / "artifacts" / "plc-7.0.3.img"),
            str(path.resolve()),
            "line 3",
        ),
    ]
    # the recorded hash is the one in the vendor manifest beside the artifact
    manifest = (base / "artifacts" / "manifest.sha256").read_text().split()
    assert manifest == [got[0][5], "hes-4.2.1.bin"]
