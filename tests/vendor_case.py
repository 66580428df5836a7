"""A small hand-made case for the assess tests: a vendor register (with PEMs made here by
`cryptography`), an inventory, a zones policy and a few evidence rows per access path kind."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gridhunt.case import Case
from gridhunt.ingest import context

T = datetime(2026, 4, 14, 2, 0, tzinfo=UTC)  # inside the incident window (April 2026)
JUMP, DMS, HE, DC, TUNNEL = "10.30.0.10", "10.40.0.10", "10.50.0.10", "10.10.0.5", "10.30.8.5"
VENDOR_IP, ATTACKER, SPRAYER, API_IP = "203.0.113.7", "198.51.100.77", "198.51.100.23", "203.0.113.40"
TELEMETRY_IP, UPDATES_IP = "203.0.113.3", "203.0.113.251"

ASSETS = f"""assets:
  - {{asset_id: A-1, hostname: jump01, ips: [{JUMP}], zone: vendor-access, role: jump_host, vendor: Acme}}
  - {{asset_id: A-2, hostname: dms01, ips: [{DMS}], zone: ot-control, role: dms_server}}
  - {{asset_id: A-3, hostname: he01, ips: [{HE}], zone: ami, role: ami_headend, vendor: Acme}}
  - {{asset_id: A-4, hostname: dc01, ips: [{DC}], zone: it, role: domain_controller}}
"""
ZONES = """zones:
  - {name: it, level: 1, cidrs: [10.10.0.0/16]}
  - {name: vendor-access, level: 2, cidrs: [10.30.0.0/16]}
  - {name: ot-control, kind: ot, level: 3, cidrs: [10.40.0.0/16]}
  - {name: ami, level: 3, cidrs: [10.50.0.0/16]}
conduits:
  - {from: vendor-access, to: ami, proto: tcp, ports: 443, via: jump01}
  - {from: ami, to: internet, proto: tcp, ports: 443}
"""


def make_cert(
    path: Path, cn: str, not_before: datetime, not_after: datetime, key: str = "rsa", bits: int = 2048
) -> x509.Certificate:
    """A self-signed certificate written as PEM."""
    k = rsa.generate_private_key(65537, bits) if key == "rsa" else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")]
    )
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
        .sign(k, hashes.SHA256())
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert


def write_register(d: Path) -> dict[str, x509.Certificate]:
    certs = {
        "mtls": make_cert(d / "certs" / "acme-mtls.pem", "client.acme.example", datetime(2025, 6, 1, tzinfo=UTC),
                          datetime(2027, 6, 1, tzinfo=UTC)),
        "old": make_cert(d / "certs" / "acme-old.pem", "old.acme.example", datetime(2025, 1, 1, tzinfo=UTC),
                         datetime(2026, 4, 1, tzinfo=UTC), key="ec"),
        "seen": make_cert(d / "certs" / "unused-name.pem", "gw.acme.example", datetime(2025, 1, 1, tzinfo=UTC),
                          datetime(2027, 1, 1, tzinfo=UTC)),
    }  # fmt: skip
    (d / "certs" / "garbage.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    )
    fp = certs["seen"].fingerprint(hashes.SHA256()).hex()
    (d / "vendors.yaml").write_text(f"""vendors:
  - name: Acme
    contact: security@acme.example
    incident_window: {{start: 2026-04-01, end: 2026-04-30}}
    access:
      - {{kind: vpn_account, identifier: acme.bob, owner: ot-eng, last_rotated: 2026-01-01}}
      - {{kind: service_account, identifier: svc_acme, owner: ami-ops, last_rotated: 2026-04-05}}
      - {{kind: api_token, identifier: tok-old, last_rotated: 2025-01-01, rotate_by: 2026-04-10}}
      - {{kind: api_token, identifier: tok-unused, last_rotated: 2026-04-20}}
      - {{kind: jump_host, identifier: jump01}}
      - {{kind: ip_range, identifier: 203.0.113.0/24}}
      - kind: update_channel
        identifier: https://updates.acme.example/fw/
        hosts: [cdn.acme.example]
        signing_key: keys/acme-release.pub.pem
      - {{kind: telemetry, identifier: telemetry.acme.example}}
      - {{kind: cert, identifier: certs/acme-mtls.pem, last_rotated: 2025-06-01, rotate_by: 2026-06-01}}
      - {{kind: cert, identifier: certs/acme-old.pem, last_rotated: 2025-01-01}}
      - {{kind: cert, identifier: gateway-cert, fingerprint: "{fp.upper()}"}}
      - {{kind: cert, identifier: certs/missing.pem}}
      - {{kind: cert, identifier: certs/garbage.pem}}
secrets:
  - {{secret_id: tok-old, kind: api_token, owner_vendor: Acme, last_rotated: 2025-01-01, expires: 2026-04-10}}
  - {{secret_id: acme.bob, kind: vpn_account, owner_vendor: Acme, last_rotated: 2026-01-01, expires: 2026-12-31}}
""")
    return certs


def load_context(case: Case, d: Path) -> None:
    (d / "assets.yaml").write_text(ASSETS)
    (d / "zones.yaml").write_text(ZONES)
    for name in ("assets.yaml", "zones.yaml", "vendors.yaml"):
        p = d / name
        res = context.ingest(case, p, context.sniff(p.read_bytes(), p))
        assert res.records_bad == 0, res.errors
    case.con.execute(
        "INSERT INTO geo_networks (cidr, country, asn, org) VALUES ('203.0.113.0/24', 'DE', 'AS64502', 'Acme GmbH'), "
        "('198.51.100.0/24', 'SG', 'AS64510', 'Example Cloud')"
    )


_n = iter(range(1, 10**6))


def _ref() -> str:
    return f"line {next(_n)}"


def auth(c: Case, ts: datetime, user: str, src: str, host: str, outcome: str = "success", source: str = "windows",
         event_id: int | None = 4624) -> str:  # fmt: skip
    ref = _ref()
    c.con.execute(
        'INSERT INTO auth (ts, "user", src_ip, dst_host, outcome, source, event_id, logon_type, source_file, '
        "source_ref) VALUES (?, ?, ?, ?, ?, ?, ?, '10', ?, ?)",
        [ts, user, src, host, outcome, source, event_id if source == "windows" else None, f"{source}.log", ref],
    )
    return ref


def conn(c: Case, ts: datetime, src: str, dst: str, port: int | None, source: str = "zeek",
         uid: str | None = None, out: int = 1000, back: int = 5000, action: str | None = None,
         duration: float | None = None) -> str:  # fmt: skip
    ref = _ref()
    c.con.execute(
        "INSERT INTO conn (ts, src_ip, src_port, dst_ip, dst_port, proto, bytes_out, bytes_in, action, uid, duration, "
        "source, source_file, source_ref) VALUES (?, ?, ?, ?, ?, 'tcp', ?, ?, ?, ?, ?, ?, ?, ?)",
        [ts, src, 40000 + next(_n) % 20000 if port else None, dst, port, out, back, action, uid, duration, source,
         f"{source}.log", ref],
    )  # fmt: skip
    return ref


def ami(c: Case, ts: datetime, user: str, src: str, action: str, token: str | None = None) -> str:
    ref = _ref()
    params = json.dumps({"token_id": token} if token else {})
    c.con.execute(
        'INSERT INTO ami_audit (ts, system, "user", src_ip, action, target_type, target_id, target_count, params, '
        "result, source_file, source_ref) VALUES (?, 'headend', ?, ?, ?, 'meter', 'ALL', 100, ?, 'ok', "
        "'headend_audit.jsonl', ?)",
        [ts, user, src, action, params, ref],
    )
    return ref


def evidence(c: Case, certs: dict[str, x509.Certificate]) -> dict[str, str]:
    """One scenario per path kind; returns the refs the tests look for."""
    r: dict[str, str] = {}
    m = lambda n: timedelta(minutes=n)  # noqa: E731
    # the vendor engineer's VPN session from the vendor's range; RDP to the jump host from the tunnel
    r["vpn_ok"] = auth(c, T, "acme.bob", VENDOR_IP, "vpn01", source="vpn")
    r["session"] = conn(c, T + m(0.1), VENDOR_IP, TUNNEL, None, source="vpn", duration=3600, out=10_000, back=90_000)
    r["tunnel_rdp"] = conn(c, T + m(2), TUNNEL, JUMP, 3389, out=2000, back=8000)
    r["jump_logon"] = auth(c, T + m(2), "svc_acme", TUNNEL, "jump01.corp.example")
    # from the jump host: the head-end over the 443 conduit, the DMS over RDP (no conduit), SMB denied
    r["jump_he"] = conn(c, T + m(5), JUMP, HE, 443)
    r["jump_dms"] = conn(c, T + m(6), JUMP, DMS, 3389, out=7000, back=9000, action="allow", source="firewall")
    r["jump_dms_denied"] = conn(c, T + m(7), JUMP, DMS, 445, action="deny", source="firewall", out=0, back=0)
    r["dms_logon"] = auth(c, T + m(6), "svc_acme", JUMP, "dms01.corp.example")
    r["kerberos"] = auth(c, T + m(2), "svc_acme", JUMP, "dc01.corp.example", event_id=4768)
    # the same VPN account from an address outside the vendor's range, after a failure from another
    r["vpn_fail"] = auth(c, T + timedelta(days=1), "acme.bob", SPRAYER, "vpn01", outcome="failure", source="vpn")
    r["vpn_attacker"] = auth(c, T + timedelta(days=1, minutes=5), "acme.bob", ATTACKER, "vpn01", source="vpn")
    # the API token: used before its rotate-by date from the vendor, after it from the attacker
    r["tok_before"] = ami(c, datetime(2026, 4, 5, 10, tzinfo=UTC), "svc_acme", API_IP, "bulk_job", "tok-old")
    r["tok_after"] = ami(c, datetime(2026, 4, 16, 3, tzinfo=UTC), "svc_acme", ATTACKER, "bulk_job", "tok-old")
    # telemetry: the head-end's TLS to the vendor, and its conn row (same uid)
    c.con.execute(
        "INSERT INTO tls (ts, uid, src_ip, dst_ip, dst_port, server_name, subject, issuer, established, source_file, "
        "source_ref) VALUES (?, 'CT1', ?, ?, 443, 'telemetry.acme.example', 'CN=telemetry.acme.example', "
        "'CN=Acme CA', true, 'ssl.log', ?)",
        [T, HE, TELEMETRY_IP, "line 1"],
    )
    r["telemetry_conn"] = conn(c, T, HE, TELEMETRY_IP, 443, uid="CT1", out=4000, back=600)
    # the update channel: DNS for its CDN host, an HTTP download from the URL's host, the flow
    c.con.execute(
        "INSERT INTO dns (ts, src_ip, query, qtype, rcode, answers, source_file, source_ref) VALUES "
        "(?, ?, 'cdn.acme.example', 'A', 'NOERROR', ?, 'dns.log', 'line 1'), "
        "(?, ?, 'api.acme-status.example', 'A', 'NOERROR', '198.51.100.88', 'dns.log', 'line 2')",
        [T, HE, UPDATES_IP, T, DC],
    )
    c.con.execute(
        "INSERT INTO http (ts, uid, src_ip, dst_ip, dst_port, method, host, uri, status_code, source_file, source_ref) "
        "VALUES (?, 'CH1', ?, ?, 80, 'GET', 'updates.acme.example', '/fw/he-7.5.bin', 200, 'http.log', 'line 1')",
        [T + m(1), HE, UPDATES_IP],
    )
    r["update_conn"] = conn(c, T + m(1), HE, UPDATES_IP, 80, uid="CH1", out=300, back=25_000_000)
    # a certificate the register names by fingerprint shows in x509; the mTLS cert's subject in TLS
    seen = certs["seen"]
    c.con.execute(
        "INSERT INTO x509 (ts, fingerprint, subject, issuer, source_file, source_ref) VALUES (?, ?, ?, ?, 'x509.log', "
        "'line 1')",
        [T, seen.fingerprint(hashes.SHA256()).hex(), seen.subject.rfc4514_string(), seen.issuer.rfc4514_string()],
    )
    c.con.execute(
        "INSERT INTO tls (ts, uid, src_ip, dst_ip, dst_port, server_name, subject, issuer, established, source_file, "
        "source_ref) VALUES (?, 'CT2', ?, ?, 443, 'gw.acme.example', ?, ?, true, 'ssl.log', 'line 2')",
        # Zeek writes the DN most-specific first: the match must not depend on the order
        [T, HE, TELEMETRY_IP, "CN=client.acme.example,O=Acme", "CN=client.acme.example,O=Acme"],
    )
    return r


def build(tmp: Path, path: Path | None = None) -> tuple[Case, dict[str, str], dict[str, x509.Certificate]]:
    """The case (in a temporary file, or at `path`), the evidence refs by name, the certificates."""
    tmp.mkdir(parents=True, exist_ok=True)
    certs = write_register(tmp)
    case = Case.open(path)
    load_context(case, tmp)
    refs = evidence(case, certs)
    return case, refs, certs
