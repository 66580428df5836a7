"""Context files: asset inventory, zones/conduits policy, vendor register, change calendar.

YAML is written with sorted-free, insertion-ordered dumps (`sort_keys=False`) from plain
lists and dicts, so the bytes depend only on the world, never on set or hash order.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from gridhunt.demo.timeutil import INCIDENT_END, INCIDENT_START, at, iso_ms
from gridhunt.demo.world import World

TOKEN_OLD = "tok-headend-01"
TOKEN_NEW = "tok-headend-02"
TOKEN_ROTATE_BY = (10, 12)  # April 10, 12:00 UTC: the old token should be dead after this


# The demo's offline geo overlay: non-overlapping blocks (first match = longest match), every
# public address the generator uses falls in exactly one. `{vendor}` is the AMI vendor's name.
GEOIP: tuple[tuple[str, str, str, str], ...] = (
    ("192.0.2.0/26", "GB", "AS64500", "Example Home Broadband"),
    ("192.0.2.64/26", "GB", "AS64500", "Example Home Broadband"),
    ("192.0.2.128/26", "US", "AS64501", "Example CDN"),
    ("192.0.2.192/28", "FR", "AS64520", "Example Hotel Wi-Fi"),
    ("192.0.2.208/28", "GB", "AS64521", "Example Offsite Backup"),
    ("192.0.2.224/28", "GB", "AS64522", "Example Business Fibre"),
    ("192.0.2.240/28", "US", "AS64501", "Example CDN"),
    ("203.0.113.0/24", "DE", "AS64502", "{vendor} GmbH"),
    ("198.51.100.0/26", "NL", "AS64510", "Example VPS Hosting"),
    ("198.51.100.64/26", "SG", "AS64511", "Example Cloud Asia"),
    ("198.51.100.128/26", "GB", "AS64500", "Example Home Broadband"),
    ("198.51.100.192/26", "US", "AS64503", "Example SaaS"),
)


@dataclass(frozen=True)
class Change:
    start: int
    end: int
    ticket: str
    system: str
    description: str


def change_calendar(w: World) -> dict[str, Change]:
    """Approved change windows, keyed by purpose so generators can refer to them."""
    t = w.ticket_base

    def c(k: int, day: int, h0: int, h1: int, system: str, desc: str, m1: int = 0) -> Change:
        return Change(at(day, h0), at(day, h1, m1), f"CHG-{t + k}", system, desc)

    return {
        "headend_upgrade": c(
            1, 5, 2, 5, "ami-headend", f"{w.vendor} head-end 7.4.3 upgrade (vendor-performed)"
        ),
        "gpo_lock": c(4, 8, 18, 20, "active-directory", "GPO: workstation screen lock 10 min"),
        "collector_fw_420": c(7, 12, 2, 5, "ami-collectors", f"{w.vendor} collector firmware 4.2.0 rollout"),
        "patching": c(9, 14, 20, 23, "it-servers", "Monthly server patching", m1=59),
        "lab_rebuild": c(11, 16, 19, 21, "lab", "Rebuild test server lab01 (logs reset)"),
        "meter_fw": c(
            13, 19, 2, 5, "ami-meters", f"{w.vendor} meter firmware 2.9.8 rollout, feeders batch 1"
        ),
        "dms_patch": c(15, 21, 22, 23, "dms", "DMS application patch 11.2.4", m1=59),
        "mdm_reindex": c(17, 23, 1, 3, "mdm", "MDM database reindex"),
        "collector_fw_421": c(
            19, 26, 2, 5, "ami-collectors", f"{w.vendor} collector firmware 4.2.1 hotfix rollout"
        ),
        # the protection engineer trips one breaker from an engineering workstation (demo/icsnet.py)
        "breaker_test": c(
            21, 15, 9, 12, "substation-rtu", f"Breaker trip test at {w.rtus[0].name} (CB-12 racked to test position)"
        ),
    }


def _dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120), encoding="utf-8"
    )


def derive_key(seed: int, purpose: str) -> Ed25519PrivateKey:
    """Deterministic demo key: same seed, same key, byte-identical signatures."""
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(f"gridhunt-demo:{seed}:{purpose}".encode()).digest()
    )


def write_context(w: World, evidence: Path) -> list[str]:
    """Write context files; returns their paths relative to the evidence dir."""
    ctx = evidence / "context"
    written: list[str] = []
    assets = []
    for h in w.hosts.values():
        assets.append(
            {
                "asset_id": h.asset_id,
                "hostname": h.name,
                "ips": [h.ip],
                "zone": h.zone,
                "role": h.role,
                "owner": h.owner,
                "vendor": h.vendor,
                "criticality": h.criticality,
            }
        )
    assets.append(
        {
            "asset_id": "A-9000",
            "hostname": "meter-fleet",
            "ips": [],
            "zone": "ami",
            "role": "meter_fleet",
            "owner": "ami-ops",
            "vendor": w.vendor,
            "criticality": "high",
            "count": len(w.meters),
            "id_range": f"{w.meters[0]}..{w.meters[-1]}",
        }
    )
    _dump(ctx / "assets.yaml", {"assets": assets})
    written.append("context/assets.yaml")

    jump = w.h("jump01").name
    zones = {
        "zones": [
            {"name": "it", "cidrs": ["10.10.0.0/16"], "level": 1},
            {"name": "dmz", "cidrs": ["10.20.0.0/16"], "level": 2},
            {"name": "vendor-access", "cidrs": ["10.30.0.0/16"], "level": 2},
            {"name": "ot-control", "cidrs": ["10.40.0.0/16"], "level": 3},
            {"name": "ami", "cidrs": ["10.50.0.0/16"], "level": 3},
        ],
        "conduits": [
            {"from": "it", "to": "dmz", "proto": "tcp", "ports": "25,443", "via": None},
            {"from": "it", "to": "ami", "proto": "tcp", "ports": "443", "via": None},
            {"from": "it", "to": "vendor-access", "proto": "tcp", "ports": "3389", "via": None},
            {"from": "vendor-access", "to": "ami", "proto": "tcp", "ports": "22,443", "via": jump},
            {"from": "ot-control", "to": "dmz", "proto": "tcp", "ports": "443", "via": None},
            {"from": "ami", "to": "dmz", "proto": "tcp", "ports": "443", "via": None},
            {"from": "dmz", "to": "ami", "proto": "tcp", "ports": "443", "via": None},
            # the head-end's telemetry feed to the vendor (a registered telemetry access path)
            {"from": "ami", "to": "internet", "proto": "tcp", "ports": "443", "via": None},
        ],
    }
    _dump(ctx / "zones.yaml", zones)
    written.append("context/zones.yaml")

    # The vendor's mTLS client certificate (for the telemetry channel) and release key.
    cert_key = derive_key(w.seed, "vendor-mtls")
    rng = random.Random(f"{w.seed}:cert")
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"telemetry-client.{w.vendor_domain}"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, w.vendor),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(cert_key.public_key())
        .serial_number(rng.getrandbits(63) + 1)
        .not_valid_before(datetime(2025, 4, 20, tzinfo=UTC))
        .not_valid_after(datetime(2026, 4, 20, tzinfo=UTC))
        .sign(cert_key, None)
    )
    (ctx / "certs").mkdir(parents=True, exist_ok=True)
    (ctx / "certs" / f"{w.vendor_slug}-mtls.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    written.append(f"context/certs/{w.vendor_slug}-mtls.pem")
    rel_key = derive_key(w.seed, "vendor-release")
    (ctx / "keys").mkdir(parents=True, exist_ok=True)
    (ctx / "keys" / f"{w.vendor_slug}-release.pub.pem").write_bytes(
        rel_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    written.append(f"context/keys/{w.vendor_slug}-release.pub.pem")

    access: list[dict[str, Any]] = []
    for s in w.vendor_staff:
        access.append(
            {"kind": "vpn_account", "identifier": s.vpn_user, "owner": "ot-eng", "last_rotated": "2026-01-10"}
        )
    for s in w.vendor_staff:
        access.append(
            {
                "kind": "service_account",
                "identifier": s.ad_user.sam,
                "owner": "ot-eng",
                "last_rotated": "2026-01-10",
            }
        )
    assert w.vendor_svc is not None
    access += [
        {"kind": "jump_host", "identifier": jump},
        {"kind": "ip_range", "identifier": w.vendor_range},
        {
            "kind": "update_channel",
            "identifier": f"updates.{w.vendor_domain}",
            "signing_key": f"keys/{w.vendor_slug}-release.pub.pem",
        },
        {"kind": "telemetry", "identifier": f"telemetry.{w.vendor_domain}"},
        {
            "kind": "api_token",
            "identifier": TOKEN_OLD,
            "last_rotated": "2025-10-01",
            "rotate_by": f"2026-04-{TOKEN_ROTATE_BY[0]:02d}",
        },
        {
            "kind": "api_token",
            "identifier": TOKEN_NEW,
            "last_rotated": f"2026-04-{TOKEN_ROTATE_BY[0]:02d}",
            "rotate_by": "2026-10-10",
        },
        {
            "kind": "service_account",
            "identifier": w.vendor_svc.sam,
            "owner": "ami-ops",
            "last_rotated": "2025-09-01",
        },
        {
            "kind": "cert",
            "identifier": f"certs/{w.vendor_slug}-mtls.pem",
            "last_rotated": "2025-04-20",
            "rotate_by": "2026-04-20",
        },
    ]
    vendors = {
        "vendors": [
            {
                "name": w.vendor,
                "incident_window": {"start": INCIDENT_START, "end": INCIDENT_END},
                "contact": f"security@{w.vendor_domain}",
                "access": access,
            }
        ],
        "secrets": [
            {
                "secret_id": TOKEN_OLD,
                "kind": "api_token",
                "owner_vendor": w.vendor,
                "last_rotated": "2025-10-01",
                "expires": f"2026-04-{TOKEN_ROTATE_BY[0]:02d}",
            },
            {
                "secret_id": TOKEN_NEW,
                "kind": "api_token",
                "owner_vendor": w.vendor,
                "last_rotated": f"2026-04-{TOKEN_ROTATE_BY[0]:02d}",
                "expires": "2026-10-10",
            },
            {
                "secret_id": f"certs/{w.vendor_slug}-mtls.pem",
                "kind": "cert",
                "owner_vendor": w.vendor,
                "last_rotated": "2025-04-20",
                "expires": "2026-04-20",
            },
            {
                "secret_id": w.vendor_svc.sam,
                "kind": "service_account",
                "owner_vendor": w.vendor,
                "last_rotated": "2025-09-01",
                "expires": "2026-09-01",
            },
        ]
        + [
            {
                "secret_id": s.vpn_user,
                "kind": "vpn_account",
                "owner_vendor": w.vendor,
                "last_rotated": "2026-01-10",
                "expires": "2026-07-10",
            }
            for s in w.vendor_staff
        ],
    }
    _dump(ctx / "vendors.yaml", vendors)
    written.append("context/vendors.yaml")

    lines = ["start,end,ticket,system,description"]
    for ch in sorted(change_calendar(w).values(), key=lambda c: c.start):
        desc = f'"{ch.description}"' if "," in ch.description else ch.description  # RFC 4180 quoting
        lines.append(f"{iso_ms(ch.start)},{iso_ms(ch.end)},{ch.ticket},{ch.system},{desc}")
    (ctx / "change_windows.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append("context/change_windows.csv")

    # Geolocation for the documentation ranges, so "new country" is decidable offline.
    geo = ["cidr,country,asn,org"] + [",".join(row).replace("{vendor}", w.vendor) for row in GEOIP]
    (ctx / "geoip.csv").write_text("\n".join(geo) + "\n", encoding="utf-8")
    written.append("context/geoip.csv")
    return written
