"""Which IEC 62443 zone an address is in: one range table, one lookup, for every theme.

DuckDB here has no `inet` extension (nothing is downloaded at run time), so addresses are numbers:
(family, HUGEINT) -- IPv4 as its 32-bit value, IPv6 shifted by 2**127 into the signed range. The
policy becomes a small range table, `gh_zone_ranges` (zone, family, lo, hi, prio, how), with the
same precedence as `gridhunt segmentation`:

    prio 1  asset / role   a zone's `assets:` (asset id, host name or address) and `roles:` entries
    prio 2  cidr           a zone's `cidrs:`
    prio 3  inventory      an inventory asset's addresses, in the zone the inventory gives it
                           (only for zones the policy declares; a CIDR still wins)
    prio 5  local          multicast and limited broadcast (no zone of their own)
    prio 9  internal       private / loopback / link-local / CGNAT ranges in no zone

An address takes its lowest-prio range, then the narrowest, then the zone name (deterministic).
Public addresses match nothing (the caller calls that `internet`).

    notes = zone_ranges(case)
    address_zones(case, "SELECT src_ip AS ip FROM conn", "gh_my_ips")   # ip, family, num, zone, how
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pyarrow as pa

from gridhunt import geo
from gridhunt.geo import INTERNAL_NETWORKS
from gridhunt.sql import temp_table

ZONE_RANGES = "gh_zone_ranges"
OT_MIN_LEVEL = 3  # zones without `kind` are OT from this IEC 62443 security level up (as segmentation)
V6_OFFSET = 2**127  # IPv6 numbers shifted into DuckDB's signed HUGEINT
LOCAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("224.0.0.0/4", "255.255.255.255/32", "ff00::/8"))
# in INTERNAL_NETWORKS but never a device on the wire
NOT_HOSTS = tuple(ipaddress.ip_network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "::1/128"))
IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network


def ip4_num(expr: str) -> str:
    """SQL: the dotted quad in VARCHAR `expr` as a HUGEINT, NULL for anything else (IPv6 included)."""
    o = f"TRY_CAST(string_split(trim({expr}), '.') AS BIGINT[])"
    return (
        rf"(CASE WHEN regexp_full_match(trim({expr}), '[0-9]{{1,3}}(\.[0-9]{{1,3}}){{3}}') AND list_max({o}) <= 255 "
        f"THEN ({o}[1] * 16777216 + {o}[2] * 65536 + {o}[3] * 256 + {o}[4])::HUGEINT END)"
    )


def ip_num(ip: str) -> tuple[int, int] | None:
    """(family, number) as the range table keeps them; IPv4-mapped IPv6 counts as IPv4."""
    addr = geo.parse_ip(ip)
    if addr is None:
        return None
    return (4, int(addr)) if addr.version == 4 else (6, int(addr) - V6_OFFSET)


def net_range(net: IpNet) -> tuple[int, int, int]:
    """(family, lo, hi) of a network."""
    lo, hi = int(net.network_address), int(net.broadcast_address)
    if net.version == 6:
        return 6, lo - V6_OFFSET, hi - V6_OFFSET
    return 4, lo, hi


def in_ranges_sql(family: str, num: str, nets: list[IpNet] | tuple[IpNet, ...]) -> str:
    """SQL predicate: the address (`family`, `num` columns) is in one of `nets`; FALSE for none."""
    parts = []
    for net in nets:
        fam, lo, hi = net_range(net)
        parts.append(f"({family} = {fam} AND {num} BETWEEN {lo} AND {hi})")
    return "(" + (" OR ".join(parts) or "false") + ")"


def parse_cidrs(values: list[Any], where: str) -> list[IpNet]:
    """Settings CIDR lists -> networks; a bad entry is an error naming the setting."""
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(str(v).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{where}: {v!r} is not an address or CIDR") from None
    return out


def _host_index(con: Any) -> dict[str, list[str]]:
    """asset id / host name / short host name (lower case) -> the asset's addresses."""
    idx: dict[str, list[str]] = {}
    for asset_id, hostname, ips in con.execute(
        "SELECT asset_id, hostname, ips FROM assets ORDER BY asset_id"
    ).fetchall():
        for key in {asset_id, hostname, (hostname or "").split(".", 1)[0]} - {None, ""}:
            idx.setdefault(str(key).lower(), []).extend(ips or [])
    return idx


def _resolve(name: str, hosts: dict[str, list[str]]) -> list[str]:
    if ip_num(name) is not None:
        return [name]
    key = name.lower()
    return sorted(set(hosts.get(key) or hosts.get(key.split(".", 1)[0]) or []))


def zone_ranges(case: Any) -> list[str]:
    """(Re)build gh_zone_ranges from `zones` and `assets`; returns notes on policy entries that
    hold no address (a zone listing an unknown asset or a role no asset has)."""
    con = case.con
    notes: list[str] = []
    hosts = _host_index(con)
    declared = set()
    rows: list[tuple[str | None, int, int, int, int, str]] = []
    for name, cidrs, tags, roles in con.execute(
        "SELECT name, cidrs, assets, roles FROM zones ORDER BY name"
    ).fetchall():
        declared.add(name)
        for cidr in cidrs or []:
            try:
                rows.append((name, *net_range(ipaddress.ip_network(cidr.strip(), strict=False)), 2, "cidr"))
            except ValueError:
                notes.append(f"zones: zone {name!r}: {cidr!r} is not a CIDR, skipped")
        for tag in tags or []:
            ips = _resolve(tag, hosts)
            if not ips:
                notes.append(f"zones: zone {name!r} lists asset {tag!r}, which has no address in the inventory")
            rows.extend((name, *n, *n[1:], 1, "asset") for ip in ips if (n := ip_num(ip)))
        wanted = {r.lower() for r in roles or []}
        found = set()
        for role, ips in con.execute("SELECT lower(role), ips FROM assets WHERE role IS NOT NULL").fetchall():
            if role in wanted:
                found.add(role)
                rows.extend((name, *n, *n[1:], 1, "role") for ip in ips or [] if (n := ip_num(ip)))
        notes += [
            f"zones: zone {name!r} lists role {r!r}, which no inventory asset has" for r in sorted(wanted - found)
        ]
    for zone, ips in con.execute("SELECT zone, ips FROM assets ORDER BY asset_id").fetchall():
        if zone in declared:
            rows.extend((zone, *n, *n[1:], 3, "inventory") for ip in ips or [] if (n := ip_num(ip)))
    rows += [(None, *net_range(net), 5, "local") for net in LOCAL_NETWORKS]
    rows += [(None, *net_range(net), 9, "internal") for net in INTERNAL_NETWORKS]
    _load(
        con,
        ZONE_RANGES,
        rows,
        ("zone", "family", "lo", "hi", "prio", "how"),
        "zone, family::INTEGER AS family, lo::HUGEINT AS lo, hi::HUGEINT AS hi, prio::INTEGER AS prio, how",
    )
    return notes


def _load(con: Any, table: str, rows: list[tuple[Any, ...]], names: tuple[str, ...], select: str) -> None:
    """Rows -> temp table through Arrow (executemany costs ~0.5 ms a row); numbers travel as text
    because Arrow has no 128-bit integer and IPv6 numbers need one."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    data = pa.table({n: pa.array([None if v is None else str(v) for v in col], pa.string())
                     for n, col in zip(names, cols, strict=True)})  # fmt: skip
    temp_table(con, table, data, select)


def address_zones(case: Any, source_sql: str, table: str) -> None:
    """Temp table `table` (ip, family, num, zone, how) for every distinct non-NULL `ip` of
    `source_sql`: IPv4 numbered in SQL, the few IPv6 addresses in Python. `how` is the range kind
    that placed it (asset, role, cidr, inventory, local, internal), NULL for a public address, and
    'not an IP' when it is not one. Needs zone_ranges(case) first."""
    con = case.con
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table}_addr AS SELECT DISTINCT ip FROM ({source_sql}) WHERE ip IS NOT NULL"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table}_num AS
        SELECT ip, 4 AS family, {ip4_num("ip")} AS num FROM {table}_addr WHERE NOT contains(ip, ':')"""
    )
    con.execute(f"DELETE FROM {table}_num WHERE num IS NULL")
    v6 = [r[0] for r in con.execute(f"SELECT ip FROM {table}_addr WHERE contains(ip, ':')").fetchall()]
    rows = [(ip, *n) for ip in v6 if (n := ip_num(ip))]
    if rows:
        _load(con, f"{table}_v6", rows, ("ip", "family", "num"), "ip, family::INTEGER, num::HUGEINT")
        con.execute(f"INSERT INTO {table}_num SELECT * FROM {table}_v6")
        con.execute(f"DROP TABLE {table}_v6")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
        WITH m AS (
            SELECT n.ip, r.zone, r.how FROM {table}_num n
            JOIN {ZONE_RANGES} r ON r.family = n.family AND n.num BETWEEN r.lo AND r.hi
            QUALIFY row_number() OVER (PARTITION BY n.ip ORDER BY r.prio, r.hi - r.lo, r.zone) = 1
        )
        SELECT a.ip, n.family, n.num, m.zone, CASE WHEN n.ip IS NULL THEN 'not an IP' ELSE m.how END AS how
        FROM {table}_addr a LEFT JOIN {table}_num n USING (ip) LEFT JOIN m USING (ip)"""
    )
    con.execute(f"DROP TABLE {table}_addr")
    con.execute(f"DROP TABLE {table}_num")


def ot_zone_sql(level: str, kind: str) -> str:
    """SQL predicate over a zone's `level` and `kind` columns: `kind: ot`, or no kind and level >=
    OT_MIN_LEVEL (as `gridhunt segmentation` judges it)."""
    return f"(coalesce(lower({kind}) = 'ot', false) OR ({kind} IS NULL AND coalesce({level} >= {OT_MIN_LEVEL}, false)))"
