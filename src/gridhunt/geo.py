"""Offline geo and network context for IP addresses: internal or not, country, ASN, location.

Sources, first hit wins per field:
1. the site's own overlay (`geoip.csv` context file -> table geo_networks), longest prefix first;
2. MaxMind-format `.mmdb` files the user passes (GeoLite2 / GeoIP2 Country, City, ASN, or
   ipinfo / DB-IP files with the same record keys), read with `maxminddb`;
3. the country + ASN data that ships inside the `geoip2fast` wheel (a 2024 snapshot of
   MaxMind GeoLite2 country and ASN ranges), so nothing downloads at run time.
Locations without a city database are the country's centroid (`countryinfo` package data),
which is what impossible-travel speeds are computed from.

Private, loopback, link-local and carrier-grade NAT ranges are tagged internal. Documentation
ranges (TEST-NET-1/2/3) are not: the demo and tests give them countries through the overlay.
Results are cached per case in the `ip_geo` table, one row per distinct address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa

INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)
IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Geo:
    internal: bool
    country: str | None = None
    asn: str | None = None
    org: str | None = None
    lat: float | None = None
    lon: float | None = None
    source: str | None = None  # overlay | mmdb | geoip2fast | internal | None (not found)


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from text (a `%zone` suffix dropped, IPv4-mapped IPv6 as IPv4); None if not one."""
    try:
        addr = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_internal(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == n.version and addr in n for n in INTERNAL_NETWORKS)


@lru_cache(maxsize=512)
def country_centroid(code: str) -> tuple[float, float] | None:
    """(lat, lon) of a country's centroid from the countryinfo package, None if unknown."""
    from countryinfo import CountryInfo

    try:
        latlng = CountryInfo(code).latlng()
    except Exception:  # noqa: BLE001 - unknown or partial country record: no location
        return None
    if not latlng or len(latlng) != 2:
        return None
    return float(latlng[0]), float(latlng[1])


class _Overlay:
    """Longest-prefix match over the site's CIDR list: one dict per prefix length."""

    def __init__(self, rows: Iterable[tuple[str, str | None, str | None, str | None, float | None, float | None]]):
        self.by_len: dict[tuple[int, int], dict[int, Geo]] = {}
        for cidr, country, asn, org, lat, lon in rows:
            net = ipaddress.ip_network(cidr, strict=False)
            geo = Geo(False, country, asn, org, lat, lon, "overlay")
            # the first row for a network wins, as the file is read in order
            self.by_len.setdefault((net.version, net.prefixlen), {}).setdefault(int(net.network_address), geo)
        self.order = sorted(self.by_len, key=lambda k: -k[1])

    def lookup(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Geo | None:
        value = int(addr)
        bits = addr.max_prefixlen
        for version, plen in self.order:
            if version != addr.version:
                continue
            masked = value >> (bits - plen) << (bits - plen) if plen else 0
            hit = self.by_len[(version, plen)].get(masked)
            if hit is not None:
                return hit
        return None


def _from_mmdb(rec: dict[str, Any]) -> dict[str, Any]:
    """The fields we use from a MaxMind / ipinfo / DB-IP style record."""
    out: dict[str, Any] = {}
    country = (rec.get("country") or {}).get("iso_code") if isinstance(rec.get("country"), dict) else None
    country = (
        country or rec.get("country_code") or (rec.get("country") if isinstance(rec.get("country"), str) else None)
    )
    if country:
        out["country"] = str(country).upper()
    asn = rec.get("autonomous_system_number") or rec.get("asn")
    if asn:
        asn = str(asn)
        out["asn"] = asn if asn.upper().startswith("AS") else f"AS{asn}"
    org = rec.get("autonomous_system_organization") or rec.get("as_name") or rec.get("organization")
    if org:
        out["org"] = str(org)
    loc = rec.get("location")
    if isinstance(loc, dict) and loc.get("latitude") is not None and loc.get("longitude") is not None:
        out["lat"], out["lon"] = float(loc["latitude"]), float(loc["longitude"])
    return out


class GeoResolver:
    """Looks addresses up in the overlay, the user's .mmdb files, then the bundled data."""

    def __init__(
        self,
        overlay: Iterable[tuple[str, str | None, str | None, str | None, float | None, float | None]] = (),
        mmdb_paths: Sequence[Path] = (),
        builtin: bool = True,
    ) -> None:
        import maxminddb

        self.overlay = _Overlay(overlay)
        self.readers = [maxminddb.open_database(str(p)) for p in mmdb_paths]
        self.builtin = builtin
        self._fast: Any = None

    @classmethod
    def for_case(cls, case: Any, mmdb_paths: Sequence[Path] = (), builtin: bool = True) -> GeoResolver:
        rows = case.con.execute(
            "SELECT cidr, country, asn, org, lat, lon FROM geo_networks ORDER BY source_file, source_ref"
        ).fetchall()
        return cls(rows, mmdb_paths, builtin)

    def _geoip2fast(self) -> Any:
        if self._fast is None:
            from geoip2fast import GeoIP2Fast

            self._fast = GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn.dat.gz", verbose=False)
        return self._fast

    def lookup(self, ip: str) -> Geo | None:
        """None for text that is not an IP address."""
        addr = parse_ip(ip)
        if addr is None:
            return None
        hit = self.overlay.lookup(addr)
        if hit is not None:
            return self._located(hit)
        if is_internal(addr):
            return Geo(True, source="internal")
        fields: dict[str, Any] = {}
        for reader in self.readers:
            rec = reader.get(str(addr))
            if isinstance(rec, dict):
                for k, v in _from_mmdb(rec).items():
                    fields.setdefault(k, v)
        source = "mmdb" if fields else None
        if self.builtin and ("country" not in fields or "org" not in fields):
            r = self._geoip2fast().lookup(str(addr))
            code = getattr(r, "country_code", None)
            if code and code not in ("--", "") and "country" not in fields:
                fields["country"] = code
                source = source or "geoip2fast"
            org = getattr(r, "asn_name", None)
            if org and "org" not in fields:
                fields["org"] = org
                source = source or "geoip2fast"
        return self._located(
            Geo(
                False,
                fields.get("country"),
                fields.get("asn"),
                fields.get("org"),
                fields.get("lat"),
                fields.get("lon"),
                source,
            )
        )

    @staticmethod
    def _located(geo: Geo) -> Geo:
        if geo.lat is not None or geo.country is None:
            return geo
        centroid = country_centroid(geo.country)
        if centroid is None:
            return geo
        return Geo(geo.internal, geo.country, geo.asn, geo.org, centroid[0], centroid[1], geo.source)


def enrich(
    case: Any,
    columns: Sequence[tuple[str, str]] = (("auth", "src_ip"),),
    mmdb_paths: Sequence[Path] = (),
    refresh: bool = False,
) -> int:
    """Add an `ip_geo` row for every distinct address in `columns` (table, column) not looked up
    yet (`refresh`: look every address up again, as after a new overlay or .mmdb). Returns the
    number of addresses looked up."""
    if refresh:
        case.con.execute("DELETE FROM ip_geo")
    union = " UNION ".join(f'SELECT DISTINCT "{c}" AS ip FROM {t} WHERE "{c}" IS NOT NULL' for t, c in columns)
    ips = [
        r[0]
        for r in case.con.execute(
            f"SELECT ip FROM ({union}) WHERE ip NOT IN (SELECT ip FROM ip_geo) ORDER BY ip"
        ).fetchall()
    ]
    if not ips:
        return 0
    resolver = GeoResolver.for_case(case, mmdb_paths)
    cols: dict[str, list[Any]] = {
        k: [] for k in ("ip", "internal", "country", "asn", "org", "lat", "lon", "geo_source")
    }
    for ip in ips:
        g = resolver.lookup(ip)
        if g is None:  # not an address (a host name in an IP column): remember it as unknown
            g = Geo(False)
        for k, v in zip(cols, (ip, g.internal, g.country, g.asn, g.org, g.lat, g.lon, g.source), strict=True):
            cols[k].append(v)
    tbl = pa.table(cols)
    case.con.register("_gh_ip_geo", tbl)
    try:
        case.con.execute("INSERT INTO ip_geo BY NAME SELECT * FROM _gh_ip_geo")
    finally:
        case.con.unregister("_gh_ip_geo")
    return len(ips)
