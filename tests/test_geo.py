"""Offline geo: the site overlay, user .mmdb files, the bundled geoip2fast data, internal ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridhunt import geo
from gridhunt.case import Case
from gridhunt.ingest import ingest_paths
from tests.conftest import rows


def test_internal_ranges_are_internal_and_test_nets_are_not() -> None:
    r = geo.GeoResolver(builtin=False)
    for ip in ("10.1.2.3", "172.20.0.1", "192.168.1.1", "127.0.0.1", "100.64.1.1", "fe80::1", "::ffff:10.0.0.1"):
        assert r.lookup(ip) == geo.Geo(True, source="internal"), ip
    # documentation ranges are "public" (Python's is_private says otherwise): the demo gives them countries
    assert r.lookup("198.51.100.7").internal is False
    assert r.lookup("not-an-ip") is None


def test_overlay_longest_prefix_wins_and_gets_a_centroid() -> None:
    r = geo.GeoResolver(
        [
            ("198.51.0.0/16", "NL", "AS1", "Wide", None, None),
            ("198.51.100.0/24", "SG", "AS2", "Narrow", None, None),
            ("2001:db8::/32", "DE", None, "V6 net", 50.0, 8.0),
        ],
        builtin=False,
    )
    g = r.lookup("198.51.100.7")
    assert (g.country, g.asn, g.org, g.source) == ("SG", "AS2", "Narrow", "overlay")
    assert g.lat == pytest.approx(1.37, abs=1.5) and g.lon == pytest.approx(103.8, abs=1.5)  # Singapore
    assert r.lookup("198.51.1.1").country == "NL"
    v6 = r.lookup("2001:db8::5")
    assert (v6.country, v6.lat, v6.lon) == ("DE", 50.0, 8.0)  # given coordinates beat the centroid
    # an overlay can say an address the RFCs call private belongs somewhere (a site's own CGNAT plan)
    r2 = geo.GeoResolver([("10.99.0.0/16", "GB", None, "Branch", None, None)], builtin=False)
    assert r2.lookup("10.99.1.1").internal is False and r2.lookup("10.1.1.1").internal is True


def test_bundled_data_knows_well_known_public_addresses() -> None:
    r = geo.GeoResolver()
    g = r.lookup("8.8.8.8")
    assert g.country == "US" and g.source == "geoip2fast" and "GOOGLE" in (g.org or "").upper()
    assert g.lat is not None


def test_a_user_mmdb_beats_the_bundled_data(tmp_path: Path) -> None:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    city = MMDBWriter(ip_version=6, database_type="GeoIP2-City", ipv4_compatible=True)
    city.insert_network(
        IPSet(["8.8.8.0/24"]), {"country": {"iso_code": "CH"}, "location": {"latitude": 46.9, "longitude": 7.4}}
    )
    city.to_db_file(str(tmp_path / "city.mmdb"))
    asn = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    asn.insert_network(
        IPSet(["8.8.8.0/24"]), {"autonomous_system_number": 64999, "autonomous_system_organization": "Lab"}
    )
    asn.to_db_file(str(tmp_path / "asn.mmdb"))
    r = geo.GeoResolver(mmdb_paths=[tmp_path / "city.mmdb", tmp_path / "asn.mmdb"])
    g = r.lookup("8.8.8.8")
    assert (g.country, g.asn, g.org, g.lat, g.lon, g.source) == ("CH", "AS64999", "Lab", 46.9, 7.4, "mmdb")
    # outside the user's file: the bundled data answers
    assert r.lookup("1.1.1.1").source == "geoip2fast"


def test_geoip_csv_is_ingested_with_bad_rows_named(case: Case, tmp_path: Path) -> None:
    p = tmp_path / "geoip.csv"
    p.write_text(
        "cidr,country,asn,org,lat,lon\n"
        "198.51.100.0/24,nl,64510,VPS Host,,\n"
        "203.0.113.0/33,DE,AS64502,Bad prefix,,\n"
        "192.0.2.0/24,Germany,AS1,Bad country,,\n"
        "192.0.2.128/25,FR,AS2,Bad lat,95,2\n"
        "2001:db8::/32,DE,,V6,50.1,8.6\n"
    )
    report = ingest_paths(case, [p])
    (f,) = report.files
    assert f.format == "context_geoip" and (f.records_ok, f.records_bad) == (2, 3)
    reasons = dict(f.errors)
    assert "line 3" in reasons and reasons["line 3"].startswith("cidr:")
    assert reasons["line 4"] == "country: expected an ISO 3166 alpha-2 code, got 'GERMANY'"
    assert reasons["line 5"] == "lat: 95.0 is outside -90..90"
    assert rows(case, "SELECT cidr, country, asn FROM geo_networks ORDER BY source_ref") == [
        ("198.51.100.0/24", "NL", "AS64510"),
        ("2001:db8::/32", "DE", None),
    ]


def test_enrich_fills_ip_geo_once_per_address_and_refresh_redoes_it(case: Case) -> None:
    case.con.execute(
        'INSERT INTO auth (ts, "user", src_ip, outcome) VALUES '
        "(now(), 'a', '198.51.100.7', 'success'), (now(), 'b', '198.51.100.7', 'success'), "
        "(now(), 'c', '10.0.0.1', 'success'), (now(), 'd', NULL, 'failure')"
    )
    assert geo.enrich(case) == 2
    assert geo.enrich(case) == 0
    assert rows(case, "SELECT ip, internal, country FROM ip_geo ORDER BY ip") == [
        ("10.0.0.1", True, None),
        ("198.51.100.7", False, None),
    ]
    case.con.execute("INSERT INTO geo_networks (cidr, country) VALUES ('198.51.100.0/24', 'NL')")
    assert geo.enrich(case, refresh=True) == 2
    assert rows(case, "SELECT country FROM ip_geo WHERE ip = '198.51.100.7'") == [("NL",)]
