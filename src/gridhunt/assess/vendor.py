"""Vendor exposure: for every access path in the vendor register, what the evidence shows.

    rep = vendor_exposure(case, "MeterCo", window=(start, end))   # default: the incident window
    rep.paths          one PathReport per register entry (vendor_access row), register order
    rep.graph          networkx DiGraph  source -> path -> host -> zone (OT zones marked)
    rep.findings       assess.* findings (OT reached outside a conduit, use from unregistered
                       addresses, paths with no telemetry)

Which rows are a path's evidence (all inside the window):

    vpn_account / service_account / api_token
        auth rows of the account; ami_audit rows it acted in (an API token by params.token_id);
        the VPN sessions of its VPN logons (conn source 'vpn': client -> tunnel address) and, while
        a session lasts, conn flows and logons from the tunnel address
    jump_host      conn flows and logons from its addresses (inventory host name / asset id, or an
                   address), AMI audit rows from them; connections and logons into it
    ip_range       conn flows, logons and AMI audit rows from the range; internal hosts talking to it
    update_channel / telemetry
                   DNS queries for its names, HTTP Host / TLS SNI matching them, conn rows of those
                   connections (same uid) or to the addresses they resolved to
    cert           x509 rows with its fingerprint or subject, TLS rows with its subject

Hosts reached get their zone from detect/zones.py (the same mapping as `gridhunt segmentation`);
flows are judged by the segmentation classification (allowed / outside any conduit / denied), so
bytes count a connection logged by Zeek and the firewall once. A path with no rows at all is
"no telemetry": a blind spot, not a clean bill.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import networkx as nx

from gridhunt.detect import segmentation as seg
from gridhunt.detect import zones as zmap
from gridhunt.detect.base import MAX_EVIDENCE_ROWS
from gridhunt.detect.settings import load_settings
from gridhunt.geo import GeoResolver, is_internal, parse_ip
from gridhunt.report.findings import SEVERITY_RANK, Finding, sort_key
from gridhunt.sql import sql_literal

CREDENTIAL_KINDS = ("vpn_account", "service_account", "api_token")
CHANNEL_KINDS = ("update_channel", "telemetry")
# how each evidence role reads: where the row came from, and what it shows the path reaching
SOURCE_ROLES = ("logon", "ami", "session", "inbound")
REACH_ROLES = ("logon", "ami", "flow", "client", "cert")  # VPN sessions: summarised, not hosts
# Windows events that are a session on the host itself; Kerberos / NTLM validation events name the DC
SESSION_EVENTS = (4624, 4625)
VPN_MATCH_MINUTES = 2  # a VPN session row within this of the account's VPN logon from the same address
_EV = "gh_vx_ev"


class VendorError(ValueError):
    """A vendor the case does not know, or a bad window."""


# ---- window ------------------------------------------------------------------------------------


def parse_window(text: str | None) -> tuple[datetime | None, datetime | None]:
    """'A..B' (either side may be empty) -> (start, end), UTC. A date alone starts at its midnight; a
    date-only end takes in that whole day."""
    if text is None or not text.strip():
        return None, None
    if ".." not in text:
        raise VendorError(f"--window: expected A..B (ISO dates or times, either side may be empty), got {text!r}")
    a, b = (s.strip() for s in text.split("..", 1))
    start = _parse_time(a, "start") if a else None
    end = _parse_time(b, "end") if b else None
    if end is not None and len(b) == 10:  # a bare date: up to the end of that day
        end += timedelta(days=1)
    if start is not None and end is not None and start >= end:
        raise VendorError(f"--window: start {a} is not before end {b}")
    return start, end


def _parse_time(s: str, which: str) -> datetime:
    try:
        if len(s) == 10:
            d = date.fromisoformat(s)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise VendorError(f"--window: {which}: not an ISO date or time: {s!r}") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _ts_sql(col: str, start: datetime | None, end: datetime | None) -> str:
    parts = []
    if start is not None:
        parts.append(f"{col} >= TIMESTAMPTZ {sql_literal(start.isoformat())}")
    if end is not None:
        parts.append(f"{col} < TIMESTAMPTZ {sql_literal(end.isoformat())}")
    return " AND ".join(parts) or "true"


# ---- model -------------------------------------------------------------------------------------


@dataclass
class PathReport:
    pid: int
    vendor: str
    kind: str
    identifier: str
    owner: str | None
    last_rotated: datetime | None
    rotate_by: datetime | None
    expires: datetime | None
    source_file: str | None
    source_ref: str | None
    attrs: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # evidence rows per table
    roles: dict[str, int] = field(default_factory=dict)  # evidence rows per role (logon, session, flow, …)
    records: int = 0  # distinct evidence records (an AMI login is one record in auth and ami_audit)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    logins: dict[str, int] = field(default_factory=dict)  # success / failure
    sessions: int = 0
    session_seconds: float = 0.0
    tunnel_addresses: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    hosts: list[dict[str, Any]] = field(default_factory=list)
    # bytes over the path's connections, by direction: VPN sessions and flows the vendor side opened
    # (from its range, tunnel or jump host) send bytes_out to us; our hosts opening a channel to the
    # vendor (telemetry, updates) send it their bytes_out
    bytes_to_vendor: int = 0
    bytes_from_vendor: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def node(self) -> str:
        return f"path:{self.kind}:{self.identifier}"

    @property
    def label(self) -> str:
        return f"{self.kind} {self.identifier}"

    @property
    def no_telemetry(self) -> bool:
        return self.records == 0

    @property
    def reaches_ot(self) -> bool:
        return any(h["ot"] for h in self.hosts)

    def to_dict(self) -> dict[str, Any]:
        keys = ("vendor", "kind", "identifier", "owner", "last_rotated", "rotate_by", "expires", "source_file",
                "source_ref", "attrs", "counts", "roles", "records", "first_seen", "last_seen", "logins", "sessions",
                "session_seconds", "tunnel_addresses", "sources", "hosts", "bytes_to_vendor", "bytes_from_vendor",
                "findings", "notes")  # fmt: skip
        d = {k: _plain(getattr(self, k)) for k in keys}
        d["no_telemetry"] = self.no_telemetry
        d["reaches_ot"] = self.reaches_ot
        return d


@dataclass
class ExposureReport:
    vendor: str
    contact: str | None
    incident_start: datetime | None
    incident_end: datetime | None
    window_start: datetime | None
    window_end: datetime | None
    paths: list[PathReport]
    graph: nx.DiGraph
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)

    @property
    def gaps(self) -> list[PathReport]:
        return [p for p in self.paths if p.no_telemetry]

    def graph_json(self) -> dict[str, Any]:
        return graph_json(self.graph)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "contact": self.contact,
            "incident_window": {"start": _plain(self.incident_start), "end": _plain(self.incident_end)},
            "window": {"start": _plain(self.window_start), "end": _plain(self.window_end)},
            "summary": {
                "paths": len(self.paths),
                "with_evidence": sum(1 for p in self.paths if not p.no_telemetry),
                "no_telemetry": [p.label for p in self.gaps],
                "reach_ot": [p.label for p in self.paths if p.reaches_ot],
                "findings": len(self.findings),
            },
            "paths": [p.to_dict() for p in self.paths],
            "findings": [f.to_dict() for f in self.findings],
            "graph": self.graph_json(),
            "notes": self.notes,
        }


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def graph_json(graph: nx.DiGraph) -> dict[str, Any]:
    """node-link JSON (networkx's layout: nodes, links), every value JSON-safe."""
    data = nx.node_link_data(graph, edges="links")
    return _plain(data)


# ---- register ----------------------------------------------------------------------------------


def _ref_key(source_file: str | None, ref: str | None) -> tuple[str, tuple[int, ...]]:
    return source_file or "", tuple(int(n) for n in re.findall(r"\d+", ref or ""))


def have(case: Any, table: str, *cols: str) -> str:
    """`cols` as a select list, NULL for those a case file written before they existed lacks (opened
    read-only, it cannot gain them)."""
    present = set(case.columns(table))
    return ", ".join(c if c in present else f"NULL AS {c}" for c in cols)


def vendor_names(case: Any) -> list[str]:
    rows = case.con.execute(
        "SELECT vendor FROM vendors UNION SELECT vendor FROM vendor_access UNION "
        "SELECT owner_vendor FROM secrets WHERE owner_vendor IS NOT NULL"
    ).fetchall()
    return sorted({r[0] for r in rows if r[0]})


def _vendor_row(case: Any, vendor: str) -> tuple[str, str | None, datetime | None, datetime | None]:
    """(name as registered, contact, incident start, end); the name matches ignoring case."""
    names = vendor_names(case)
    match = [n for n in names if n.lower() == vendor.lower()]
    if not match:
        known = ", ".join(names) or "none: the case holds no vendor register (vendors.yaml)"
        raise VendorError(f"unknown vendor {vendor!r} (vendors in the case: {known})")
    name = match[0]
    row = case.con.execute(
        f"SELECT {have(case, 'vendors', 'contact')}, incident_start, incident_end FROM vendors WHERE vendor = ? "
        "ORDER BY source_ref LIMIT 1",
        [name],
    ).fetchall()
    return (name, *row[0]) if row else (name, None, None, None)


def register_paths(case: Any, vendor: str) -> list[PathReport]:
    rows = case.con.execute(
        f"""SELECT vendor, kind, identifier, owner, last_rotated, {have(case, "vendor_access", "rotate_by", "expires")},
            source_file, source_ref, {have(case, "vendor_access", "attrs")}
        FROM vendor_access WHERE vendor = ?""",
        [vendor],
    ).fetchall()
    rows.sort(key=lambda r: _ref_key(r[7], r[8]))
    return [
        PathReport(i, *r[:9], attrs=json.loads(r[9]) if r[9] else {})  # type: ignore[arg-type]
        for i, r in enumerate(rows)
    ]


def vendor_networks(case: Any, vendor: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for (ident,) in case.con.execute(
        "SELECT identifier FROM vendor_access WHERE vendor = ? AND kind = 'ip_range' ORDER BY identifier", [vendor]
    ).fetchall():
        try:
            out.append(ipaddress.ip_network(ident, strict=False))
        except ValueError:
            continue
    return out


def in_networks(ip: str | None, nets: list[Any]) -> bool:
    if not ip:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr.version == n.version and addr in n for n in nets)


def is_public(ip: str | None) -> bool:
    """Not internal as the hunt's geo sees it (documentation ranges count as public, as in the README)."""
    addr = parse_ip(ip) if ip else None
    return addr is not None and not is_internal(addr) and not addr.is_multicast and not addr.is_unspecified


# ---- evidence collection -----------------------------------------------------------------------

_EV_COLUMNS = """pid INTEGER, tbl VARCHAR, role VARCHAR, ts TIMESTAMPTZ, src_ip VARCHAR, dst_ip VARCHAR,
    reach_kind VARCHAR, reach VARCHAR, usr VARCHAR, outcome VARCHAR, auth_source VARCHAR, event_id INTEGER,
    bytes_out BIGINT,
    bytes_in BIGINT, duration DOUBLE, uid VARCHAR, source_file VARCHAR, source_ref VARCHAR"""


def _fp_list(attrs: dict[str, Any], cert: Any) -> list[str]:
    fps = [attrs["fingerprint"]] if attrs.get("fingerprint") else []
    if cert is not None:
        fps += [cert.sha256, cert.sha1]
    return sorted({f.lower() for f in fps})


def norm_dn(dn: str) -> str:
    """A distinguished name compared as a set of RDNs, lower case (Zeek and cryptography order them
    differently)."""
    return ",".join(sorted(p.strip().lower() for p in dn.split(",") if p.strip()))


def _dn_sql(col: str) -> str:
    return f"array_to_string(list_sort(list_transform(string_split(lower({col}), ','), lambda x: trim(x))), ',')"


def collect_evidence(
    case: Any,
    paths: list[PathReport],
    start: datetime | None,
    end: datetime | None,
    certs: dict[int, Any] | None = None,
) -> list[str]:
    """Fill temp table gh_vx_ev with every evidence row of `paths` in the window (columns _EV_COLUMNS);
    gh_vx_addr holds every address of the tables with its zone (detect/zones.py). `certs`: pid ->
    parsed certificate (secrets.CertInfo), for cert paths matched by fingerprint / subject. Returns
    notes on the zone policy."""
    con = case.con
    certs = certs or {}
    notes = zmap.zone_ranges(case)
    zmap.address_zones(
        case,
        """SELECT src_ip AS ip FROM conn UNION ALL SELECT dst_ip FROM conn UNION ALL SELECT src_ip FROM auth
        UNION ALL SELECT src_ip FROM ami_audit UNION ALL SELECT unnest(ips) FROM assets""",
        "gh_vx_addr",
    )
    con.execute("CREATE OR REPLACE TEMP TABLE gh_vx_pkind (pid INTEGER, kind VARCHAR)")
    if paths:
        con.executemany("INSERT INTO gh_vx_pkind VALUES (?, ?)", [(p.pid, p.kind) for p in paths])
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_EV} ({_EV_COLUMNS})")
    w = lambda col="ts": _ts_sql(col, start, end)  # noqa: E731 - window predicate per table
    ins = f"INSERT INTO {_EV} BY NAME "

    # accounts: one small table, one scan per evidence table
    acct = [(p.pid, p.identifier.lower(), p.kind) for p in paths if p.kind in CREDENTIAL_KINDS]
    con.execute("CREATE OR REPLACE TEMP TABLE gh_vx_acct (pid INTEGER, ident VARCHAR, kind VARCHAR)")
    if acct:
        con.executemany("INSERT INTO gh_vx_acct VALUES (?, ?, ?)", acct)
        con.execute(
            ins
            + f"""SELECT p.pid, 'auth' AS tbl, 'logon' AS role, a.ts, a.src_ip, NULL AS dst_ip,
                CASE WHEN a.source = 'ami' THEN 'system' ELSE 'host' END AS reach_kind, a.dst_host AS reach,
                a."user" AS usr, a.outcome, a.source AS auth_source, a.event_id, a.source_file, a.source_ref
            FROM auth a JOIN gh_vx_acct p ON lower(a."user") = p.ident WHERE {w("a.ts")}"""
        )
        con.execute(
            ins
            + f"""SELECT p.pid, 'ami_audit' AS tbl, 'ami' AS role, x.ts, x.src_ip, 'system' AS reach_kind,
                x.system AS reach, x."user" AS usr, x.result AS outcome, x.source_file, x.source_ref
            FROM ami_audit x JOIN gh_vx_acct p ON lower(x."user") = p.ident
                OR lower(json_extract_string(x.params, '$.token_id')) = p.ident
            WHERE {w("x.ts")} AND (lower(x."user") = p.ident OR p.kind = 'api_token')"""
        )
        # VPN sessions of the account's VPN logons (the reader writes them as conn: client -> tunnel)
        con.execute(
            ins
            + f"""SELECT DISTINCT l.pid, 'conn' AS tbl, 'session' AS role, c.ts, c.src_ip, c.dst_ip,
                'ip' AS reach_kind, c.dst_ip AS reach, l.usr, 'success' AS outcome, c.bytes_out, c.bytes_in,
                c.duration, c.uid, c.source_file, c.source_ref
            FROM {_EV} l JOIN conn c ON c.source = 'vpn' AND c.src_ip = l.src_ip
                AND c.ts BETWEEN l.ts - INTERVAL {VPN_MATCH_MINUTES} MINUTE
                    AND l.ts + INTERVAL {VPN_MATCH_MINUTES} MINUTE
            WHERE l.role = 'logon' AND l.auth_source = 'vpn' AND l.outcome = 'success' AND c.dst_ip IS NOT NULL"""
        )
        # while a session lasts, flows and logons from its tunnel address are the path's
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE gh_vx_tun AS
            SELECT DISTINCT pid, dst_ip AS ip, ts - INTERVAL 1 MINUTE AS t0,
                ts + to_microseconds((coalesce(duration, 12 * 3600) * 1e6)::BIGINT) + INTERVAL 1 MINUTE AS t1
            FROM {_EV} WHERE role = 'session'"""
        )
        con.execute(
            ins
            # DISTINCT: one account's sessions often share a tunnel address and overlap in time
            + f"""SELECT DISTINCT t.pid, 'conn' AS tbl, 'flow' AS role, c.ts, c.src_ip, c.dst_ip, 'ip' AS reach_kind,
                c.dst_ip AS reach, c.action AS outcome, c.bytes_out, c.bytes_in, c.duration, c.uid,
                c.source_file, c.source_ref
            FROM conn c JOIN gh_vx_tun t ON c.src_ip = t.ip AND c.ts BETWEEN t.t0 AND t.t1
            WHERE c.source <> 'vpn' AND {w("c.ts")}"""
        )
        con.execute(
            ins
            + f"""SELECT DISTINCT t.pid, 'auth' AS tbl, 'logon' AS role, a.ts, a.src_ip, 'host' AS reach_kind,
                a.dst_host AS reach, a."user" AS usr, a.outcome, a.source AS auth_source, a.event_id, a.source_file,
                a.source_ref
            FROM auth a JOIN gh_vx_tun t ON a.src_ip = t.ip AND a.ts BETWEEN t.t0 AND t.t1
            WHERE {w("a.ts")} AND a.source <> 'ami'
                AND NOT EXISTS (SELECT 1 FROM {_EV} e WHERE e.pid = t.pid AND e.source_file = a.source_file
                                AND e.source_ref = a.source_ref)"""
        )

    # jump hosts and ip ranges: address sets
    hosts = zmap._host_index(con)
    addr_rows: list[tuple[int, str]] = []
    names: list[tuple[int, str]] = []
    ranges: list[tuple[int, int, int, int]] = []
    for p in paths:
        if p.kind == "jump_host":
            ips = zmap._resolve(p.identifier, hosts)
            if not ips:
                p.notes.append(f"jump host {p.identifier!r} is neither an address nor an inventory host: "
                               "only logons naming it can be found")  # fmt: skip
            addr_rows += [(p.pid, ip) for ip in ips]
            key = p.identifier.lower()
            names += [(p.pid, n) for n in {key, key.split(".", 1)[0]}]
            for asset_id, hostname in con.execute(
                "SELECT asset_id, hostname FROM assets WHERE lower(asset_id) = ? OR lower(hostname) = ? "
                "OR split_part(lower(hostname), '.', 1) = ?",
                [key, key, key.split(".", 1)[0]],
            ).fetchall():
                names += [(p.pid, n.lower()) for n in (asset_id, hostname, (hostname or "").split(".", 1)[0]) if n]
        elif p.kind == "ip_range":
            try:
                ranges.append((p.pid, *zmap.net_range(ipaddress.ip_network(p.identifier, strict=False))))
            except ValueError:
                p.notes.append(f"ip_range {p.identifier!r} is not a CIDR")
        elif p.kind in CHANNEL_KINDS:
            for h in _channel_hosts(p):
                try:
                    ranges.append((p.pid, *zmap.net_range(ipaddress.ip_network(h, strict=False))))
                except ValueError:
                    continue
    con.execute("CREATE OR REPLACE TEMP TABLE gh_vx_jump (pid INTEGER, ip VARCHAR)")
    con.execute("CREATE OR REPLACE TEMP TABLE gh_vx_jname (pid INTEGER, name VARCHAR)")
    if addr_rows:
        con.executemany("INSERT INTO gh_vx_jump VALUES (?, ?)", sorted(set(addr_rows)))
    if names:
        con.executemany("INSERT INTO gh_vx_jname VALUES (?, ?)", sorted(set(names)))
    if addr_rows or names:
        con.execute(
            ins
            + f"""SELECT j.pid, 'conn' AS tbl, 'flow' AS role, c.ts, c.src_ip, c.dst_ip, 'ip' AS reach_kind,
                c.dst_ip AS reach, c.action AS outcome, c.bytes_out, c.bytes_in, c.duration, c.uid,
                c.source_file, c.source_ref
            FROM conn c JOIN gh_vx_jump j ON c.src_ip = j.ip WHERE {w("c.ts")}
            UNION ALL
            SELECT j.pid, 'conn', 'inbound', c.ts, c.src_ip, c.dst_ip, NULL, NULL, c.action, c.bytes_in,
                c.bytes_out, c.duration, c.uid, c.source_file, c.source_ref
            FROM conn c JOIN gh_vx_jump j ON c.dst_ip = j.ip WHERE {w("c.ts")}"""
        )
        con.execute(
            ins
            + f"""SELECT j.pid, 'auth' AS tbl, 'logon' AS role, a.ts, a.src_ip,
                CASE WHEN a.source = 'ami' THEN 'system' ELSE 'host' END AS reach_kind, a.dst_host AS reach,
                a."user" AS usr, a.outcome, a.source AS auth_source, a.event_id, a.source_file, a.source_ref
            FROM auth a JOIN gh_vx_jump j ON a.src_ip = j.ip WHERE {w("a.ts")}
            UNION ALL
            SELECT n.pid, 'auth', 'inbound', a.ts, a.src_ip, NULL, NULL, a."user", a.outcome, a.source, a.event_id,
                a.source_file, a.source_ref
            FROM auth a JOIN gh_vx_jname n ON split_part(lower(a.dst_host), '.', 1) = split_part(n.name, '.', 1)
                AND (NOT contains(n.name, '.') OR NOT contains(a.dst_host, '.') OR lower(a.dst_host) = n.name)
            WHERE {w("a.ts")} AND a.source <> 'ami'"""
        )
        con.execute(
            ins
            + f"""SELECT j.pid, 'ami_audit' AS tbl, 'ami' AS role, x.ts, x.src_ip, 'system' AS reach_kind,
                x.system AS reach, x."user" AS usr, x.result AS outcome, x.source_file, x.source_ref
            FROM ami_audit x JOIN gh_vx_jump j ON x.src_ip = j.ip WHERE {w("x.ts")}"""
        )

    # ip ranges (and channel hosts given as addresses): the distinct addresses of the tables, numbered
    con.execute("CREATE OR REPLACE TEMP TABLE gh_vx_rng (pid INTEGER, family INTEGER, lo HUGEINT, hi HUGEINT)")
    con.execute("CREATE OR REPLACE TEMP TABLE gh_vx_rip (pid INTEGER, ip VARCHAR, kind VARCHAR)")
    if ranges:
        for pid, fam, lo, hi in ranges:
            con.execute("INSERT INTO gh_vx_rng VALUES (?, ?, ?::HUGEINT, ?::HUGEINT)", [pid, fam, str(lo), str(hi)])
        con.execute(
            """INSERT INTO gh_vx_rip SELECT DISTINCT r.pid, a.ip, p.kind FROM gh_vx_addr a
            JOIN gh_vx_rng r ON r.family = a.family AND a.num BETWEEN r.lo AND r.hi
            JOIN gh_vx_pkind p ON p.pid = r.pid"""
        )
        con.execute(
            ins
            + f"""SELECT r.pid, 'conn' AS tbl, CASE WHEN c.source = 'vpn' THEN 'session' ELSE 'flow' END AS role,
                c.ts, c.src_ip, c.dst_ip, 'ip' AS reach_kind, c.dst_ip AS reach, c.action AS outcome, c.bytes_out,
                c.bytes_in, c.duration, c.uid, c.source_file, c.source_ref
            FROM conn c JOIN gh_vx_rip r ON c.src_ip = r.ip AND r.kind = 'ip_range' WHERE {w("c.ts")}
            UNION ALL
            SELECT r.pid, 'conn', 'client', c.ts, c.src_ip, c.dst_ip, 'ip', c.src_ip, c.action, c.bytes_out,
                c.bytes_in, c.duration, c.uid, c.source_file, c.source_ref
            FROM conn c JOIN gh_vx_rip r ON c.dst_ip = r.ip WHERE {w("c.ts")}"""
        )
        con.execute(
            ins
            + f"""SELECT r.pid, 'auth' AS tbl, 'logon' AS role, a.ts, a.src_ip,
                CASE WHEN a.source = 'ami' THEN 'system' ELSE 'host' END AS reach_kind, a.dst_host AS reach,
                a."user" AS usr, a.outcome, a.source AS auth_source, a.event_id, a.source_file, a.source_ref
            FROM auth a JOIN gh_vx_rip r ON a.src_ip = r.ip AND r.kind = 'ip_range' WHERE {w("a.ts")}
            UNION ALL
            SELECT r.pid, 'ami_audit', 'ami', x.ts, x.src_ip, 'system', x.system, x."user", x.result, NULL, NULL,
                x.source_file, x.source_ref
            FROM ami_audit x JOIN gh_vx_rip r ON x.src_ip = r.ip AND r.kind = 'ip_range' WHERE {w("x.ts")}"""
        )

    # update channels / telemetry: by name (DNS, HTTP Host, TLS SNI), then their connections
    chan = [(p.pid, n) for p in paths if p.kind in CHANNEL_KINDS for n in _channel_names(p)]
    con.execute("CREATE OR REPLACE TEMP TABLE gh_vx_chan (pid INTEGER, name VARCHAR, suffix_only BOOLEAN)")
    if chan:
        con.executemany(
            "INSERT INTO gh_vx_chan VALUES (?, ?, ?)",
            [(pid, n.removeprefix("*."), n.startswith("*.")) for pid, n in sorted(set(chan))],
        )
        match = lambda col: (  # noqa: E731 - the name or a subdomain of it
            f"(({col} = n.name AND NOT n.suffix_only) OR ends_with({col}, '.' || n.name))"
        )
        con.execute(
            ins
            + f"""SELECT n.pid, 'dns' AS tbl, 'client' AS role, d.ts, d.src_ip, 'ip' AS reach_kind,
                d.src_ip AS reach, d.rcode AS outcome, d.uid, d.source_file, d.source_ref
            FROM dns d JOIN gh_vx_chan n ON {match("lower(rtrim(d.query, '.'))")} WHERE {w("d.ts")}
            UNION ALL
            SELECT n.pid, 'http', 'client', h.ts, h.src_ip, 'ip', h.src_ip, CAST(h.status_code AS VARCHAR), h.uid,
                h.source_file, h.source_ref
            FROM http h JOIN gh_vx_chan n ON {match("lower(split_part(h.host, ':', 1))")} WHERE {w("h.ts")}
            UNION ALL
            SELECT n.pid, 'tls', 'client', t.ts, t.src_ip, 'ip', t.src_ip,
                CASE WHEN t.established THEN 'established' END, t.uid, t.source_file, t.source_ref
            FROM tls t JOIN gh_vx_chan n ON {match("lower(rtrim(t.server_name, '.'))")} WHERE {w("t.ts")}"""
        )
        # fill in dst_ip of the http / tls rows and collect the channel's addresses (DNS answers too)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE gh_vx_chip AS
            SELECT DISTINCT e.pid, coalesce(h.dst_ip, t.dst_ip) AS ip FROM {_EV} e
                LEFT JOIN http h ON e.tbl = 'http' AND h.source_file = e.source_file AND h.source_ref = e.source_ref
                LEFT JOIN tls t ON e.tbl = 'tls' AND t.source_file = e.source_file AND t.source_ref = e.source_ref
            WHERE e.tbl IN ('http', 'tls') AND coalesce(h.dst_ip, t.dst_ip) IS NOT NULL
            UNION
            SELECT DISTINCT e.pid, trim(unnest(string_split(d.answers, ','))) AS ip FROM {_EV} e
                JOIN dns d ON e.tbl = 'dns' AND d.source_file = e.source_file AND d.source_ref = e.source_ref
            WHERE d.answers IS NOT NULL AND d.answers <> ''"""
        )
        con.execute(
            ins
            + f"""SELECT DISTINCT pid, 'conn' AS tbl, 'client' AS role, ts, src_ip, dst_ip, 'ip' AS reach_kind,
                src_ip AS reach, action AS outcome, bytes_out, bytes_in, duration, uid, source_file, source_ref
            FROM (
                SELECT u.pid, c.* FROM conn c JOIN (SELECT DISTINCT pid, uid FROM {_EV}
                    WHERE tbl IN ('http', 'tls') AND uid IS NOT NULL) u ON c.uid = u.uid
                UNION ALL
                SELECT i.pid, c.* FROM conn c JOIN gh_vx_chip i ON c.dst_ip = i.ip
                UNION ALL
                SELECT r.pid, c.* FROM conn c JOIN gh_vx_rip r ON c.dst_ip = r.ip AND r.kind <> 'ip_range'
            ) WHERE {w("ts")}"""
        )
        con.execute(
            f"""UPDATE {_EV} e SET dst_ip = coalesce(h.dst_ip, t.dst_ip) FROM {_EV} x
            LEFT JOIN http h ON x.tbl = 'http' AND h.source_file = x.source_file AND h.source_ref = x.source_ref
            LEFT JOIN tls t ON x.tbl = 'tls' AND t.source_file = x.source_file AND t.source_ref = x.source_ref
            WHERE e.tbl IN ('http', 'tls') AND e.pid = x.pid AND e.source_file = x.source_file
                AND e.source_ref = x.source_ref"""
        )

    # certificates: x509 by fingerprint or subject, TLS by subject
    for p in paths:
        if p.kind != "cert":
            continue
        cert = certs.get(p.pid)
        fps = _fp_list(p.attrs, cert)
        subject = norm_dn(cert.subject) if cert is not None and cert.subject else None
        if not fps and subject is None:
            continue
        fp_in = ", ".join(sql_literal(f) for f in fps) or "NULL"
        subj = sql_literal(subject) if subject else "NULL"
        con.execute(
            ins
            + f"""SELECT {p.pid} AS pid, 'x509' AS tbl, 'cert' AS role, x.ts, x.source_file, x.source_ref
            FROM x509 x WHERE {w("x.ts")} AND (replace(lower(x.fingerprint), ':', '') IN ({fp_in})
                OR {_dn_sql("x.subject")} = {subj})
            UNION ALL
            SELECT {p.pid}, 'tls', 'cert', t.ts, t.source_file, t.source_ref FROM tls t
            WHERE {w("t.ts")} AND {_dn_sql("t.subject")} = {subj}"""
        )
        con.execute(
            f"""UPDATE {_EV} e SET src_ip = t.src_ip, dst_ip = t.dst_ip, reach_kind = 'ip', reach = t.src_ip,
                uid = t.uid FROM tls t
            WHERE e.pid = {p.pid} AND e.tbl = 'tls' AND t.source_file = e.source_file AND t.source_ref = e.source_ref"""
        )
    return notes


def _channel_names(p: PathReport) -> list[str]:
    """Host names / domains of an update channel or telemetry path (addresses are matched apart)."""
    from urllib.parse import urlsplit

    out = []
    for h in [p.identifier, *p.attrs.get("hosts", []), *(urlsplit(u).hostname or "" for u in p.attrs.get("urls", []))]:
        h = h.lower().rstrip(".")
        if "://" in h:
            h = (urlsplit(h).hostname or "").lower()
        h = h.rsplit(":", 1)[0] if h.count(":") == 1 else h
        if not h:
            continue
        try:
            ipaddress.ip_network(h, strict=False)
        except ValueError:
            out.append(h)
    return sorted(set(out))


def _channel_hosts(p: PathReport) -> list[str]:
    """Addresses / CIDRs among an update channel's or telemetry path's hosts."""
    out = []
    for h in [p.identifier, *p.attrs.get("hosts", [])]:
        try:
            out.append(str(ipaddress.ip_network(h, strict=False)))
        except ValueError:
            continue
    return out


# ---- exposure ----------------------------------------------------------------------------------


@dataclass
class _Zones:
    ot: dict[str, bool]
    level: dict[str, int | None]
    conduits: list[tuple[str, str, list[str], str]]  # from, to, via ips, label


def _zone_info(case: Any) -> _Zones:
    ot, level = {}, {}
    for name, lvl, kind in case.con.execute("SELECT name, level, kind FROM zones").fetchall():
        ot[name] = (kind or "").lower() == "ot" or (kind is None and lvl is not None and lvl >= zmap.OT_MIN_LEVEL)
        level[name] = lvl
    conduits = []
    if seg.classified(case):
        conduits = [
            (f, t, list(v or []), lbl)
            for f, t, v, lbl in case.con.execute(
                "SELECT DISTINCT from_zone, to_zone, via_ips, label FROM gh_seg_conduits"
            ).fetchall()
        ]
    return _Zones(ot, level, conduits)


def _ami_system_hosts(case: Any) -> dict[str, list[tuple[str, list[str]]]]:
    """AMI `system` name -> inventory (hostname, ips) of its role (assets.coverage_gap.ami_system_roles)."""
    roles = load_settings().get("assets.coverage_gap", {}).get("ami_system_roles", {}) or {}
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for system, rs in roles.items():
        want = [str(r).lower() for r in rs]
        rows = case.con.execute(
            "SELECT coalesce(hostname, asset_id), ips FROM assets WHERE lower(role) IN (SELECT unnest(?)) "
            "ORDER BY asset_id",
            [want],
        ).fetchall()
        out[str(system).lower()] = [(h, list(ips or [])) for h, ips in rows]
    return out


class _Geo:
    """ip_geo rows when the hunt looked the address up; else the same resolver the hunt uses."""

    def __init__(self, case: Any) -> None:
        self.case = case
        self.cache: dict[str, tuple[bool, str | None, str | None, str | None]] = {}
        self.resolver: GeoResolver | None = None

    def get(self, ip: str) -> tuple[bool, str | None, str | None, str | None]:
        if ip in self.cache:
            return self.cache[ip]
        row = self.case.con.execute("SELECT internal, country, asn, org FROM ip_geo WHERE ip = ?", [ip]).fetchall()
        if row:
            out = (bool(row[0][0]), *row[0][1:])
        else:
            if self.resolver is None:
                self.resolver = GeoResolver.for_case(self.case)
            g = self.resolver.lookup(ip)
            out = (False, None, None, None) if g is None else (g.internal, g.country, g.asn, g.org)
        self.cache[ip] = out
        return out


def _ensure_classified(case: Any) -> list[str]:
    """The segmentation classification of every flow (gh_seg_*): reused when this connection built it."""
    if seg.classified(case):
        return []
    return list(seg.classify(case).notes)


def vendor_exposure(
    case: Any,
    vendor: str,
    window: tuple[datetime | None, datetime | None] | None = None,
    findings: list[Finding] | None = None,
    attach: bool = True,
) -> ExposureReport:
    """Every access path of `vendor` with what the evidence shows inside `window` (default: the
    vendor's incident window; open ends where it has none). `findings`: findings to attach besides
    the case's `findings` table (say, this run's own); `attach=False` skips attaching."""
    from gridhunt.assess.secrets import cert_pem, load_cert  # certificates are parsed in secrets

    name, contact, inc_start, inc_end = _vendor_row(case, vendor)
    start, end = window if window is not None and window != (None, None) else (inc_start, inc_end)
    paths = register_paths(case, name)
    notes = _ensure_classified(case)
    certs = {}
    for p in paths:
        pem = cert_pem(p.attrs, p.identifier, p.source_file) if p.kind == "cert" else None
        if pem:
            cert, err = load_cert(pem)
            if err:
                p.notes.append(f"{p.source_ref} (cert {p.identifier}): {err}")
                notes.append(f"{_file_name(p.source_file)}: {p.source_ref} (cert {p.identifier}): {err}")
            else:
                certs[p.pid] = cert
                p.attrs = {**p.attrs, "subject": cert.subject, "sha256": cert.sha256}
    notes += collect_evidence(case, paths, start, end, certs)
    _summarise(case, paths, name)
    zinfo = _zone_info(case)
    _hosts(case, paths, zinfo)
    assess = _exposure_findings(case, name, paths, zinfo, start, end)
    if attach:
        _attach_findings(case, paths, (findings or []) + assess)
    for p in paths:
        if p.kind == "cert" and p.no_telemetry:
            p.notes.append("the tls table keeps server certificate subjects only; a client (mTLS) certificate shows "
                           "up in Zeek x509.log / files.log rows when those are ingested")  # fmt: skip
    graph = build_graph(name, paths)
    return ExposureReport(name, contact, inc_start, inc_end, start, end, paths, graph, assess, notes)


def _file_name(path: str | None) -> str:
    return (path or "?").replace("\\", "/").rsplit("/", 1)[-1]


def _summarise(case: Any, paths: list[PathReport], vendor: str) -> None:
    con = case.con
    by = {p.pid: p for p in paths}
    for pid, tbl, n in con.execute(f"SELECT pid, tbl, count(*) FROM {_EV} GROUP BY ALL ORDER BY ALL").fetchall():
        by[pid].counts[tbl] = int(n)
    for pid, role, n in con.execute(f"SELECT pid, role, count(*) FROM {_EV} GROUP BY ALL ORDER BY ALL").fetchall():
        by[pid].roles[role] = int(n)
    for pid, recs, first, last in con.execute(
        f"SELECT pid, count(DISTINCT (source_file, source_ref)), min(ts), max(ts) FROM {_EV} GROUP BY pid"
    ).fetchall():
        by[pid].records, by[pid].first_seen, by[pid].last_seen = int(recs), first, last
    # logins: auth rows (an AMI login is in both auth and ami_audit: auth counts it)
    for pid, usr, outcome, n in con.execute(
        f"""SELECT pid, lower(usr), outcome, count(*) FROM {_EV} WHERE tbl = 'auth' AND role = 'logon'
        GROUP BY ALL ORDER BY ALL"""
    ).fetchall():
        p = by[pid]
        if p.kind in CREDENTIAL_KINDS and usr != p.identifier.lower():
            continue  # another account's logon from this account's VPN tunnel: a host reached, not its login
        p.logins[outcome or "?"] = p.logins.get(outcome or "?", 0) + int(n)
    for pid, n, secs, tun in con.execute(
        f"""SELECT pid, count(*), sum(coalesce(duration, 0)), list(DISTINCT dst_ip ORDER BY dst_ip)
        FROM {_EV} WHERE role = 'session' GROUP BY pid"""
    ).fetchall():
        p = by[pid]
        p.sessions, p.session_seconds = int(n), float(secs or 0)
        if p.kind in CREDENTIAL_KINDS:
            p.tunnel_addresses = [t for t in tun if t]
    # bytes: one count per connection (segmentation merges the Zeek and firewall records of one flow)
    for pid, out_, in_ in con.execute(
        f"""WITH r AS (
            SELECT DISTINCT e.pid, e.role, coalesce(s.flow_id, hash(e.source_file, e.source_ref)) AS flow,
                coalesce(e.bytes_out, 0) AS bo, coalesce(e.bytes_in, 0) AS bi
            FROM {_EV} e LEFT JOIN gh_seg_rows s ON e.tbl = 'conn' AND s.source_file = e.source_file
                AND s.source_ref = e.source_ref
            WHERE e.tbl = 'conn' AND e.role IN ('session', 'flow', 'client')
        ), f AS (SELECT pid, role = 'client' AS ours, flow, max(bo) AS bo, max(bi) AS bi FROM r GROUP BY ALL)
        SELECT pid, sum(CASE WHEN ours THEN bo ELSE bi END)::BIGINT, sum(CASE WHEN ours THEN bi ELSE bo END)::BIGINT
        FROM f GROUP BY pid"""
    ).fetchall():
        by[pid].bytes_to_vendor, by[pid].bytes_from_vendor = int(out_ or 0), int(in_ or 0)
    # sources: where the path was used from
    nets = vendor_networks(case, vendor)
    geo = _Geo(case)
    roles = ", ".join(sql_literal(r) for r in SOURCE_ROLES)
    for pid, ip, rows, ok, failed, first, last in con.execute(
        f"""SELECT pid, src_ip, count(*),
            count(*) FILTER (WHERE outcome IN ('success', 'ok')),
            count(*) FILTER (WHERE outcome IN ('failure', 'failed')),
            min(ts), max(ts)
        FROM {_EV} WHERE role IN ({roles}) AND src_ip IS NOT NULL
            AND NOT (role = 'inbound' AND tbl = 'conn' AND src_ip IN (SELECT ip FROM gh_vx_jump))
        GROUP BY ALL ORDER BY pid, count(*) DESC, src_ip"""
    ).fetchall():
        internal, country, asn, org = geo.get(ip)
        public = is_public(ip)
        by[pid].sources.append({
            "ip": ip, "country": country, "asn": asn, "org": org, "internal": internal or not public,
            "registered": in_networks(ip, nets), "rows": int(rows), "success": int(ok), "failure": int(failed),
            "first_seen": first, "last_seen": last,
        })  # fmt: skip
    for p in paths:  # addresses outside the vendor's ranges first, then other public ones, then ours
        p.sources.sort(key=lambda x: (x["internal"], x["registered"], -x["rows"], x["ip"]))


def _hosts(case: Any, paths: list[PathReport], zinfo: _Zones) -> None:
    """Hosts reached per path: name / address -> inventory host, its zone, OT or not, and how the
    segmentation policy judged the flows (allowed / outside any conduit / denied)."""
    con = case.con
    systems = _ami_system_hosts(case)
    ip_host = {}
    for hostname, ips in con.execute(
        "SELECT coalesce(hostname, asset_id), ips FROM assets ORDER BY asset_id"
    ).fetchall():
        for ip in ips or []:
            ip_host.setdefault(ip, hostname)
    name_idx = zmap._host_index(con)
    zone_of = dict(
        con.execute("SELECT ip, CASE WHEN how IS NULL THEN 'internet' ELSE zone END FROM gh_vx_addr").fetchall()
    )
    by = {p.pid: p for p in paths}
    own = {p.pid: set(zmap._resolve(p.identifier, name_idx)) for p in paths if p.kind == "jump_host"}
    roles = ", ".join(sql_literal(r) for r in REACH_ROLES)
    rows = con.execute(
        f"""SELECT e.pid, e.role, e.tbl, e.reach_kind, e.reach, e.src_ip, e.auth_source, e.event_id, e.outcome, e.ts,
            e.source_file, e.source_ref, coalesce(s.flow_id, hash(e.source_file, e.source_ref)) AS flow,
            coalesce(e.bytes_out, 0) + coalesce(e.bytes_in, 0) AS bytes, f.status, f.action, f.conduit
        FROM {_EV} e
        LEFT JOIN gh_seg_rows s ON e.tbl = 'conn' AND s.source_file = e.source_file AND s.source_ref = e.source_ref
        LEFT JOIN gh_seg_flows f ON f.flow_id = s.flow_id
        WHERE e.role IN ({roles}) AND e.reach IS NOT NULL AND e.auth_source IS DISTINCT FROM 'vpn'
        ORDER BY e.pid, e.ts, e.source_file, e.source_ref"""
    ).fetchall()
    agg: dict[tuple[int, str], dict[str, Any]] = {}
    for (
        pid,
        role,
        tbl,
        rkind,
        reach,
        src_ip,
        auth_src,
        event,
        outcome,
        ts,
        sf,
        sr,
        flow,
        nbytes,
        status,
        action,
        conduit,
    ) in rows:
        if rkind == "ip" and reach in own.get(pid, ()):  # a jump host does not reach itself
            continue
        label, ips, zone = _place(rkind, reach, systems, ip_host, name_idx, zone_of)
        if label is None:
            continue
        h = agg.setdefault((pid, label), {
            "host": label, "ips": ips, "zone": zone, "ot": bool(zinfo.ot.get(zone or "", False)), "rows": 0,
            "flows": set(), "bytes": {}, "how": set(), "allowed": 0, "outside_conduit": 0, "denied": 0,
            "first_seen": ts, "last_seen": ts, "evidence_outside": [], "conduits": set(),
        })  # fmt: skip
        h["rows"] += 1
        h["last_seen"] = ts
        h["how"].add(_how(role, tbl, auth_src, event))
        if tbl == "conn":
            h["flows"].add(flow)
            h["bytes"][flow] = max(h["bytes"].get(flow, 0), int(nbytes or 0))
        verdict = _verdict(role, tbl, auth_src, event, outcome, status, action, src_ip, zone, zone_of, zinfo)
        if verdict == "allowed":
            h["allowed"] += 1
            if conduit:
                h["conduits"].add(conduit)
        elif verdict in ("outside_conduit", "denied"):
            h[verdict] += 1
            h["evidence_outside"].append({"source_file": sf, "source_ref": sr, "ts": ts, "denied": verdict == "denied",
                                          "table": tbl})  # fmt: skip
    for (pid, _), h in sorted(agg.items(), key=lambda kv: (kv[0][0], -kv[1]["rows"], kv[0][1])):
        h["flows"] = len(h["flows"])
        h["bytes"] = sum(h["bytes"].values())
        h["how"] = sorted(h["how"])
        h["conduits"] = sorted(h["conduits"])
        by[pid].hosts.append(h)


def _how(role: str, tbl: str, auth_src: str | None, event: int | None = None) -> str:
    if role == "logon":
        if auth_src == "ami":
            return "AMI login"
        if event in (4768, 4769, 4771, 4776):
            return "Kerberos / NTLM at the DC"
        return f"{auth_src or 'auth'} logon"
    return {"ami": "AMI audit", "session": "VPN tunnel address", "flow": "flows", "client": f"{tbl} client",
            "cert": "TLS with the certificate"}.get(role, role)  # fmt: skip


def _verdict(
    role: str,
    tbl: str,
    auth_src: str | None,
    event: int | None,
    outcome: str | None,
    status: str | None,
    action: str | None,
    src_ip: str | None,
    dst_zone: str | None,
    zone_of: dict[str, str | None],
    zinfo: _Zones,
) -> str | None:
    """allowed / outside_conduit / denied for the rows that cross into a zone; None when the policy
    says nothing (application records, clients of a channel)."""
    if role == "flow" and tbl == "conn":
        if status == "violation":
            return "denied" if action == "deny" else "outside_conduit"
        return "allowed" if status == "allowed" else None
    session = event is None or event in SESSION_EVENTS  # a DC validating a ticket is not a session there
    if role == "logon" and tbl == "auth" and auth_src not in ("ami", "vpn") and session and dst_zone and src_ip:
        # a logon crosses from its source's zone: any conduit into the zone from there (or its via host)
        src_zone = zone_of.get(src_ip)
        if src_zone is None or src_zone == dst_zone:
            return "allowed" if src_zone == dst_zone else None
        ok = any(t == dst_zone and ((not via and f == src_zone) or src_ip in via) for f, t, via, _ in zinfo.conduits)
        if ok:
            return "allowed"
        return "outside_conduit" if outcome == "success" else "denied"
    return None


def _place(
    rkind: str,
    reach: str,
    systems: dict[str, list[tuple[str, list[str]]]],
    ip_host: dict[str, str],
    name_idx: dict[str, list[str]],
    zone_of: dict[str, str | None],
) -> tuple[str | None, list[str], str | None]:
    """(host label, addresses, zone) of a reached address / host name / AMI system."""
    if rkind == "system":
        hosts = systems.get(reach.lower())
        if hosts:
            h, ips = hosts[0]
            return h, ips, next((zone_of.get(ip) for ip in ips if zone_of.get(ip)), None)
        return f"{reach} (AMI system)", [], None
    if rkind == "ip":
        return ip_host.get(reach, reach), [reach], zone_of.get(reach)
    key = reach.lower()
    ips = sorted(set(name_idx.get(key) or name_idx.get(key.split(".", 1)[0]) or []))
    label = next((ip_host[ip] for ip in ips if ip in ip_host), reach.split(".", 1)[0] if ips else reach)
    return label, ips, next((zone_of.get(ip) for ip in ips if zone_of.get(ip)), None)


def _attach_findings(case: Any, paths: list[PathReport], extra: list[Finding]) -> None:
    """Findings whose evidence holds one of the path's records, or whose entity names the path."""
    con = case.con
    by = {p.pid: p for p in paths}
    found: dict[int, dict[str, dict[str, Any]]] = {p.pid: {} for p in paths}
    con.execute(
        """CREATE OR REPLACE TEMP TABLE gh_vx_fev AS
        SELECT finding_id, e->>'source_file' AS source_file, e->>'source_ref' AS source_ref
        FROM (SELECT finding_id, unnest(evidence->'$[*]') AS e FROM findings)"""
    )
    meta = {
        r[0]: {"finding_id": r[0], "rule_id": r[1], "severity": r[2], "title": r[3], "entity": r[4], "ts_first": r[5]}
        for r in con.execute("SELECT finding_id, rule_id, severity, title, entity, ts_first FROM findings").fetchall()
    }
    for pid, fid in con.execute(
        f"""SELECT DISTINCT e.pid, f.finding_id FROM {_EV} e
        JOIN gh_vx_fev f ON f.source_file = e.source_file AND f.source_ref = e.source_ref"""
    ).fetchall():
        found[pid][fid] = meta[fid]
    for p in paths:
        pat = _word(p.identifier)
        for fid, m in meta.items():
            if pat.search((m["entity"] or "").lower()):
                found[p.pid][fid] = m
    if extra:
        keys: dict[tuple[str, str], set[int]] = {}
        for pid, sf, sr in con.execute(f"SELECT DISTINCT pid, source_file, source_ref FROM {_EV}").fetchall():
            keys.setdefault((sf, sr), set()).add(pid)
        for f in extra:
            m = {"finding_id": f.finding_id, "rule_id": f.rule_id, "severity": f.severity, "title": f.title,
                 "entity": f.entity, "ts_first": f.ts_first}  # fmt: skip
            hit = {pid for e in f.evidence for pid in keys.get((e.get("source_file"), e.get("source_ref")), ())}
            hit |= {p.pid for p in paths if _word(p.identifier).search(f.entity.lower())}
            for pid in hit:
                found[pid].setdefault(f.finding_id, m)
    for pid, fs in found.items():
        by[pid].findings = sorted(
            fs.values(), key=lambda m: (-SEVERITY_RANK.get(m["severity"], 0), str(m["ts_first"]), m["rule_id"])
        )


def _word(ident: str) -> re.Pattern[str]:
    # a name, address or host: "pc-jump01" also in "pc-jump01.corp.example", "mc.gcook" not in "mc.gcook2"
    return re.compile(r"(?<![\w.-])" + re.escape(ident.lower()) + r"(?![\w-])")


# ---- findings ----------------------------------------------------------------------------------

_OT_ATTACK = ["T1199", "T1133", "T0822", "T0886"]
_SOURCE_ATTACK = ["T1078", "T1133", "T1199", "T0859"]


def _evidence(case: Any, pid: int, where: str, limit: int = MAX_EVIDENCE_ROWS) -> list[dict[str, Any]]:
    rows = case.con.execute(
        f"""SELECT DISTINCT ts, source_file, source_ref, tbl, src_ip, dst_ip, usr, outcome FROM {_EV}
        WHERE pid = ? AND {where} ORDER BY ts, source_file, source_ref LIMIT {limit}""",
        [pid],
    ).fetchall()
    return [
        {"source_file": sf, "source_ref": sr, "ts": _plain(ts),
         "fields": {k: v for k, v in (("table", tbl), ("src_ip", s), ("dst_ip", d), ("user", u), ("outcome", o))
                    if v is not None}}
        for ts, sf, sr, tbl, s, d, u, o in rows
    ]  # fmt: skip


def _register_evidence(p: PathReport) -> dict[str, Any]:
    return {"source_file": p.source_file, "source_ref": p.source_ref,
            "fields": {"kind": p.kind, "identifier": p.identifier}}  # fmt: skip


def _exposure_findings(
    case: Any, vendor: str, paths: list[PathReport], zinfo: _Zones, start: datetime | None, end: datetime | None
) -> list[Finding]:
    out: list[Finding] = []
    window = {"start": _plain(start), "end": _plain(end)}
    # 1. a path reached an OT zone outside any conduit
    for p in paths:
        by_zone: dict[str, list[dict[str, Any]]] = {}
        for h in p.hosts:
            if h["ot"] and h["evidence_outside"]:
                by_zone.setdefault(h["zone"], []).append(h)
        for zone, hosts in sorted(by_zone.items()):
            ev = sorted((e for h in hosts for e in h["evidence_outside"]), key=lambda e: (e["ts"], e["source_ref"]))
            through = sum(h["outside_conduit"] for h in hosts)
            out.append(Finding(
                detector="assess", rule_id="assess.vendor_ot_reach",
                title=f"Vendor path reached OT zone {zone} outside any conduit: {vendor} {p.label}",
                severity="high" if through else "low", attack=list(_OT_ATTACK),
                entity=f"{vendor} {p.label} -> {zone}", ts_first=ev[0]["ts"], ts_last=ev[-1]["ts"], count=len(ev),
                evidence=[{"source_file": e["source_file"], "source_ref": e["source_ref"], "ts": _plain(e["ts"]),
                           "fields": {"table": e["table"], "denied": e["denied"]}} for e in ev][:MAX_EVIDENCE_ROWS],
                details={"vendor": vendor, "path": p.label, "zone": zone, "zone_level": zinfo.level.get(zone),
                         "through": through, "denied": sum(h["denied"] for h in hosts),
                         "hosts": [{"host": h["host"], "ips": h["ips"], "outside_conduit": h["outside_conduit"],
                                    "denied": h["denied"], "how": h["how"]} for h in hosts],
                         "window": window, "register": f"{_file_name(p.source_file)}: {p.source_ref}"},
            ))  # fmt: skip
    # 2. a vendor credential used from a public address outside every registered vendor range
    nets = vendor_networks(case, vendor)
    if nets:
        for p in paths:
            if p.kind not in CREDENTIAL_KINDS:
                continue
            for s in p.sources:
                if s["internal"] or s["registered"] or not s["success"]:
                    continue
                ev = _evidence(
                    case, p.pid, f"src_ip = {sql_literal(s['ip'])} AND role IN ('logon', 'ami', 'session') "
                    "AND outcome IN ('success', 'ok')",
                )  # fmt: skip
                if not ev:
                    continue
                geo = " ".join(x for x in (s["country"], s["org"]) if x)
                out.append(Finding(
                    detector="assess", rule_id="assess.vendor_unregistered_source",
                    title=f"Vendor {p.kind.replace('_', ' ')} used from an address outside the vendor's registered "
                    f"ranges: {p.identifier} from {s['ip']}" + (f" ({geo})" if geo else ""),
                    severity="high", attack=list(_SOURCE_ATTACK) + (["T1550.001"] if p.kind == "api_token" else []),
                    entity=f"{vendor} {p.label} from {s['ip']}", ts_first=_dt(ev[0]["ts"]), ts_last=_dt(ev[-1]["ts"]),
                    count=len(ev), evidence=ev,
                    details={"vendor": vendor, "path": p.label, "src_ip": s["ip"], "country": s["country"],
                             "asn": s["asn"], "org": s["org"], "uses": s["success"], "failures": s["failure"],
                             "registered_ranges": [str(n) for n in nets], "window": window,
                             "register": f"{_file_name(p.source_file)}: {p.source_ref}"},
                ))  # fmt: skip
    # 3. registered paths the evidence never shows: blind spots
    gaps = [p for p in paths if p.no_telemetry]
    if gaps:
        out.append(Finding(
            detector="assess", rule_id="assess.vendor_no_telemetry",
            title=f"{len(gaps)} of {vendor}'s {len(paths)} registered access paths have no evidence in the window "
            "(a blind spot, not a clean bill)",
            severity="informational", attack=[], entity=f"{vendor} no telemetry", ts_first=start, ts_last=end,
            count=len(gaps), evidence=[_register_evidence(p) for p in gaps],
            details={"vendor": vendor, "paths": [p.label for p in gaps], "window": window,
                     "why": "no auth / conn / AMI audit / DNS / HTTP / TLS / x509 row matches these paths: collect "
                     "the logs that would show them, or confirm the path is retired"},
        ))  # fmt: skip
    return sorted(out, key=sort_key)


def _dt(v: Any) -> datetime | None:
    if v is None or isinstance(v, datetime):
        return v
    return datetime.fromisoformat(str(v).replace("Z", "+00:00"))


# ---- graph -------------------------------------------------------------------------------------


def build_graph(vendor: str, paths: list[PathReport]) -> nx.DiGraph:
    """vendor -> path -> host -> zone, plus source -> path; OT zones and the hosts in them carry ot=True.
    A host that is itself a registered jump host links to that path, so chains show (VPN account ->
    jump host -> OT server)."""
    g = nx.DiGraph(vendor=vendor)
    root = f"vendor:{vendor}"
    g.add_node(root, type="vendor", label=vendor)
    jump = {}
    for p in paths:
        if p.kind == "jump_host":
            jump[p.identifier.lower().split(".", 1)[0]] = p.node
    for p in paths:
        g.add_node(p.node, type="path", label=p.label, order=p.pid, kind=p.kind, identifier=p.identifier,
                   records=p.records, no_telemetry=p.no_telemetry, reaches_ot=p.reaches_ot,
                   findings=len(p.findings))  # fmt: skip
        g.add_edge(root, p.node, relation="access path")
        for s in p.sources:
            if s["internal"]:
                continue
            node = f"source:{s['ip']}"
            g.add_node(node, type="source", label=s["ip"], country=s["country"], org=s["org"],
                       registered=s["registered"])  # fmt: skip
            g.add_edge(node, p.node, relation="used from", rows=s["rows"], success=s["success"],
                       failure=s["failure"])  # fmt: skip
        for h in p.hosts:
            hn = f"host:{h['host']}"
            g.add_node(hn, type="host", label=h["host"], ips=h["ips"], zone=h["zone"], ot=h["ot"])
            g.add_edge(p.node, hn, relation="reached", rows=h["rows"], bytes=h["bytes"], how=h["how"],
                       outside_conduit=h["outside_conduit"], denied=h["denied"])  # fmt: skip
            zone = h["zone"] or "(no zone)"
            zn = f"zone:{zone}"
            if zn not in g:
                g.add_node(zn, type="zone", label=zone, ot=h["ot"])
            g.add_edge(hn, zn, relation="in zone")
            jp = jump.get(h["host"].lower().split(".", 1)[0])
            if jp and jp != p.node:
                g.add_edge(hn, jp, relation="is access path")
    return g


def graph_lines(graph: nx.DiGraph) -> list[str]:
    """The graph as an indented text tree: vendor, each path with its sources, then the zones it
    reached (OT marked `[OT]`) with the hosts in each."""
    lines = []
    root = next((n for n, d in graph.nodes(data=True) if d.get("type") == "vendor"), None)
    if root is None:
        return lines
    lines.append(graph.nodes[root]["label"])
    for pnode in sorted(graph.successors(root), key=lambda n: graph.nodes[n].get("order", 0)):
        d = graph.nodes[pnode]
        tag = "  (no telemetry)" if d["no_telemetry"] else ("  [reaches OT]" if d["reaches_ot"] else "")
        lines.append(f"├─ {d['label']}{tag}")
        srcs = [s for s in graph.predecessors(pnode) if graph.nodes[s].get("type") == "source"]
        for s in sorted(srcs):
            sd = graph.nodes[s]
            reg = "registered" if sd["registered"] else "NOT a registered vendor range"
            lines.append(f"│    ← {sd['label']} ({sd.get('country') or '?'}, {reg})")
        zones: dict[str, list[str]] = {}
        for h in graph.successors(pnode):
            hd = graph.nodes[h]
            for z in graph.successors(h):
                if graph.nodes[z].get("type") == "zone":
                    e = graph.edges[pnode, h]
                    mark = " ‼ outside conduit" if e["outside_conduit"] else (" (denied)" if e["denied"] else "")
                    via = [graph.nodes[x]["label"] for x in graph.successors(h) if graph.nodes[x].get("type") == "path"]
                    zones.setdefault(graph.nodes[z]["label"], []).append(
                        f"{hd['label']}{mark}" + (f" → {', '.join(via)}" if via else "")
                    )
        for z in sorted(zones, key=lambda z: (not graph.nodes[f"zone:{z}"].get("ot"), z)):
            ot = " [OT]" if graph.nodes[f"zone:{z}"].get("ot") else ""
            hosts = sorted(zones[z])
            more = f" … +{len(hosts) - 8}" if len(hosts) > 8 else ""
            lines.append(f"│    → {z}{ot}: {', '.join(hosts[:8])}{more}")
    return lines


# ---- hunt hook ---------------------------------------------------------------------------------


def assess_vendors(case: Any, result: Any) -> None:
    """Run the vendor exposure and secrets rotation audit for every registered vendor inside the
    hunt: findings, runs and notes go into `result` (an AnalyticsResult), so the hunt stores,
    filters and summarises them with the analytics'. One failing part never stops the hunt."""
    import time

    from gridhunt.assess.secrets import hunt_secrets
    from gridhunt.detect import AnalyticRun

    vendors = vendor_names(case)
    for name, fn in (("assess.vendor_exposure", _hunt_exposure), ("assess.secrets", hunt_secrets)):
        run = AnalyticRun(name)
        result.runs.append(run)
        if not vendors:
            run.skipped_reason = "no vendor register (vendors.yaml) in the evidence"
            continue
        started = time.perf_counter()
        try:
            found, notes = fn(case, vendors)
        except Exception as exc:  # noqa: BLE001 - as analytics: an error is reported, the hunt goes on
            run.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            found, notes = [], []
        run.seconds = round(time.perf_counter() - started, 3)
        run.findings = len(found)
        result.findings.extend(found)
        result.notes.extend(notes)


def _hunt_exposure(case: Any, vendors: list[str]) -> tuple[list[Finding], list[str]]:
    found, notes = [], []
    for v in vendors:
        rep = vendor_exposure(case, v, attach=False)
        found += rep.findings
        notes += rep.notes
    return found, notes
