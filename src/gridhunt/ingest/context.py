"""Context: what the environment should look like (docs/FORMATS.md).

assets.yaml  -> assets            zones.yaml  -> zones + conduits
vendors.yaml -> vendors + vendor_access + secrets
updates.csv  -> updates (artifact / signature paths resolved against the log's folder)
geoip.csv    -> geo_networks (cidr, country[, asn, org, lat, lon]): the site's own geo overlay,
                consulted before any GeoIP database (see gridhunt.geo)
change_windows.csv -> change_windows (start, end, ticket[, system, description]): the change
                calendar, approved windows the AMI analytics judge head-end / DMS actions against

A YAML file may hold several sections (say assets and zones together); every known top-level
key is read whatever the sniffed format. Context files are small hand-written policy, so each is
loaded whole. A bad entry is dropped and counted with its entry path as position
("conduits[2]", "vendors[0].access[3]") and a reason naming the offending value; zones and
conduits (the segmentation policy) and the vendor register also name the YAML line of that value.
The caller prefixes the file name: "zones.yaml: line 14: conduits[2]: unknown zone 'ot-contrl'".
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from gridhunt.ingest._common import (
    BadValue,
    Sink,
    TextSource,
    head_text,
    iter_csv_records,
    to_int,
    to_micros,
    to_str,
)
from gridhunt.ingest.base import Advance, FileResult, Tally

FORMAT = "context"
FORMATS = (
    "context_assets",
    "context_zones",
    "context_vendors",
    "context_updates",
    "context_geoip",
    "context_change_windows",
)

ACCESS_KINDS = (
    "vpn_account",
    "jump_host",
    "ip_range",
    "update_channel",
    "telemetry",
    "api_token",
    "service_account",
    "cert",
)
UPDATE_COLUMNS = (
    "ts_applied",
    "target",
    "product",
    "version",
    "vendor",
    "artifact",
    "artifact_sha256",
    "signature",
    "channel",
)

# top-level YAML key -> format it signals, in priority order for files holding several
# top-level key -> (format, a field its entries carry). The field keeps other YAML that happens to
# use the key (a docker-compose `secrets:`, say) from being read as context.
_SECTION_FORMAT = {
    "assets": ("context_assets", "asset_id"),
    "zones": ("context_zones", "cidrs"),
    "conduits": ("context_zones", "from"),
    "vendors": ("context_vendors", "access"),
    "secrets": ("context_vendors", "secret_id"),
}
_TOP_KEY = re.compile(r"^([A-Za-z_]+)\s*:", re.MULTILINE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")
# zones.yaml: `internet` is the implicit zone of every public address not in a declared zone;
# a zone's kind says its role (ot zones are what the segmentation analytics guard; vendor zones
# hold vendor access paths); a conduit's protocol
INTERNET_ZONE = "internet"
ZONE_KINDS = ("it", "dmz", "ot", "vendor")
CONDUIT_PROTOS = ("tcp", "udp", "icmp", "sctp", "any")
IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network

try:  # the C loader is much faster where libyaml is present; same safe semantics
    _Base: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure-Python PyYAML
    _Base = yaml.SafeLoader


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """An impossible date (2026-13-45) stays text, so the entry's own check names it and the rest of
    the file is read (PyYAML would raise ValueError for the whole document)."""


def _timestamp(loader: Any, node: yaml.Node) -> Any:
    try:
        return _Base.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def sniff(head: bytes, path: Path) -> str | None:
    text = head_text(head)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
    if "," in first and ":" not in first.split(",", 1)[0]:
        columns = {c.strip().strip('"').lower().lstrip("\ufeff") for c in next(csv.reader([first]), [])}
        if {"ts_applied", "target", "product", "version"} <= columns:
            return "context_updates"
        if {"cidr", "country"} <= columns:
            return "context_geoip"
        if {"start", "end", "ticket"} <= columns:
            return "context_change_windows"
        return None
    keys = {m.group(1) for m in _TOP_KEY.finditer(text)}
    for key, (fmt, field) in _SECTION_FORMAT.items():
        if key in keys and re.search(rf"\b{field}\s*:", text):
            return fmt
    return None


def ingest(case: Any, path: Path, fmt: str, progress: Advance | None = None) -> FileResult:
    path = Path(path).resolve()
    tally = Tally(path, fmt)
    if fmt == "context_updates":
        _read_updates(case, path, tally, progress)
        return tally.result()
    if fmt == "context_geoip":
        _read_geoip(case, path, tally, progress)
        return tally.result()
    if fmt == "context_change_windows":
        _read_change_windows(case, path, tally, progress)
        return tally.result()
    _read_yaml(case, path, tally, progress)
    return tally.result()


def read_policy(case: Any, path: Path) -> FileResult:
    """Only the zones / conduits of a YAML file (`gridhunt segmentation --policy`): other sections
    (an inventory kept in the same file, say) are left alone. The caller empties the tables first."""
    path = Path(path).resolve()
    tally = Tally(path, "context_zones")
    _read_yaml(case, path, tally, None, zones_only=True)
    return tally.result()


def _read_yaml(case: Any, path: Path, tally: Tally, progress: Advance | None, zones_only: bool = False) -> None:
    try:
        with TextSource(path, progress) as source:
            data, root = _compose(source.text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "line 1"
        tally.bad_record(where, f"YAML syntax error: {getattr(exc, 'problem', None) or exc}")
        return
    except (OSError, EOFError) as exc:
        tally.bad_record("line 1", f"unreadable: {exc}")
        return
    if not isinstance(data, dict) or (zones_only and "zones" not in data):
        want = "zones (and conduits)" if zones_only else "assets / zones / conduits / vendors / secrets"
        tally.bad_record("line 1", f"expected a mapping with {want}")
        return
    ctx = _Ctx(case, str(path), tally)
    if "assets" in data and not zones_only:
        ctx.assets(data["assets"])
    if "zones" in data or "conduits" in data:
        ctx.zones(data.get("zones"), data.get("conduits"), "zones" in data, root)
    if ("vendors" in data or "secrets" in data) and not zones_only:
        ctx.vendors(data.get("vendors"), data.get("secrets"), "vendors" in data, root)
    ctx.flush()


def _compose(text: str) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree: the nodes keep line marks, so zone / conduit errors can
    name the line of the offending value (one parse, same safe semantics as yaml.safe_load)."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    finally:
        loader.dispose()


def _line(root: yaml.Node | None, *path: str | int) -> int | None:
    """1-based line of the node at `path` (keys / list indexes), or of its deepest existing parent."""
    node, line = root, None
    for step in path:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            node = next((v for k, v in node.value if getattr(k, "value", None) == step), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


def _at(root: yaml.Node | None, *path: str | int) -> str:
    """'line N: ' for the node at `path`, '' without a node tree."""
    line = _line(root, *path)
    return f"line {line}: " if line is not None else ""


# ---- value helpers: raise BadValue with the sub-path of the offending value ----


def _str_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    raise BadValue(f"{name}: expected a list, got {value!r}")


def _ip_list(value: Any, name: str) -> list[str]:
    out = []
    for i, ip in enumerate(_str_list(value, name)):
        try:
            out.append(str(ipaddress.ip_address(ip)))
        except ValueError:
            raise BadValue(f"{name}[{i}]: not an IP address: {ip!r}") from None
    return out


def _cidr_list(value: Any, name: str) -> list[str]:
    out = []
    for i, net in enumerate(_str_list(value, name)):
        try:
            out.append(str(ipaddress.ip_network(net, strict=False)))
        except ValueError:
            raise BadValue(f"{name}[{i}]: not a CIDR: {net!r}") from None
    return out


def _ts(value: Any, name: str) -> int | None:
    try:
        return to_micros(value)
    except BadValue as exc:
        raise BadValue(f"{name}: {exc}") from None


def _ports(value: Any) -> str | None:
    """'3389,22' / 3389 / [3389, 22] / '1000-2000' -> '3389,22' (checked, in the order given)."""
    if value is None or value == "":
        return None
    items = [str(value)] if isinstance(value, int) else _str_list(value, "ports")
    parts: list[str] = []
    for item in items:
        for p in str(item).split(","):
            p = p.strip()
            if not p:
                continue
            if p.lower() == "any":
                parts.append("any")
                continue
            lo, _, hi = p.partition("-")
            try:
                a = to_int(lo, 0, 65535)
                b = to_int(hi, 0, 65535) if hi else a
            except BadValue:
                raise BadValue(f"ports: not a port or range: {p!r}") from None
            if a is None or b is None:
                raise BadValue(f"ports: not a port or range: {p!r}")
            if a > b:
                raise BadValue(f"ports: bad port range {p!r} (start above end)")
            parts.append(p)
    return ",".join(parts) or None


class _BadAt(BadValue):
    """A bad value whose message does not start with its key: `path` says where it is."""

    def __init__(self, message: str, *path: str | int) -> None:
        super().__init__(message)
        self.path = path


_SUB_PATH = re.compile(r"^([A-Za-z_]+)(?:\[(\d+)\])?:")


def _sub_path(message: str) -> tuple[str | int, ...]:
    """'cidrs[1]: not a CIDR …' -> ('cidrs', 1): where in the entry the bad value sits."""
    m = _SUB_PATH.match(message)
    if m is None:
        return ()
    return (m.group(1), int(m.group(2))) if m.group(2) is not None else (m.group(1),)


def _need(entry: dict[str, Any], key: str) -> str:
    s = to_str(entry.get(key))
    if s is None:
        raise BadValue(f"{key}: missing")
    return s


class _Ctx:
    def __init__(self, case: Any, source_file: str, tally: Tally) -> None:
        self.case = case
        self.source_file = source_file
        self.tally = tally
        self.sinks: dict[str, Sink] = {}

    def add(self, table: str, row: dict[str, Any], ref: str) -> None:
        if table not in self.sinks:
            self.sinks[table] = Sink(self.case, table)
        row["source_file"] = self.source_file
        row["source_ref"] = ref
        self.sinks[table].add(row)
        self.tally.ok += 1

    def flush(self) -> None:
        for sink in self.sinks.values():
            sink.flush()

    def entries(self, section: str, value: Any, root: yaml.Node | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(entry path, entry) for each mapping in a section list; the rest counted bad (with
        the YAML line in the position when `root`, the node tree, is given)."""
        for _, ref, entry in self.indexed(section, value, root):
            yield ref, entry

    def indexed(
        self, section: str, value: Any, root: yaml.Node | None = None
    ) -> Iterator[tuple[int, str, dict[str, Any]]]:
        if value is None:
            return
        if not isinstance(value, list):
            self.tally.bad_record(_at(root, section) + section, "expected a list of entries")
            return
        for i, entry in enumerate(value):
            ref = f"{section}[{i}]"
            if isinstance(entry, dict):
                yield i, ref, entry
            else:
                self.tally.bad_record(_at(root, section, i) + ref, f"expected a mapping, got {entry!r}")

    # ---- assets.yaml ----
    def assets(self, section: Any) -> None:
        seen: dict[str, str] = {}
        for ref, e in self.entries("assets", section):
            try:
                asset_id = _need(e, "asset_id")
                if asset_id in seen:
                    raise BadValue(f"duplicate asset_id {asset_id!r} (first at {seen[asset_id]})")
                row = {
                    "asset_id": asset_id,
                    "hostname": to_str(e.get("hostname")),
                    "ips": _ip_list(e.get("ips", e.get("ip")), "ips"),
                    "zone": to_str(e.get("zone")),
                    "role": to_str(e.get("role")),
                    "owner": to_str(e.get("owner")),
                    "vendor": to_str(e.get("vendor")),
                    "criticality": (to_str(e.get("criticality")) or "").lower() or None,
                }
            except BadValue as exc:
                self.tally.bad_record(ref, str(exc))
                continue
            seen[asset_id] = ref
            self.add("assets", row, ref)

    # ---- zones.yaml ----
    def zones(self, zones: Any, conduits: Any, check_refs: bool, root: yaml.Node | None = None) -> None:
        """IEC 62443 zones and the conduits between them. Each error names the YAML line of the
        offending value: "line 14: conduits[2]: unknown zone 'ot-contrl'"."""
        names: dict[str, str] = {}
        rejected: dict[str, str] = {}  # zone name -> where its bad entry is (conduits naming it say so)
        nets: list[tuple[IpNet, str]] = []  # CIDRs of the zones taken so far, to refuse overlaps
        members: dict[tuple[str, str], str] = {}  # ("assets" | "roles", lower-cased value) -> zone
        for i, ref, e in self.indexed("zones", zones, root):
            try:
                name = _need(e, "name")
                if name.lower() == INTERNET_ZONE:
                    raise BadValue("name: 'internet' is the implicit zone of public addresses; do not declare it")
                if name in names:
                    raise BadValue(f"name: duplicate zone {name!r} (first at {names[name]})")
                kind = (to_str(e.get("kind")) or "").lower() or None
                if kind is not None and kind not in ZONE_KINDS:
                    raise BadValue(f"kind: unknown zone kind {kind!r} (one of {', '.join(ZONE_KINDS)})")
                try:
                    level = to_int(e.get("level"), 0, 4)
                except BadValue:
                    raise BadValue(
                        f"level: {e.get('level')!r} is not an IEC 62443 security level (0-4); "
                        "say `kind: ot` / `kind: it` for the zone's role"
                    ) from None
                cidrs = _cidr_list(e.get("cidrs"), "cidrs")
                tags = _str_list(e.get("assets"), "assets")
                roles = _str_list(e.get("roles"), "roles")
                if not (cidrs or tags or roles):
                    raise BadValue("no cidrs, assets or roles: the zone would hold no address")
                own = [ipaddress.ip_network(c) for c in cidrs]
                for j, net in enumerate(own):
                    for other, zone in nets:
                        if net.version == other.version and net.overlaps(other):
                            raise BadValue(f"cidrs[{j}]: {net} overlaps zone {zone!r} ({other})")
                for key, values in (("assets", tags), ("roles", roles)):
                    for j, v in enumerate(values):
                        if (key, v.lower()) in members:
                            raise BadValue(f"{key}[{j}]: {v!r} is already in zone {members[key, v.lower()]!r}")
            except BadValue as exc:
                bad_name = to_str(e.get("name"))
                if bad_name is not None and bad_name not in names:
                    rejected.setdefault(bad_name, _at(root, "zones", i).rstrip(": ") or ref)
                self.tally.bad_record(_at(root, "zones", i, *_sub_path(str(exc))) + ref, str(exc))
                continue
            names[name] = ref
            nets.extend((net, name) for net in own)
            members.update({("assets", v.lower()): name for v in tags})
            members.update({("roles", v.lower()): name for v in roles})
            row = {"name": name, "cidrs": cidrs, "level": level, "kind": kind, "assets": tags, "roles": roles}
            self.add("zones", row, ref)
        for i, ref, e in self.indexed("conduits", conduits, root):
            try:
                ends = []
                for key in ("from", "to"):
                    # YAML 1.1 reads a bare `from`/`to` key as a string, but accept from_zone too
                    k = key if key in e else f"{key}_zone"
                    zone = to_str(e.get(k))
                    if zone is None:
                        raise BadValue(f"{key}: missing")
                    if zone.lower() == INTERNET_ZONE:
                        zone = INTERNET_ZONE
                    elif check_refs and zone not in names:
                        why = f"zone {zone!r} was rejected (see {rejected[zone]})" if zone in rejected else ""
                        raise _BadAt(why or f"unknown zone {zone!r}", k)
                    ends.append(zone)
                proto = (to_str(e.get("proto")) or "").lower() or None
                if proto is not None and proto not in CONDUIT_PROTOS:
                    raise BadValue(f"proto: unknown protocol {proto!r} (one of {', '.join(CONDUIT_PROTOS)})")
                row = {
                    "from_zone": ends[0],
                    "to_zone": ends[1],
                    "proto": None if proto == "any" else proto,
                    "ports": _ports(e.get("ports")),
                    "via_host": to_str(e.get("via", e.get("via_host"))),
                }
            except BadValue as exc:
                path = exc.path if isinstance(exc, _BadAt) else _sub_path(str(exc))
                self.tally.bad_record(_at(root, "conduits", i, *path) + ref, str(exc))
                continue
            self.add("conduits", row, ref)

    # ---- vendors.yaml ----
    def vendors(self, vendors: Any, secrets: Any, check_refs: bool, root: yaml.Node | None = None) -> None:
        """The vendor register. Errors name the YAML line of the offending value:
        "line 14: vendors[0].access[3]: fingerprint: not a SHA-1 / SHA-256 hex fingerprint: 'xyz'"."""
        base = Path(self.source_file).parent  # PEM / key paths are relative to the register
        names: dict[str, str] = {}
        for i, ref, e in self.indexed("vendors", vendors, root):
            try:
                name = _need(e, "name")
                if name in names:
                    raise BadValue(f"name: duplicate vendor {name!r} (first at {names[name]})")
                window = e.get("incident_window") or {}
                if not isinstance(window, dict):
                    raise BadValue("incident_window: expected {start, end}")
                start = _ts(window.get("start"), "incident_window.start")
                end = _ts(window.get("end"), "incident_window.end")
                if start is not None and end is not None and start > end:
                    raise BadValue("incident_window: start is after end")
                access = e.get("access")
                if access is not None and not isinstance(access, list):
                    raise BadValue("access: expected a list of access paths")
            except BadValue as exc:
                self.tally.bad_record(_at(root, "vendors", i, *_sub_path(str(exc))) + ref, str(exc))
                continue
            names[name] = ref
            row = {"vendor": name, "incident_start": start, "incident_end": end, "contact": to_str(e.get("contact"))}
            self.add("vendors", row, ref)
            for j, a in enumerate(access or []):
                aref, where = f"{ref}.access[{j}]", ("vendors", i, "access", j)
                try:
                    if not isinstance(a, dict):
                        raise BadValue(f"expected a mapping, got {a!r}")
                    arow = _access_row(name, a, base)
                except BadValue as exc:
                    self.tally.bad_record(_at(root, *where, *_sub_path(str(exc))) + aref, str(exc))
                    continue
                self.add("vendor_access", arow, aref)
        seen: dict[str, str] = {}
        for i, ref, e in self.indexed("secrets", secrets, root):
            try:
                secret_id = _need(e, "secret_id")
                if secret_id in seen:
                    raise BadValue(f"secret_id: duplicate {secret_id!r} (first at {seen[secret_id]})")
                owner = to_str(e.get("owner_vendor"))
                if check_refs and owner is not None and owner not in names:
                    raise BadValue(f"owner_vendor: unknown vendor {owner!r}")
                kind = (to_str(e.get("kind")) or "").lower() or None
                row = {
                    "secret_id": secret_id,
                    "kind": kind,
                    "owner_vendor": owner,
                    "last_rotated": _ts(e.get("last_rotated"), "last_rotated"),
                    "expires": _ts(e.get("expires"), "expires"),
                    "attrs": _attrs_json(_cert_attrs(secret_id, e, base) if kind == "cert" else {}),
                }
            except BadValue as exc:
                self.tally.bad_record(_at(root, "secrets", i, *_sub_path(str(exc))) + ref, str(exc))
                continue
            seen[secret_id] = ref
            self.add("secrets", row, ref)


# ---- vendors.yaml: one access path ----

_HOST = re.compile(r"^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?(:\d{1,5})?$")
_HEX_FP = re.compile(r"^(?:sha(?:1|256):)?([0-9a-f]{40}|[0-9a-f]{64})$")


def _access_row(vendor: str, a: dict[str, Any], base: Path) -> dict[str, Any]:
    kind = _need(a, "kind").lower()
    if kind not in ACCESS_KINDS:
        raise BadValue(f"kind: unknown access kind {kind!r}")
    ident = _need(a, "identifier")
    attrs: dict[str, Any] = {}
    if kind == "ip_range":
        ident = _cidr_list(ident, "identifier")[0]
    elif kind in ("update_channel", "telemetry"):
        # hosts / domains / addresses and URLs; a URL identifier counts as one of the URLs
        urls = [_url(u, f"urls[{k}]") for k, u in enumerate(_str_list(a.get("urls", a.get("url")), "urls"))]
        hosts = [_host(h, f"hosts[{k}]") for k, h in enumerate(_str_list(a.get("hosts"), "hosts"))]
        if _SCHEME.match(ident):
            urls.insert(0, _url(ident, "identifier"))
        else:
            _host(ident, "identifier")
        attrs.update(urls=urls, hosts=hosts)
        if to_str(a.get("signing_key")):
            attrs["signing_key"] = _resolve(base, to_str(a.get("signing_key")))
    elif kind == "cert":
        attrs.update(_cert_attrs(ident, a, base))
    return {
        "vendor": vendor,
        "kind": kind,
        "identifier": ident,
        "owner": to_str(a.get("owner")),
        "last_rotated": _ts(a.get("last_rotated"), "last_rotated"),
        "rotate_by": _ts(a.get("rotate_by"), "rotate_by"),
        "expires": _ts(a.get("expires"), "expires"),
        "attrs": _attrs_json(attrs),
    }


def _cert_attrs(ident: str, e: dict[str, Any], base: Path) -> dict[str, Any]:
    """A certificate is named by a PEM file (`pem:`, or the identifier), a fingerprint
    (`fingerprint:`, or an identifier that is one), or both. The PEM is read by the rotation audit,
    which reports an unreadable one naming the entry; here only the fingerprint's form is checked."""
    out: dict[str, Any] = {}
    fp = _fingerprint(e["fingerprint"], "fingerprint") if to_str(e.get("fingerprint")) else None
    pem = to_str(e.get("pem"))
    if fp is None and pem is None and _HEX_FP.match(_fp_text(ident)):
        fp = _fingerprint(ident, "identifier")
    elif pem is None and fp is None:
        pem = ident
    if fp:
        out["fingerprint"] = fp
    if pem:
        out["pem"] = _resolve(base, pem)
    return out


def _fp_text(value: Any) -> str:
    return re.sub(r"[\s:]", "", str(value)).lower()


def _fingerprint(value: Any, name: str) -> str:
    m = _HEX_FP.match(_fp_text(value))
    if m is None:
        raise BadValue(f"{name}: not a SHA-1 / SHA-256 hex fingerprint: {value!r}")
    return m.group(1)


def _url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if not parts.scheme or not parts.hostname:
        raise BadValue(f"{name}: not a URL (scheme://host/path): {value!r}")
    return value


def _host(value: str, name: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        pass
    if not _HOST.match(value):
        raise BadValue(f"{name}: not a host name, domain, address or CIDR: {value!r}")
    return value.lower().rstrip(".")


def _attrs_json(attrs: dict[str, Any]) -> str | None:
    attrs = {k: v for k, v in attrs.items() if v not in (None, [], "")}
    return json.dumps(attrs, sort_keys=True) if attrs else None


# ---- updates.csv ----


def _resolve(base: Path, value: str | None) -> str | None:
    """A path relative to the update log -> absolute; URIs and absolute paths kept as given."""
    if value is None:
        return None
    if _SCHEME.match(value):
        return value
    return str((base / value).resolve())


def _read_updates(case: Any, path: Path, tally: Tally, progress: Advance | None) -> None:
    sink = Sink(case, "updates")
    base = path.parent
    for line, rec in iter_csv_records(
        path, tally, progress, ("ts_applied", "target", "product", "version"), UPDATE_COLUMNS
    ):
        r = {k: to_str(v) for k, v in rec.items()}
        try:
            ts = _ts(r.get("ts_applied"), "ts_applied")
            if ts is None:
                raise BadValue("ts_applied: missing")
            row = {
                "ts_applied": ts,
                "target": _need(r, "target"),
                "product": _need(r, "product"),
                "version": _need(r, "version"),
                "vendor": r.get("vendor"),
                # kept as written, even malformed: assess compares it with the artifact and
                # the vendor manifest, and a mangled hash there is itself a finding
                "artifact_sha256": (r.get("artifact_sha256") or "").lower() or None,
                "signature_ref": _resolve(base, r.get("signature")),
                "channel": r.get("channel"),
                "artifact_path": _resolve(base, r.get("artifact")),
                "source_file": str(path),
                "source_ref": f"line {line}",
            }
        except BadValue as exc:
            tally.bad_record(f"line {line}", str(exc))
            continue
        sink.add(row)
        tally.ok += 1
    sink.flush()


def _read_geoip(case: Any, path: Path, tally: Tally, progress: Advance | None) -> None:
    sink = Sink(case, "geo_networks")
    for line, rec in iter_csv_records(
        path, tally, progress, ("cidr", "country"), ("cidr", "country", "asn", "org", "lat", "lon")
    ):
        r = {k: to_str(v) for k, v in rec.items()}
        try:
            try:
                net = ipaddress.ip_network(_need(r, "cidr"), strict=False)
            except ValueError as exc:
                raise BadValue(f"cidr: {exc}") from None
            country = _need(r, "country").upper()
            if not re.fullmatch(r"[A-Z]{2}", country):
                raise BadValue(f"country: expected an ISO 3166 alpha-2 code, got {country!r}")
            lat = _field_float(r.get("lat"), "lat", 90)
            lon = _field_float(r.get("lon"), "lon", 180)
        except BadValue as exc:
            tally.bad_record(f"line {line}", str(exc))
            continue
        asn = r.get("asn")
        if asn and asn.isdigit():
            asn = f"AS{asn}"
        sink.add(
            {
                "cidr": str(net),
                "country": country,
                "asn": asn,
                "org": r.get("org"),
                "lat": lat,
                "lon": lon,
                "source_file": str(path),
                "source_ref": f"line {line}",
            }
        )
        tally.ok += 1
    sink.flush()


def _read_change_windows(case: Any, path: Path, tally: Tally, progress: Advance | None) -> None:
    """The change calendar: one approved window per row. A ticket may have several windows (a
    rollout over several nights); a window without a ticket approves nothing, so it is an error."""
    sink = Sink(case, "change_windows")
    for line, rec in iter_csv_records(
        path, tally, progress, ("start", "end", "ticket"), ("start", "end", "ticket", "system", "description")
    ):
        r = {k: to_str(v) for k, v in rec.items()}
        try:
            start = _ts(r.get("start"), "start")
            end = _ts(r.get("end"), "end")
            if start is None:
                raise BadValue("start: missing")
            if end is None:
                raise BadValue("end: missing")
            if end < start:
                raise BadValue(f"end: {r['end']} is before start {r['start']}")
            ticket = _need(r, "ticket")
        except BadValue as exc:
            tally.bad_record(f"line {line}", str(exc))
            continue
        sink.add(
            {
                "window_start": start,
                "window_end": end,
                "ticket": ticket,
                "system": (r.get("system") or "").lower() or None,
                "description": r.get("description"),
                "source_file": str(path),
                "source_ref": f"line {line}",
            }
        )
        tally.ok += 1
    sink.flush()


def _field_float(value: str | None, name: str, bound: float) -> float | None:
    if value is None:
        return None
    try:
        x = float(value)
    except ValueError:
        raise BadValue(f"{name}: not a number: {value!r}") from None
    if not -bound <= x <= bound:
        raise BadValue(f"{name}: {x} is outside -{bound}..{bound}")
    return x
