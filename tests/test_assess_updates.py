"""Update integrity (gridhunt.assess.updates / .signatures) with real cryptography made here: keys,
certificates, CMS, OpenPGP and Sigstore material are generated at test time, the case is real DuckDB."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from gridhunt.assess.updates import check_updates, parse_window, update_findings
from gridhunt.case import Case
from gridhunt.cli import app
from gridhunt.ingest import ingest_paths
from gridhunt.ingest.context import UPDATE_COLUMNS

VENDOR, CHANNEL = "MeterCo", "updates.meterco.example"
APPLIED = datetime(2026, 4, 10, 2, 0, tzinfo=UTC)
WINDOW = {"start": "2026-03-15T00:00:00Z", "end": "2026-04-28T00:00:00Z"}
NOW = datetime.now(UTC)


# ---------------------------------------------------------------- key material


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    cn: str,
    key: Any,
    issuer: tuple[x509.Certificate, Any] | None = None,
    ca: bool = False,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (_name(cn), key)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or min(NOW, APPLIED) - timedelta(days=30))
        .not_valid_after(not_after or NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return b.sign(signing_key, hashes.SHA256())


def _pem(obj: Any) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _cms(data: bytes, cert: x509.Certificate, key: Any, pem: bool = False, pss: bool = False) -> bytes:
    pad = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH) if pss else None
    builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(cert, key, hashes.SHA256(), rsa_padding=pad)
    enc = serialization.Encoding.PEM if pem else serialization.Encoding.DER
    return builder.sign(enc, [pkcs7.PKCS7Options.DetachedSignature])


def _pgpy() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("pgpy")  # not installed on Python 3.13+ (see pyproject)


def _pgp_key(uid: str = "MeterCo Release") -> Any:
    pgpy = _pgpy()
    from pgpy.constants import EllipticCurveOID, HashAlgorithm, KeyFlags, PubKeyAlgorithm

    key = pgpy.PGPKey.new(PubKeyAlgorithm.EdDSA, EllipticCurveOID.Ed25519)
    key.add_uid(
        pgpy.PGPUID.new(uid, email="release@meterco.example"), usage={KeyFlags.Sign}, hashes=[HashAlgorithm.SHA256]
    )
    return key


def _pgp_sign(key: Any, data: bytes, armored: bool = True) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sig = key.sign(data)
    return str(sig).encode() if armored else bytes(sig)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _spki(k: Any) -> bytes:
    return k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _sigstore(data: bytes, identity: str = "release@meterco.example", issuer: str = "https://issuer.test"):
    """A Sigstore bundle over `data` and the trusted root that verifies it, both made here: a Fulcio-style
    CA issues a 10-minute code-signing certificate with an embedded SCT from our CT log key; a Rekor-style
    hashedrekord entry carries an inclusion promise and a one-leaf inclusion proof with a signed checkpoint."""
    import rfc8785

    ca_key, rekor_key, ct_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    fulcio = _name("test fulcio")
    ca = (
        x509.CertificateBuilder()
        .subject_name(fulcio)
        .issuer_name(fulcio)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    integrated = int((NOW - timedelta(minutes=1)).timestamp())
    t0 = datetime.fromtimestamp(integrated, UTC)
    leaf_b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(fulcio)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(t0 - timedelta(minutes=1))
        .not_valid_after(t0 + timedelta(minutes=10))
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(identity)]), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1"), issuer.encode()), critical=False
        )
    )
    # RFC 6962 SCT over the precertificate (the TBS without the SCT extension), signed by our CT log
    tbs = leaf_b.sign(ca_key, hashes.SHA256()).tbs_certificate_bytes
    ms = integrated * 1000
    entry = hashlib.sha256(_spki(ca_key.public_key())).digest() + len(tbs).to_bytes(3, "big") + tbs
    ct_sig = ct_key.sign(struct.pack("!BBQH", 0, 0, ms, 1) + entry + b"\0\0", ec.ECDSA(hashes.SHA256()))
    sct = b"\0" + hashlib.sha256(_spki(ct_key.public_key())).digest() + struct.pack("!QH", ms, 0)
    sct += struct.pack("!BBH", 4, 3, len(ct_sig)) + ct_sig
    sct_list = struct.pack("!HH", len(sct) + 2, len(sct)) + sct
    octets = b"\x04" + (bytes([len(sct_list)]) if len(sct_list) < 128 else b"\x81" + bytes([len(sct_list)]))
    sct_ext = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2"), octets + sct_list)
    leaf = leaf_b.add_extension(sct_ext, critical=False).sign(ca_key, hashes.SHA256())
    assert leaf.tbs_precertificate_bytes == tbs
    digest = hashlib.sha256(data).digest()
    sig = leaf_key.sign(data, ec.ECDSA(hashes.SHA256()))
    spec = {
        "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
        "signature": {
            "content": _b64(sig),
            "publicKey": {"content": _b64(leaf.public_bytes(serialization.Encoding.PEM))},
        },
    }
    body = rfc8785.dumps({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": spec})
    log_id = hashlib.sha256(_spki(rekor_key.public_key())).digest()
    promise = {"body": _b64(body), "integratedTime": integrated, "logID": log_id.hex(), "logIndex": 0}
    set_sig = rekor_key.sign(rfc8785.dumps(promise), ec.ECDSA(hashes.SHA256()))
    root = hashlib.sha256(b"\0" + body).digest()  # a one-leaf tree: the root is the leaf hash
    note = f"rekor.test - 1\n1\n{_b64(root)}\n"
    note_sig = rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": _b64(leaf.public_bytes(serialization.Encoding.DER))},
            "tlogEntries": [
                {
                    "logIndex": "0",
                    "logId": {"keyId": _b64(log_id)},
                    "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                    "integratedTime": str(integrated),
                    "inclusionPromise": {"signedEntryTimestamp": _b64(set_sig)},
                    "inclusionProof": {
                        "logIndex": "0",
                        "rootHash": _b64(root),
                        "treeSize": "1",
                        "hashes": [],
                        "checkpoint": {"envelope": note + f"\n\u2014 rekor.test {_b64(log_id[:4] + note_sig)}\n"},
                    },
                    "canonicalizedBody": _b64(body),
                }
            ],
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(digest)},
            "signature": _b64(sig),
        },
    }

    def log(key: Any, url: str) -> dict[str, Any]:
        raw = _spki(key.public_key())
        pub = {
            "rawBytes": _b64(raw),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": {"start": "2020-01-01T00:00:00Z"},
        }
        return {
            "baseUrl": url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": pub,
            "logId": {"keyId": _b64(hashlib.sha256(raw).digest())},
        }

    trusted_root = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [log(rekor_key, "https://rekor.test")],
        "ctlogs": [log(ct_key, "https://ct.test")],
        "certificateAuthorities": [
            {
                "subject": {"organization": "test", "commonName": "test fulcio"},
                "uri": "https://fulcio.test",
                "certChain": {"certificates": [{"rawBytes": _b64(ca.public_bytes(serialization.Encoding.DER))}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            }
        ],
        "timestampAuthorities": [],
    }
    return json.dumps(bundle).encode(), json.dumps(trusted_root).encode()


# ---------------------------------------------------------------- a small world: register, log, artifacts


@dataclass
class World:
    root: Path
    updates: list[dict[str, Any]] = field(default_factory=list)
    manifest: dict[str, str] = field(default_factory=dict)
    vendors: list[dict[str, Any]] = field(default_factory=list)
    network: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.root / "updates" / "artifacts").mkdir(parents=True)
        (self.root / "context" / "keys").mkdir(parents=True)

    def vendor(self, name: str = VENDOR, window: dict[str, str] | None = WINDOW, **channel: Any) -> None:
        host = channel.pop("identifier", f"updates.{name.lower()}.example")
        entry = {"name": name, "access": [{"kind": "update_channel", "identifier": host, **channel}]}
        if window:
            entry["incident_window"] = window
        self.vendors.append(entry)

    def key_file(self, name: str, blob: bytes) -> str:
        (self.root / "context" / "keys" / name).write_bytes(blob)
        return f"keys/{name}"

    def artifact(self, name: str, data: bytes, listed: bool = True) -> None:
        (self.root / "updates" / "artifacts" / name).write_bytes(data)
        if listed:
            self.manifest[name] = hashlib.sha256(data).hexdigest()

    def signature(self, name: str, blob: bytes) -> str:
        (self.root / "updates" / "artifacts" / name).write_bytes(blob)
        return f"artifacts/{name}"

    def update(self, target: str, artifact: str, sig: str = "", vendor: str = VENDOR, **kw: Any) -> None:
        path = self.root / "updates" / "artifacts" / artifact
        row = {
            "ts_applied": kw.pop("ts", APPLIED).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "target": target,
            "product": kw.pop("product", f"{vendor} Collector Firmware"),
            "version": kw.pop("version", "4.2.0"),
            "vendor": vendor,
            "artifact": f"artifacts/{artifact}",
            "artifact_sha256": kw.pop("sha", hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""),
            "signature": sig,
            "channel": kw.pop("channel", CHANNEL),
        }
        self.updates.append(row)

    def download(self, artifact: str, host: str = CHANNEL, when: datetime | None = None) -> None:
        """The artifact fetched over HTTP from `host` an hour before the updates."""
        self.network.append(
            ("http", {"host": host, "uri": f"/fw/{artifact}?sig=1", "ts": when or APPLIED - timedelta(hours=1)})
        )

    def build(self, path: Path | None = None) -> Case:
        ctx = self.root / "context" / "vendors.yaml"
        ctx.write_text(yaml.safe_dump({"vendors": self.vendors}, sort_keys=False))
        (self.root / "updates" / "artifacts" / "manifest.sha256").write_text(
            "".join(f"{h}  {n}\n" for n, h in sorted(self.manifest.items()))
        )
        log = self.root / "updates" / "updates.csv"
        cols = UPDATE_COLUMNS  # the update log's documented header
        log.write_text(",".join(cols) + "\n" + "".join(",".join(r[c] for c in cols) + "\n" for r in self.updates))
        case = Case.open(path)
        report = ingest_paths(case, [ctx, log])
        assert report.records_bad == 0, report.messages()
        for i, (table, r) in enumerate(self.network, 1):
            ref = (str(self.root / "zeek" / f"{table}.log"), f"line {i}")
            if table == "http":
                case.con.execute(
                    "INSERT INTO http (ts, uid, src_ip, dst_ip, dst_port, method, host, uri, source_file, source_ref) "
                    "VALUES (?, ?, '10.20.0.5', '203.0.113.9', 443, 'GET', ?, ?, ?, ?)",
                    [r["ts"], r.get("uid"), r["host"], r["uri"], *ref],
                )
            elif table == "tls":
                case.con.execute(
                    "INSERT INTO tls (ts, uid, src_ip, dst_ip, dst_port, server_name, source_file, source_ref) "
                    "VALUES (?, ?, '10.20.0.5', '203.0.113.9', 443, ?, ?, ?)",
                    [r["ts"], r.get("uid"), r["server_name"], *ref],
                )
            elif table == "conn":
                case.con.execute(
                    "INSERT INTO conn (ts, uid, src_ip, dst_ip, dst_port, proto, source_file, source_ref) "
                    "VALUES (?, ?, '10.20.0.5', '203.0.113.9', 443, 'tcp', ?, ?)",
                    [r["ts"], r["uid"], *ref],
                )
            else:
                case.con.execute(
                    "INSERT INTO files (ts, uid, tx_hosts, rx_hosts, filename, sha256, source_file, source_ref) "
                    "VALUES (?, ?, '203.0.113.9', '10.20.0.5', ?, ?, ?, ?)",
                    [r["ts"], r.get("uid"), r.get("filename"), r.get("sha256"), *ref],
                )
        return case


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "evidence")


def _firmware(tag: str = "fw", size: int = 4096) -> bytes:
    return b"MCFW" + tag.encode() + b"\0" + hashlib.sha256(tag.encode()).digest() * (size // 32)


def _check(world: World, **kw: Any):
    case = world.build()
    try:
        rep = check_updates(case, **kw)
    finally:
        case.close()
    return rep, {v.target: v for v in rep.verdicts}


def _ed25519_world(world: World, data: bytes, sign_key: Any | None = None, applied: bytes | None = None) -> Any:
    """Vendor key registered; `data` signed (by `sign_key`, default the vendor's) and listed in the
    manifest; `applied` (default `data`) is the file on disk."""
    key = ed25519.Ed25519PrivateKey.generate()
    world.vendor(signing_key=world.key_file("release.pub.pem", _pem(key.public_key())))
    world.artifact("fw.bin", data)
    if applied is not None:
        world.artifact("fw.bin", applied, listed=False)
    sig = world.signature("fw.bin.sig", (sign_key or key).sign(data))
    world.update("col-01", "fw.bin", sig)
    world.download("fw.bin")
    return key


# ---------------------------------------------------------------- raw signatures (what the demo ships)


def test_ed25519_good_signature_verifies(world: World) -> None:
    _ed25519_world(world, _firmware())
    rep, v = _check(world)
    u = v["col-01"]
    assert u.verdict == "verified" and u.in_window, u.reasons
    assert u.signature_format == "raw-ed25519" and u.signature_status == "valid"
    assert u.signer == "keys/release.pub.pem (Ed25519 public key)"
    assert u.signer_where == "vendors.yaml vendors[0].access[0]"
    assert u.actual_sha256 == u.manifest_sha256 == hashlib.sha256(_firmware()).hexdigest()
    assert u.custody == "ok" and any("fetched from updates.meterco.example" in r for r in u.reasons)
    assert rep.errors == [] and update_findings(rep.verdicts) == []


def test_one_flipped_byte_is_a_mismatch(world: World) -> None:
    data = _firmware()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    _ed25519_world(world, data, applied=bytes(flipped))
    rep, v = _check(world)
    u = v["col-01"]
    assert u.verdict == "mismatch"
    assert u.manifest_sha256 == hashlib.sha256(data).hexdigest() != u.actual_sha256
    assert any("differs from the vendor manifest" in r for r in u.reasons)
    assert u.signature_status == "invalid"  # the vendor key no longer verifies the changed bytes
    (f,) = update_findings(rep.verdicts)
    assert (f.rule_id, f.severity, f.detector) == ("assess.update_mismatch", "critical", "assess")
    assert f.attack == ["T1195.002", "T0862", "T0839"]
    assert f.evidence[0]["source_ref"] == "line 2" and f.evidence[0]["table"] == "updates"
    assert any(e["table"] == "http" for e in f.evidence)  # the custody record travels with it


def test_signature_by_another_key_is_an_unknown_signer(world: World) -> None:
    _ed25519_world(world, _firmware(), sign_key=ed25519.Ed25519PrivateKey.generate())
    rep, v = _check(world)
    u = v["col-01"]
    assert u.verdict == "unknown signer" and u.signature_status == "invalid"
    assert any("does not verify with the registered key(s) keys/release.pub.pem" in r for r in u.reasons)
    (f,) = update_findings(rep.verdicts)
    assert (f.rule_id, f.severity) == ("assess.update_unknown_signer", "high")


@pytest.mark.parametrize("first", [b"{", b"-", b"0", b"\x89"])
def test_raw_signature_bytes_that_look_like_another_format(first: bytes) -> None:
    """Random signature bytes may start like JSON, PEM, DER or an OpenPGP packet: still raw."""
    from gridhunt.assess.signatures import Signer, check_signature

    key = ed25519.Ed25519PrivateKey.generate()
    signer = Signer(VENDOR, "here", "k", public_key=key.public_key())
    for i in range(20_000):
        data = b"fw%d" % i
        sig = key.sign(data)
        if sig[:1] == first:
            break
    chk = check_signature(sig, data, [signer])
    assert (chk.format, chk.status) == ("raw-ed25519", "valid")


@pytest.mark.parametrize("algo", ["ecdsa", "rsa-pss", "rsa-pkcs1v15-base64"])
def test_raw_ecdsa_and_rsa_with_a_registered_certificate(world: World, algo: str) -> None:
    """X.509 detached signature: raw ECDSA / RSA bytes, the vendor registers its signing certificate."""
    data = _firmware(algo)
    key: Any = ec.generate_private_key(ec.SECP256R1()) if algo == "ecdsa" else rsa.generate_private_key(65537, 2048)
    cert = _cert("MeterCo Release Signing", key)
    world.vendor(certificate=world.key_file("release.crt", _pem(cert)))
    world.artifact("fw.bin", data)
    if algo == "ecdsa":
        sig = key.sign(data, ec.ECDSA(hashes.SHA384()))
    elif algo == "rsa-pss":
        sig = key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH), hashes.SHA256())
    else:
        sig = base64.encodebytes(key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
    world.update("col-01", "fw.bin", world.signature("fw.bin.sig", sig))
    world.download("fw.bin")
    _, v = _check(world)
    u = v["col-01"]
    assert u.verdict == "verified", u.reasons
    want = {
        "ecdsa": "raw-ecdsa-sha384",
        "rsa-pss": "raw-rsa-pss-sha256",
        "rsa-pkcs1v15-base64": "raw-rsa-pkcs1v15-sha256",
    }
    assert u.signature_format == want[algo]
    assert u.signer == "keys/release.crt (CN=MeterCo Release Signing)"
    assert any("raw signature has no signing time" in r for r in u.reasons)


# ---------------------------------------------------------------- CMS / PKCS#7


def _vendor_ca(world: World) -> tuple[x509.Certificate, Any]:
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = _cert("MeterCo Code Signing CA", ca_key, ca=True)
    world.vendor(certificate=world.key_file("meterco-ca.pem", _pem(ca)))
    return ca, ca_key


@pytest.mark.parametrize("kind", ["rsa", "rsa-pss", "ecdsa-pem"])
def test_cms_detached_signature_chains_to_the_registered_ca(world: World, kind: str) -> None:
    ca = _vendor_ca(world)
    key: Any = ec.generate_private_key(ec.SECP256R1()) if kind == "ecdsa-pem" else rsa.generate_private_key(65537, 2048)
    leaf = _cert("MeterCo Release 2026", key, issuer=ca)
    data = _firmware(kind)
    world.artifact("fw.bin", data)
    sig = _cms(data, leaf, key, pem=kind == "ecdsa-pem", pss=kind == "rsa-pss")
    world.update("col-01", "fw.bin", world.signature("fw.bin.p7s", sig))
    world.download("fw.bin")
    rep, v = _check(world)
    u = v["col-01"]
    assert u.verdict == "verified", u.reasons
    assert (u.signature_format, u.signer, u.cert_valid_at_signing) == ("cms", "CN=MeterCo Release 2026", True)
    assert u.signing_time is not None and abs(u.signing_time - NOW) < timedelta(minutes=5)
    assert any("vouched for by keys/meterco-ca.pem (CN=MeterCo Code Signing CA)" in r for r in u.reasons)
    assert rep.errors == []


def test_cms_by_a_certificate_of_another_ca_is_an_unknown_signer(world: World) -> None:
    _vendor_ca(world)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = (_cert("Other CA", other_key, ca=True), other_key)
    key = ec.generate_private_key(ec.SECP256R1())
    data = _firmware()
    world.artifact("fw.bin", data)
    world.update(
        "col-01", "fw.bin", world.signature("fw.p7s", _cms(data, _cert("Not MeterCo", key, issuer=other), key))
    )
    world.download("fw.bin")
    _, v = _check(world)
    u = v["col-01"]
    assert u.verdict == "unknown signer" and u.signature_status == "untrusted"
    assert any("signed by CN=Not MeterCo" in r and "not a registered signer" in r for r in u.reasons)


def test_cms_certificate_expired_at_signing_time_is_flagged(world: World) -> None:
    ca = _vendor_ca(world)
    key = ec.generate_private_key(ec.SECP256R1())
    expired = _cert(
        "MeterCo Release 2024", key, issuer=ca, not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=2)
    )
    data = _firmware()
    world.artifact("fw.bin", data)
    world.update("col-01", "fw.bin", world.signature("fw.p7s", _cms(data, expired, key)))
    world.download("fw.bin")
    rep, v = _check(world)
    u = v["col-01"]
    assert u.cert_valid_at_signing is False
    assert u.verdict == "unknown signer" and u.signature_status == "untrusted"
    assert any("CN=MeterCo Release 2024 not valid at signing time" in r for r in u.reasons)
    (f,) = update_findings(rep.verdicts)
    assert f.details["cert_valid_at_signing"] is False and f.rule_id == "assess.update_unknown_signer"


def test_cms_message_digest_shows_a_changed_artifact_without_a_manifest(world: World) -> None:
    ca = _vendor_ca(world)
    key = ec.generate_private_key(ec.SECP256R1())
    data = _firmware()
    world.artifact("fw.bin", data[:-1] + b"X", listed=False)
    world.update(
        "col-01", "fw.bin", world.signature("fw.p7s", _cms(data, _cert("MeterCo Release", key, issuer=ca), key))
    )
    world.download("fw.bin")
    _, v = _check(world)
    u = v["col-01"]
    assert u.verdict == "mismatch" and u.signature_status == "content"
    assert any("messageDigest differs" in r for r in u.reasons)
    assert any("not listed in manifest.sha256" in r for r in u.reasons)


# ---------------------------------------------------------------- OpenPGP


@pytest.mark.parametrize("case_", ["good", "good-binary", "other key", "flipped"])
def test_openpgp_detached_signature(world: World, case_: str) -> None:
    key = _pgp_key()
    world.vendor(pgp_key=world.key_file("release.asc", str(key.pubkey).encode()))
    data = _firmware("pgp")
    signer = _pgp_key("Someone Else") if case_ == "other key" else key
    sig = _pgp_sign(signer, data, armored=case_ != "good-binary")
    world.artifact("fw.bin", data + b"!" if case_ == "flipped" else data, listed=False)
    world.update("col-01", "fw.bin", world.signature("fw.bin.asc", sig))
    world.download("fw.bin")
    _, v = _check(world)
    u = v["col-01"]
    assert u.signature_format == "openpgp", u.reasons
    want = {"good": "verified", "good-binary": "verified", "other key": "unknown signer", "flipped": "mismatch"}
    assert u.verdict == want[case_], u.reasons
    if case_.startswith("good"):
        assert u.cert_valid_at_signing is True and u.signer.startswith("keys/release.asc (OpenPGP key ")
    if case_ == "other key":
        assert any(f"signed by OpenPGP key {signer.fingerprint.keyid}, not a registered key" in r for r in u.reasons)


def test_openpgp_key_expired_now_but_valid_at_signing_time(world: World) -> None:
    """pgpy judges expiry at the current time; what counts is the key's validity when it signed."""
    pgpy = _pgpy()
    from pgpy.constants import EllipticCurveOID, HashAlgorithm, KeyFlags, PubKeyAlgorithm

    born = NOW - timedelta(days=400)
    key = pgpy.PGPKey.new(PubKeyAlgorithm.EdDSA, EllipticCurveOID.Ed25519, created=born)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        uid = pgpy.PGPUID.new("MeterCo Release 2025")
        key.add_uid(
            uid, usage={KeyFlags.Sign}, hashes=[HashAlgorithm.SHA256], key_expiration=timedelta(days=365), created=born
        )
        before = key.sign(_firmware("a"), created=NOW - timedelta(days=100))  # key valid then
        after = key.sign(_firmware("b"), created=NOW - timedelta(days=10))  # key expired 25 days before
    world.vendor(pgp_key=world.key_file("release.asc", str(key.pubkey).encode()))
    for name, sig in (("a", before), ("b", after)):
        world.artifact(f"{name}.bin", _firmware(name))
        world.update(f"t-{name}", f"{name}.bin", world.signature(f"{name}.asc", str(sig).encode()))
        world.download(f"{name}.bin")
    _, v = _check(world)
    assert (v["t-a"].verdict, v["t-a"].cert_valid_at_signing) == ("verified", True), v["t-a"].reasons
    assert (v["t-b"].verdict, v["t-b"].cert_valid_at_signing) == ("unknown signer", False)
    assert any("not valid at signing time" in r for r in v["t-b"].reasons)


# ---------------------------------------------------------------- Sigstore


@pytest.mark.parametrize("case_", ["good", "other identity", "flipped", "no trusted root"])
def test_sigstore_bundle_verified_offline_against_a_test_trusted_root(world: World, tmp_path: Path, case_: str) -> None:
    data = _firmware("sigstore")
    identity = "mallory@evil.example" if case_ == "other identity" else "release@meterco.example"
    bundle, trusted_root = _sigstore(data, identity=identity)
    (world.root / "context" / "trusted_root.json").write_bytes(trusted_root)
    channel = {"sigstore_identity": "release@meterco.example", "sigstore_issuer": "https://issuer.test"}
    if case_ != "no trusted root":
        channel["trusted_root"] = "trusted_root.json"
    world.vendor(**channel)
    world.artifact("fw.bin", data[:10] + b"?" + data[11:] if case_ == "flipped" else data, listed=False)
    world.update("col-01", "fw.bin", world.signature("fw.bin.sigstore.json", bundle))
    world.download("fw.bin")
    rep, v = _check(world)
    u = v["col-01"]
    assert u.signature_format == "sigstore"
    want = {
        "good": "verified",
        "other identity": "unknown signer",
        "flipped": "mismatch",
        "no trusted root": "unknown signer",
    }
    assert u.verdict == want[case_], u.reasons
    if case_ == "good":
        assert u.cert_valid_at_signing is True and u.signer == "release@meterco.example (https://issuer.test)"
        assert u.signing_time is not None and rep.errors == []
    if case_ == "other identity":
        assert any("signed by mallory@evil.example" in r for r in u.reasons)
    if case_ == "flipped":
        assert any("message digest mismatch" in r for r in u.reasons)
    if case_ == "no trusted root":
        assert rep.errors == [
            "updates.csv line 2 (col-01 MeterCo Collector Firmware 4.2.0): signature fw.bin.sigstore.json: a Sigstore "
            "bundle needs a trusted root: --trusted-root FILE or trusted_root: in the register"
        ]


def test_sigstore_trusted_root_from_the_command_line(world: World, tmp_path: Path) -> None:
    data = _firmware("sigstore")
    bundle, trusted_root = _sigstore(data)
    (tmp_path / "root.json").write_bytes(trusted_root)
    world.vendor(sigstore_identity="release@meterco.example")
    world.artifact("fw.bin", data)
    world.update("col-01", "fw.bin", world.signature("fw.sigstore", bundle))
    world.download("fw.bin")
    _, v = _check(world, trusted_root=tmp_path / "root.json")
    assert v["col-01"].verdict == "verified", v["col-01"].reasons


# ---------------------------------------------------------------- unsigned, missing artifact, custody


def test_unsigned_and_missing_artifact(world: World) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    world.vendor(signing_key=world.key_file("k.pem", _pem(key.public_key())))
    world.artifact("fw.bin", _firmware())
    world.update("col-01", "fw.bin")  # no signature
    world.updates.append(
        {**world.updates[0], "target": "col-02", "artifact": "artifacts/gone.bin", "artifact_sha256": ""}
    )
    world.download("fw.bin")
    rep, v = _check(world)
    assert v["col-01"].verdict == "unsigned" and "signature: none" in v["col-01"].reasons
    assert v["col-02"].verdict == "no artifact" and any("gone.bin not found" in r for r in v["col-02"].reasons)
    found = {f.rule_id: f for f in update_findings(rep.verdicts)}
    # the register names a signing key, so an unsigned update of that vendor is high
    assert found["assess.update_unsigned"].severity == "high"
    assert found["assess.update_no_artifact"].severity == "medium"
    assert rep.errors == []  # a missing artifact is a finding, not bad input


def test_custody_ok_foreign_and_none(world: World) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    world.vendor(signing_key=world.key_file("k.pem", _pem(key.public_key())), hosts=["cdn.meterco.example"])
    for name in ("a.bin", "b.bin", "c.bin", "d.bin"):
        data = _firmware(name)
        world.artifact(name, data)
        world.update(f"t-{name[0]}", name, world.signature(f"{name}.sig", key.sign(data)))
    world.download("a.bin", host="edge.cdn.meterco.example")  # a registered host (subdomain)
    world.download("b.bin", host="files.evil.example")
    sha_c = hashlib.sha256(_firmware("c.bin")).hexdigest()
    world.network.append(("tls", {"server_name": CHANNEL, "uid": "C1", "ts": APPLIED - timedelta(days=2)}))
    world.network.append(("conn", {"uid": "C1", "ts": APPLIED - timedelta(days=2)}))
    world.network.append(("files", {"uid": "C1", "sha256": sha_c, "filename": None, "ts": APPLIED - timedelta(days=2)}))
    rep, v = _check(world)
    assert (v["t-a"].verdict, v["t-a"].custody) == ("verified", "ok")
    assert (v["t-b"].verdict, v["t-b"].custody) == ("no custody evidence", "foreign source")
    assert any("foreign source: fetched from files.evil.example" in r for r in v["t-b"].reasons)
    # files.log by hash, the connection named by its TLS server name
    assert (v["t-c"].verdict, v["t-c"].custody) == ("verified", "ok")
    assert {e["table"] for e in v["t-c"].custody_evidence} == {"files"}
    # d: no record of its own, but the TLS session to the channel in the lookback counts
    assert (v["t-d"].verdict, v["t-d"].custody) == ("verified", "ok")
    assert any("session(s) to registered channel updates.meterco.example" in r for r in v["t-d"].reasons)
    assert {e["table"] for e in v["t-d"].custody_evidence} == {"tls", "conn"}
    found = {f.entity: f for f in update_findings(rep.verdicts)}
    f = found["MeterCo Collector Firmware 4.2.0 (b.bin)"]
    assert (f.rule_id, f.severity) == ("assess.update_no_custody", "high")
    assert any(e["table"] == "http" and e["source_ref"] == "line 2" for e in f.evidence)


def test_no_custody_evidence_at_all(world: World) -> None:
    _ed25519_world(world, _firmware())
    world.network = [("http", {"host": "www.example.com", "uri": "/index.html", "ts": APPLIED})]
    world.download("fw.bin", when=APPLIED - timedelta(days=30))  # long before the 14-day lookback
    rep, v = _check(world)
    assert (v["col-01"].verdict, v["col-01"].custody) == ("no custody evidence", "none")
    assert (
        "custody: no download of fw.bin and no session to a registered update channel in the 14 days before "
        "it was applied" in v["col-01"].reasons
    )
    (f,) = update_findings(rep.verdicts)
    assert (f.rule_id, f.severity) == ("assess.update_no_custody", "low")


def test_custody_not_checked_without_network_records(world: World) -> None:
    _ed25519_world(world, _firmware())
    world.network = []
    rep, v = _check(world)
    assert (v["col-01"].verdict, v["col-01"].custody) == ("verified", "not checked")
    assert rep.notes == ["custody not checked: the case holds no http, files or tls records"]


# ---------------------------------------------------------------- window


def test_window_from_the_register_and_overridden(world: World) -> None:
    _ed25519_world(world, _firmware())
    world.update("col-early", "fw.bin", "artifacts/fw.bin.sig", ts=datetime(2026, 1, 5, tzinfo=UTC))
    world.artifact("dms.msp", b"\xd0\xcf\x11\xe0dms")
    world.update("dms01", "dms.msp", vendor="GridOS Systems", channel="manual")
    rep, v = _check(world)
    assert v["col-01"].in_window and not v["col-early"].in_window and not v["dms01"].in_window
    assert "outside window 2026-03-15 00:00:00Z .. 2026-04-28 00:00:00Z" in v["col-early"].reasons
    assert (
        "outside window: vendor 'GridOS Systems' is not in the vendor register (--window checks it)"
        in v["dms01"].reasons
    )
    assert v["dms01"].verdict == "unsigned" and update_findings(rep.verdicts) == []  # outside: checked, no finding
    assert rep.summary()["in_window"] == 1 and rep.summary()["outside_window"] == 2
    rep2, v2 = _check(world, window=parse_window("2026-01-01..2026-04-10"))
    assert v2["col-early"].in_window and v2["dms01"].in_window and v2["col-01"].in_window
    assert {f.rule_id for f in update_findings(rep2.verdicts)} == {"assess.update_unsigned", "assess.update_no_custody"}


def test_parse_window() -> None:
    assert parse_window("2026-03-15..2026-04-28") == (
        datetime(2026, 3, 15, tzinfo=UTC),
        datetime(2026, 4, 28, 23, 59, 59, 999999, tzinfo=UTC),
    )
    assert parse_window("..2026-04-28T12:00:00+02:00") == (None, datetime(2026, 4, 28, 10, tzinfo=UTC))
    for bad, why in (
        ("2026-03-15", "START..END"),
        ("yesterday..", "not an ISO date"),
        ("2026-05-01..2026-04-01", "after"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_window(bad)


# ---------------------------------------------------------------- bad input: named, the rest still checked


def test_bad_register_entries_and_missing_files_are_named_and_the_rest_checked(world: World) -> None:
    good = ed25519.Ed25519PrivateKey.generate()
    world.vendor(signing_key=world.key_file("good.pem", _pem(good.public_key())))
    world.vendor(
        "GridCo",
        signing_key=world.key_file(
            "garbage.pem", b"-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n"
        ),
    )
    world.vendor("PipeCo", certificate={"path": "keys/x.pem"}, pgp_key="keys/missing.asc")
    for i, vendor in enumerate((VENDOR, "GridCo", "PipeCo")):
        data = _firmware(vendor)
        world.artifact(f"{vendor}.bin", data)
        world.update(f"t{i}", f"{vendor}.bin", world.signature(f"{vendor}.sig", good.sign(data)), vendor=vendor)
    world.update("t3", f"{VENDOR}.bin", "artifacts/nope.sig")  # a signature the log names but nobody kept
    (world.root / "updates" / "artifacts" / "manifest.extra").write_text("")
    for name in (f"{VENDOR}.bin", "GridCo.bin", "PipeCo.bin"):
        world.download(name, host=f"updates.{name.split('.')[0].lower()}.example")
    rep, v = _check(world)
    assert rep.errors[0].startswith(
        "vendors.yaml vendors[1].access[0] (GridCo update channel updates.gridco.example): signing_key: "
        "keys/garbage.pem: not a readable public key or certificate ("
    )
    assert rep.errors[1:] == [
        "vendors.yaml vendors[2].access[0] (PipeCo update channel updates.pipeco.example): certificate: expected a "
        "file path or a list of paths, got {'path': 'keys/x.pem'}",
        "vendors.yaml vendors[2].access[0] (PipeCo update channel updates.pipeco.example): pgp_key: "
        "keys/missing.asc: no such file",
        "updates.csv line 5 (t3 MeterCo Collector Firmware 4.2.0): signature nope.sig: no such file "
        f"({world.root / 'updates' / 'artifacts' / 'nope.sig'})",
    ]
    assert v["t0"].verdict == "verified"  # the good vendor is untouched
    assert v["t1"].verdict == v["t2"].verdict == "unknown signer"
    assert any("no usable signer registered for vendor 'GridCo'" in r for r in v["t1"].reasons)
    assert v["t3"].verdict == "unsigned" and any(
        "nope.sig named in the update log but not found" in r for r in v["t3"].reasons
    )


def test_register_broken_after_ingest_and_a_bad_manifest_line(world: World, tmp_path: Path) -> None:
    _ed25519_world(world, _firmware())
    case = world.build()
    try:
        (world.root / "context" / "vendors.yaml").write_text("vendors:\n  - name: [unclosed\n")
        manifest = world.root / "updates" / "artifacts" / "manifest.sha256"
        manifest.write_text("garbage line\n" + manifest.read_text())
        rep = check_updates(case)
    finally:
        case.close()
    (u,) = rep.verdicts
    assert rep.errors[0].startswith("vendors.yaml: line 3 YAML syntax error")
    assert rep.errors[1] == "manifest.sha256 line 1: not '<sha256>  <file name>': 'garbage line'"
    assert u.manifest_sha256 == u.actual_sha256  # the manifest's good line still counts
    assert u.verdict == "unknown signer"  # the register's key could not be read


def test_unreadable_manifest_option_is_bad_input(world: World, tmp_path: Path) -> None:
    _ed25519_world(world, _firmware())
    case = world.build()
    try:
        with pytest.raises(ValueError, match="--manifest .*: unreadable"):
            check_updates(case, manifest=tmp_path / "nope.sha256")
        other = tmp_path / "other.sha256"
        other.write_text(f"{'0' * 64}  fw.bin\n")
        (u,) = check_updates(case, manifest=other).verdicts
        assert u.verdict == "mismatch" and u.manifest_sha256 == "0" * 64
    finally:
        case.close()


# ---------------------------------------------------------------- command line and hunt


def test_cli_verify_updates(world: World, tmp_path: Path) -> None:
    data = _firmware()
    _ed25519_world(world, data)
    world.artifact("bad.bin", data + b"implant", listed=False)
    world.manifest["bad.bin"] = hashlib.sha256(data).hexdigest()
    world.update("col-02", "bad.bin", "artifacts/fw.bin.sig")
    case = world.build(tmp_path / "case.duckdb")
    case.close()
    runner = CliRunner()
    res = runner.invoke(app, ["verify-updates", str(tmp_path / "case.duckdb")])
    assert res.exit_code == 0, res.output
    assert "verified" in res.stdout and "mismatch" in res.stdout and "col-02" in res.stdout
    res = runner.invoke(app, ["verify-updates", str(tmp_path / "case.duckdb"), "--json"])
    out = json.loads(res.stdout)
    assert {v["target"]: v["verdict"] for v in out["verdicts"]} == {"col-01": "verified", "col-02": "mismatch"}
    assert out["summary"]["by_verdict"]["mismatch"] == 1
    res = runner.invoke(app, ["verify-updates", str(tmp_path / "case.duckdb"), "--window", "soon"])
    assert res.exit_code == 2 and "START..END" in res.output
    assert runner.invoke(app, ["verify-updates", str(tmp_path / "none.duckdb")]).exit_code == 2
    (world.root / "updates" / "artifacts" / "fw.bin.sig").unlink()
    res = runner.invoke(app, ["verify-updates", str(tmp_path / "case.duckdb")])
    assert res.exit_code == 2 and "fw.bin.sig: no such file" in res.output and "col-01" in res.stdout


def test_hunt_reports_update_verdicts(world: World, tmp_path: Path) -> None:
    from gridhunt.hunt import hunt

    data = _firmware()
    _ed25519_world(world, data, applied=data + b"x")
    world.network = []
    world.build().close()  # writes the files
    (tmp_path / "no-rules").mkdir()
    res = hunt([world.root / "context", world.root / "updates" / "updates.csv"], rule_paths=[tmp_path / "no-rules"],
               out_dir=tmp_path / "out")  # fmt: skip
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["assess"]["updates"]["by_verdict"]["mismatch"] == 1
    assert [f.rule_id for f in res.findings if f.rule_id.startswith("assess.update_")] == ["assess.update_mismatch"]


# ---------------------------------------------------------------- the demo


def test_demo_tampered_firmware_is_caught_and_genuine_updates_verified(tmp_path: Path) -> None:
    from gridhunt.demo.generator import generate
    from gridhunt.demo.scorecard import score

    generate(tmp_path, seed=7, size="tiny")
    ev = tmp_path / "evidence"
    with Case.open(None) as case:
        ingest_paths(case, [ev / "context", ev / "updates" / "updates.csv", ev / "zeek"])
        rep = check_updates(case)
    by = Counter((v.version, v.verdict) for v in rep.verdicts if v.in_window)
    assert by == {
        ("7.4.3", "verified"): 1,
        ("4.2.0", "verified"): 24,
        ("2.9.8", "verified"): 5,
        ("4.2.1", "mismatch"): 24,
    }
    assert rep.errors == [] and all(v.custody == "ok" for v in rep.verdicts if v.in_window)
    dms = [v for v in rep.verdicts if v.product == "GridOS DMS"]
    assert dms and all(not v.in_window and v.verdict == "unsigned" for v in dms)
    findings = update_findings(rep.verdicts)
    card = score(json.loads((tmp_path / "labels.json").read_text()), [f.to_dict() for f in findings], ev)
    assert {lab["id"] for lab in card["labels"] if lab["detected"]} == {"S19-tampered-firmware"}
    assert card["findings_true"] == card["findings_total"] == 1  # no false positive from the genuine updates
