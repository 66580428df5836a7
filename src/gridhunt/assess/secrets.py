"""Secrets rotation audit: every credential a vendor holds, judged against the incident and its own dates.

    rep = audit_secrets(case, vendors=["MeterCo"])     # all vendors when None
    rep.rows       one SecretAudit per credential: the register's `secrets` entries and the
                   credential access paths (vpn_account, service_account, api_token, cert) merged
                   by identifier
    rep.findings   assess.secret_used_after_expiry / assess.secret_not_rotated / assess.secret_expired
    rep.errors     entries that could not be checked in full (a PEM missing or unreadable), each
                   naming its register entry; the rest of the entry and every other one is still judged

For each credential:
    rotated after the incident?  last_rotated on or after the vendor's incident start
    deadline                     the earliest of rotate_by, expires and (certificates) notAfter that
                                 lies after the last rotation (a rotation past a deadline ends it)
    expired?                     deadline on or before `as_of` (default: the last evidence record)
    used?                        successful logons (auth), AMI / DMS audit records (the account, or an
                                 API token by params.token_id), TLS / x509 records of a certificate;
                                 total, since the incident began, and after the deadline
Certificates are parsed with `cryptography`: subject, issuer, validity, key type and size, SHA-256
and SHA-1 fingerprints, serial.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gridhunt.assess.vendor import (
    CREDENTIAL_KINDS,
    PathReport,
    VendorError,
    _file_name,
    _Geo,
    _plain,
    _ref_key,
    collect_evidence,
    have,
    in_networks,
    is_public,
    vendor_names,
    vendor_networks,
)
from gridhunt.case import WIN_EVENTS_TABLE
from gridhunt.detect.base import MAX_EVIDENCE_ROWS
from gridhunt.report.findings import Finding, sort_key

SECRET_KINDS = (*CREDENTIAL_KINDS, "cert")
_ATTACK = {
    "api_token": ["T1550.001", "T1528", "T1199"],
    "cert": ["T1649", "T1199", "T1552.004"],
}
_ACCOUNT_ATTACK = ["T1078", "T1199", "T0859"]


# ---- certificates ------------------------------------------------------------------------------


@dataclass
class CertInfo:
    path: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    key_type: str
    key_size: int | None
    sha256: str
    sha1: str
    serial: str
    self_signed: bool
    in_file: int = 1  # certificates in the file; the first is the one judged

    def to_dict(self) -> dict[str, Any]:
        return _plain(dict(vars(self)))


def load_cert(path: str | Path) -> tuple[CertInfo | None, str | None]:
    """(certificate, None) or (None, why not): a missing file, an unreadable one, not a PEM / DER
    X.509 certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return None, f"{p}: no such file"
    except IsADirectoryError:
        return None, f"{p}: is a folder, not a certificate file"
    except OSError as exc:
        return None, f"{p}: unreadable: {exc.strerror or exc}"
    try:
        certs = (
            x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data else [x509.load_der_x509_certificate(data)]
        )
    except ValueError as exc:
        why = " ".join(str(exc).split(" See ")[0].split())[:200]  # cryptography appends an FAQ link
        return None, f"{p}: not a PEM / DER X.509 certificate ({why})"
    if not certs:
        return None, f"{p}: no certificate in the file"
    c = certs[0]
    key = c.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        ktype, ksize = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        ktype, ksize = f"EC {key.curve.name}", key.curve.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        ktype, ksize = "Ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        ktype, ksize = "Ed448", 456
    elif isinstance(key, dsa.DSAPublicKey):
        ktype, ksize = "DSA", key.key_size
    else:
        ktype, ksize = type(key).__name__, None
    return CertInfo(
        path=str(p),
        subject=c.subject.rfc4514_string(),
        issuer=c.issuer.rfc4514_string(),
        not_before=c.not_valid_before_utc,
        not_after=c.not_valid_after_utc,
        key_type=ktype,
        key_size=ksize,
        sha256=c.fingerprint(hashes.SHA256()).hex(),
        sha1=c.fingerprint(hashes.SHA1()).hex(),  # Zeek < 5 x509 logs name certificates by SHA-1
        serial=format(c.serial_number, "x"),
        self_signed=c.issuer == c.subject,
        in_file=len(certs),
    ), None


# ---- model -------------------------------------------------------------------------------------


@dataclass
class SecretAudit:
    vendor: str | None
    secret_id: str
    kind: str | None
    owner: str | None = None
    last_rotated: datetime | None = None
    rotate_by: datetime | None = None
    expires: datetime | None = None
    refs: list[tuple[str | None, str | None]] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    incident_start: datetime | None = None
    cert: CertInfo | None = None
    error: str | None = None
    deadline: datetime | None = None  # when it is past: a register date with no time lasts the whole day
    deadline_why: str | None = None
    deadline_given: datetime | None = None  # the date as the register / certificate gives it
    rotated_after_incident: bool | None = None
    expired: bool = False
    uses: int = 0
    failures: int = 0
    first_use: datetime | None = None
    last_use: datetime | None = None
    uses_since_incident: int = 0
    uses_after_deadline: int = 0
    failures_after_deadline: int = 0
    first_after: datetime | None = None
    last_after: datetime | None = None
    sources_after: list[dict[str, Any]] = field(default_factory=list)
    sources_since_incident: list[dict[str, Any]] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.kind or 'secret'} {self.secret_id}"

    @property
    def register(self) -> str:
        return "; ".join(f"{_file_name(f)}: {r}" for f, r in self.refs)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in vars(self).items() if k not in ("cert", "refs")}
        d["cert"] = self.cert.to_dict() if self.cert else None
        d["register"] = [{"source_file": f, "source_ref": r} for f, r in self.refs]
        return _plain(d)


@dataclass
class SecretsReport:
    as_of: datetime
    rows: list[SecretAudit]
    findings: list[Finding]
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": _plain(self.as_of),
            "secrets": [r.to_dict() for r in self.rows],
            "findings": [f.to_dict() for f in self.findings],
            "errors": self.errors,
            "notes": self.notes,
        }


# ---- audit -------------------------------------------------------------------------------------


# every evidence table with a record time (names from gridhunt.case; none comes from the evidence)
EVIDENCE_TABLES = ("auth", "conn", "dns", "http", "tls", "x509", "files", "ics", "ami_audit", WIN_EVENTS_TABLE)


def evidence_end(case: Any) -> datetime | None:
    """The last record of the evidence: the audit's "now" (deterministic for a given case)."""
    have = {
        r[0]
        for r in case.con.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'ts' AND table_schema = 'main'"
        ).fetchall()
    }
    tables = [t for t in EVIDENCE_TABLES if t in have]
    if not tables:
        return None
    parts = " UNION ALL ".join(f"SELECT max(ts) AS ts FROM {t}" for t in tables)
    (ts,) = case.con.execute(f"SELECT max(ts) FROM ({parts})").fetchall()[0]
    return ts


def _credentials(case: Any, vendors: list[str] | None) -> list[SecretAudit]:
    """Register secrets + credential access paths, merged by (vendor, identifier), register order."""
    con = case.con
    incidents = dict(con.execute("SELECT vendor, min(incident_start) FROM vendors GROUP BY vendor").fetchall())
    want = None if vendors is None else {v.lower() for v in vendors}
    out: dict[tuple[str, str], SecretAudit] = {}
    kinds = ", ".join(f"'{k}'" for k in SECRET_KINDS)
    access = con.execute(
        f"""SELECT vendor, kind, identifier, owner, last_rotated, {have(case, "vendor_access", "rotate_by", "expires")},
            source_file, source_ref, {have(case, "vendor_access", "attrs")}
        FROM vendor_access WHERE kind IN ({kinds})"""
    ).fetchall()
    secrets = con.execute(
        "SELECT owner_vendor, kind, secret_id, NULL, last_rotated, NULL, expires, source_file, source_ref, "
        f"{have(case, 'secrets', 'attrs')} FROM secrets"
    ).fetchall()
    rows = sorted(access, key=lambda r: _ref_key(r[7], r[8])) + sorted(secrets, key=lambda r: _ref_key(r[7], r[8]))
    for vendor, kind, ident, owner, rotated, rotate_by, expires, sf, sr, attrs in rows:
        if want is not None and (vendor or "").lower() not in want:
            continue
        key = ((vendor or "").lower(), ident.lower())
        s = out.get(key)
        if s is None:
            s = out[key] = SecretAudit(vendor, ident, kind, incident_start=incidents.get(vendor))
        s.kind = s.kind or kind
        s.owner = s.owner or owner
        # the register may say it twice (access path and secret): the later rotation wins, the earlier deadline
        s.last_rotated = max((t for t in (s.last_rotated, rotated) if t), default=None)
        s.rotate_by = min((t for t in (s.rotate_by, rotate_by) if t), default=None)
        s.expires = min((t for t in (s.expires, expires) if t), default=None)
        s.refs.append((sf, sr))
        s.attrs = {**(json.loads(attrs) if attrs else {}), **s.attrs}
    return list(out.values())


def audit_secrets(case: Any, vendors: list[str] | None = None, as_of: datetime | None = None) -> SecretsReport:
    """The rotation audit of every credential of `vendors` (all when None)."""
    if vendors is not None:
        known = {v.lower(): v for v in vendor_names(case)}
        missing = [v for v in vendors if v.lower() not in known]
        if missing:
            raise VendorError(
                f"unknown vendor {missing[0]!r} (vendors in the case: {', '.join(known.values()) or 'none'})"
            )
        vendors = [known[v.lower()] for v in vendors]
    as_of = as_of or evidence_end(case) or datetime.now(UTC)
    rows = _credentials(case, vendors)
    errors: list[str] = []
    for s in rows:
        if s.kind == "cert":
            _check_cert(s, errors)
        _deadline(s)
    # uses: the evidence collection of the exposure report, over all time, one pseudo path per credential
    paths = []
    for i, s in enumerate(rows):
        kind = s.kind if s.kind in SECRET_KINDS else "service_account"  # passwords, keys: an account's logons
        paths.append(PathReport(i, s.vendor or "", kind, s.secret_id, None, None, None, None, None, None,
                                attrs={**s.attrs, **({"sha256": s.cert.sha256} if s.cert else {})}))  # fmt: skip
    certs = {i: s.cert for i, s in enumerate(rows) if s.cert is not None}
    notes = collect_evidence(case, paths, None, None, certs) if paths else []
    uses = _uses(case, rows, paths)
    nets = {v: vendor_networks(case, v) for v in {s.vendor for s in rows if s.vendor}}
    geo = _Geo(case)
    findings: list[Finding] = []
    for i, s in enumerate(rows):
        _judge(s, uses.get(i, []), as_of, nets.get(s.vendor or "", []), geo)
        findings += _findings(s, uses.get(i, []), as_of, nets.get(s.vendor or "", []))
    return SecretsReport(as_of, rows, sorted(findings, key=sort_key), errors, notes)


def cert_pem(attrs: dict[str, Any], identifier: str, source_file: str | None) -> str | None:
    """The PEM file of a cert entry: `pem` as the register resolved it; for a case ingested before
    `pem` was kept, an identifier that is not a fingerprint, relative to the register's folder."""
    if attrs.get("pem"):
        return str(attrs["pem"])
    if attrs.get("fingerprint"):
        return None
    p = Path(identifier)
    return str(p if p.is_absolute() or source_file is None else Path(source_file).parent / p)


def _check_cert(s: SecretAudit, errors: list[str]) -> None:
    pem = cert_pem(s.attrs, s.secret_id, s.refs[0][0] if s.refs else None)
    if not pem:
        return
    cert, err = load_cert(pem)
    if err:
        s.error = err
        errors.append(f"{s.register} (cert {s.secret_id}): {err}")
        return
    s.cert = cert
    fp = s.attrs.get("fingerprint")
    if fp and fp not in (cert.sha256, cert.sha1):
        s.error = f"the register's fingerprint {fp} is not the PEM's (SHA-256 {cert.sha256})"
        errors.append(f"{s.register} (cert {s.secret_id}): {s.error}")


def _day_end(ts: datetime | None) -> datetime | None:
    """A register date with no time of day (midnight) lasts to the end of that day."""
    if ts is None or (ts.hour, ts.minute, ts.second, ts.microsecond) != (0, 0, 0, 0):
        return ts
    return ts + timedelta(days=1)


def _deadline(s: SecretAudit) -> None:
    """The earliest date the credential should have died by, among those after its last rotation."""
    cands = [(_day_end(s.rotate_by), "rotate-by date", s.rotate_by), (_day_end(s.expires), "expiry", s.expires)]
    if s.cert is not None:
        cands.append((s.cert.not_after, "certificate notAfter", s.cert.not_after))
    live = [c for c in cands if c[0] is not None and (s.last_rotated is None or c[0] > s.last_rotated)]
    if live:
        s.deadline, s.deadline_why, s.deadline_given = min(live, key=lambda x: (x[0], x[1]))


def _uses(case: Any, rows: list[SecretAudit], paths: list[PathReport]) -> dict[int, list[tuple[Any, ...]]]:
    """pid -> distinct use records (ts, source_file, source_ref, table, src_ip, outcome) in time order:
    the credential's own logons and AMI records (a token's by token_id), its certificate's TLS / x509."""
    if not paths:
        return {}
    got = case.con.execute(
        """SELECT pid, ts, source_file, source_ref, tbl, src_ip, usr, outcome, role FROM gh_vx_ev
        WHERE role IN ('logon', 'ami', 'cert') ORDER BY pid, ts, source_file, source_ref"""
    ).fetchall()
    out: dict[int, list[tuple[Any, ...]]] = {}
    seen: set[tuple[int, str, str]] = set()
    for pid, ts, sf, sr, tbl, ip, usr, outcome, role in got:
        p = paths[pid]
        # logons from a VPN tunnel address belong to the exposure, not to this credential
        if (
            role != "cert"
            and not (role == "ami" and p.kind == "api_token")
            and (usr or "").lower() != p.identifier.lower()
        ):
            continue
        if (pid, sf, sr) in seen:  # an AMI login is one record in auth and ami_audit
            continue
        seen.add((pid, sf, sr))
        ok = outcome in ("success", "ok", "established") or role == "cert"
        out.setdefault(pid, []).append((ts, sf, sr, tbl, ip, ok))
    return out


def _judge(s: SecretAudit, uses: list[tuple[Any, ...]], as_of: datetime, nets: list[Any], geo: _Geo) -> None:
    ok = [u for u in uses if u[5]]
    s.uses, s.failures = len(ok), len(uses) - len(ok)
    s.first_use = ok[0][0] if ok else None
    s.last_use = ok[-1][0] if ok else None
    if s.incident_start is not None:
        s.rotated_after_incident = s.last_rotated is not None and s.last_rotated >= s.incident_start
        since = [u for u in ok if u[0] >= s.incident_start]
        s.uses_since_incident = len(since)
        s.sources_since_incident = _sources(since, nets, geo)
    s.expired = s.deadline is not None and s.deadline <= as_of
    if s.deadline is not None:
        after = [u for u in ok if u[0] > s.deadline]
        s.uses_after_deadline = len(after)
        s.failures_after_deadline = sum(1 for u in uses if not u[5] and u[0] > s.deadline)
        if after:
            s.first_after, s.last_after = after[0][0], after[-1][0]
        s.sources_after = _sources(after, nets, geo)
    st = []
    if s.incident_start is None:
        st.append("no incident date for the vendor")
    elif s.rotated_after_incident:
        st.append("rotated after the incident began")
    else:
        st.append("NOT rotated since the incident began" if s.last_rotated else "no rotation on record")
    if s.expired:
        st.append(f"expired ({s.deadline_why})")
    if s.uses_after_deadline:
        st.append(f"USED {s.uses_after_deadline}x after its {s.deadline_why}")
    if s.cert is not None and s.cert.key_type == "RSA" and (s.cert.key_size or 0) < 2048:
        st.append(f"weak key (RSA {s.cert.key_size})")
    if s.error:
        st.append("not fully checked: " + s.error)
    s.status = st


def _sources(uses: list[tuple[Any, ...]], nets: list[Any], geo: _Geo) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for u in uses:
        if u[4]:
            counts[u[4]] = counts.get(u[4], 0) + 1
    out = []
    for ip, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        internal, country, asn, org = geo.get(ip)
        out.append({"ip": ip, "uses": n, "country": country, "org": org, "internal": internal or not is_public(ip),
                    "registered": in_networks(ip, nets)})  # fmt: skip
    return out


def _foreign(sources: list[dict[str, Any]], nets: list[Any]) -> list[str]:
    """Public sources outside the vendor's registered ranges (only judged when it registers any)."""
    if not nets:
        return []
    return [x["ip"] for x in sources if not x["internal"] and not x["registered"]]


def _ev(uses: list[tuple[Any, ...]], s: SecretAudit) -> list[dict[str, Any]]:
    return [
        {"source_file": sf, "source_ref": sr, "ts": _plain(ts),
         "fields": {"table": tbl, "src_ip": ip, "secret": s.secret_id}}
        for ts, sf, sr, tbl, ip, _ in uses[:MAX_EVIDENCE_ROWS]
    ]  # fmt: skip


def _reg_ev(s: SecretAudit) -> list[dict[str, Any]]:
    return [{"source_file": f, "source_ref": r, "fields": {"secret": s.secret_id, "kind": s.kind}} for f, r in s.refs]


def _day(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d") if ts else "never recorded"


def _findings(s: SecretAudit, uses: list[tuple[Any, ...]], as_of: datetime, nets: list[Any]) -> list[Finding]:
    ok = [u for u in uses if u[5]]
    attack = _ATTACK.get(s.kind or "", _ACCOUNT_ATTACK)
    base = {
        "vendor": s.vendor, "secret": s.secret_id, "kind": s.kind, "owner": s.owner,
        "last_rotated": _plain(s.last_rotated), "rotate_by": _plain(s.rotate_by), "expires": _plain(s.expires),
        "deadline": _plain(s.deadline), "deadline_why": s.deadline_why, "incident_start": _plain(s.incident_start),
        "as_of": _plain(as_of), "register": s.register,
        **({"certificate": s.cert.to_dict()} if s.cert else {}),
    }  # fmt: skip
    entity = f"{s.vendor or '(no vendor)'} {s.label}"
    out: list[Finding] = []
    if s.uses_after_deadline:
        after = [u for u in ok if u[0] > s.deadline]  # type: ignore[operator]
        foreign = _foreign(s.sources_after, nets)
        s.rules.append("assess.secret_used_after_expiry")
        out.append(Finding(
            detector="assess", rule_id="assess.secret_used_after_expiry",
            title=f"Vendor {(s.kind or 'secret').replace('_', ' ')} used after its {s.deadline_why} "
            f"({_day(s.deadline_given)}): {s.secret_id}",
            severity="critical" if foreign else "high", attack=attack, entity=entity,
            ts_first=after[0][0], ts_last=after[-1][0], count=len(after), evidence=_ev(after, s),
            details={**base, "uses_after": len(after), "failures_after": s.failures_after_deadline,
                     "sources_after": s.sources_after, "outside_vendor_ranges": foreign},
        ))  # fmt: skip
        return out
    if s.incident_start is not None and not s.rotated_after_incident and (not s.expired or s.uses_since_incident):
        since = [u for u in ok if u[0] >= s.incident_start]
        foreign = _foreign(s.sources_since_incident, nets)
        sev = "high" if foreign else "medium" if since else "low"
        s.rules.append("assess.secret_not_rotated")
        out.append(Finding(
            detector="assess", rule_id="assess.secret_not_rotated",
            title=f"Vendor {(s.kind or 'secret').replace('_', ' ')} not rotated since the incident began "
            f"({_day(s.incident_start)}; last rotated {_day(s.last_rotated)}): {s.secret_id}",
            severity=sev, attack=attack, entity=entity,
            ts_first=since[0][0] if since else s.incident_start, ts_last=since[-1][0] if since else as_of,
            count=len(since), evidence=_reg_ev(s) + _ev(since, s),
            details={**base, "uses_since_incident": len(since), "sources_since_incident": s.sources_since_incident,
                     "outside_vendor_ranges": foreign, "live": not s.expired},
        ))  # fmt: skip
        return out
    if s.expired and not (s.rotated_after_incident and s.last_rotated and s.deadline and s.last_rotated > s.deadline):
        s.rules.append("assess.secret_expired")
        out.append(Finding(
            detector="assess", rule_id="assess.secret_expired",
            title=f"Vendor {(s.kind or 'secret').replace('_', ' ')} past its {s.deadline_why} "
            f"({_day(s.deadline_given)}) and not rotated: {s.secret_id} (confirm it is revoked where it is used)",
            severity="low", attack=attack, entity=entity, ts_first=s.deadline, ts_last=as_of, count=0,
            evidence=_reg_ev(s), details={**base, "uses": s.uses, "last_use": _plain(s.last_use)},
        ))  # fmt: skip
    return out


def hunt_secrets(case: Any, vendors: list[str]) -> tuple[list[Finding], list[str]]:
    """The hunt's part: findings, and the errors as notes (the summary shows them)."""
    rep = audit_secrets(case, vendors)
    return rep.findings, [f"secrets: {e}" for e in rep.errors] + rep.notes
