"""Detached signatures over update artifacts, one interface for every format a vendor may ship.

`load_signers` reads what the vendor register says may sign (a key or certificate file, a
fingerprint, an OpenPGP key, a Sigstore identity); `check_signature` sniffs a signature file and
checks it over the artifact bytes:

  raw        Ed25519 / Ed448 / ECDSA / RSA (PKCS#1 v1.5 or PSS) signature bytes, or their base64,
             checked against each registered public key or certificate key (what the demo ships)
  cms        PKCS#7 / CMS SignedData, detached (PEM or DER). `cryptography` can build these but not
             verify them, so asn1crypto parses SignedData and `cryptography` checks the signature over
             the signed attributes, the messageDigest attribute against the artifact, the signer
             certificate (or its chain up to a registered CA) at the signingTime attribute
  openpgp    armored or binary OpenPGP signature, checked with pgpy against registered OpenPGP keys
  sigstore   a Sigstore bundle (JSON), checked offline by the `sigstore` package against a supplied
             trusted root (Fulcio CA, Rekor and CT log keys); the signer is the certificate identity

Every check ends in one status: valid (verifies and the signer is registered, its certificate valid
at signing time), untrusted (verifies, but the signer is not registered or its certificate was not
valid), content (the signature itself shows the bytes changed), invalid (no registered key verifies
it: changed bytes or another key, a raw signature cannot tell which) or error (could not be checked).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

PublicKey = ed25519.Ed25519PublicKey | ed448.Ed448PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha224": hashes.SHA224,
    "sha1": hashes.SHA1,
}
# register keys that name signers, besides the Sigstore identity pair
KEY_FIELDS = ("signing_key", "signing_keys", "certificate", "cert", "pgp_key")
_FP = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
_B64 = re.compile(rb"^[A-Za-z0-9+/=\s]+$")


class SignerError(ValueError):
    """A register entry's signer could not be loaded; the message names the value."""


@dataclass(frozen=True)
class Signer:
    """One thing the register says may sign a vendor's updates."""

    vendor: str
    where: str  # "vendors.yaml vendors[0].access[10]"
    label: str  # what the analyst recognises: file name and key type, or the identity
    public_key: Any = None
    cert: x509.Certificate | None = None
    pgp_key: Any = None
    fingerprint: str | None = None  # SHA-256 of the certificate (DER) or public key (SubjectPublicKeyInfo)
    identity: str | None = None  # Sigstore: certificate SAN (e-mail / URI)
    issuer: str | None = None  # Sigstore: OIDC issuer


@dataclass
class SignatureCheck:
    format: str  # raw-ed25519, raw-ecdsa-sha256, raw-rsa-pkcs1v15-sha256, cms, openpgp, sigstore, raw
    status: str  # valid | untrusted | content | invalid | error
    signer: str | None = None
    signer_where: str | None = None  # the register entry that vouches for the signer
    signing_time: datetime | None = None
    cert_valid_at_signing: bool | None = None
    reasons: list[str] = field(default_factory=list)
    error: str | None = None  # an input problem (unreadable, malformed, no trusted root)


# ---------------------------------------------------------------- register -> signers


def load_signers(vendor: str, where: str, entry: dict[str, Any], base: Path) -> tuple[list[Signer], list[str]]:
    """Signers of one update_channel entry. Paths are relative to the register's folder. Each
    problem is one message naming the field and value; the entry's other signers still load."""
    signers: list[Signer] = []
    errors: list[str] = []
    for name in KEY_FIELDS:
        value = entry.get(name)
        if value is None:
            continue
        paths = value if isinstance(value, list) else [value]
        if not all(isinstance(p, str) and p.strip() for p in paths):
            errors.append(f"{name}: expected a file path or a list of paths, got {value!r}")
            continue
        for p in paths:
            path = Path(p) if Path(p).is_absolute() else base / p
            try:
                signers.extend(_signers_from_file(vendor, where, path, p))
            except SignerError as exc:
                errors.append(f"{name}: {p}: {exc}")
    fps = entry.get("fingerprint", entry.get("fingerprints"))
    for fp in fps if isinstance(fps, list) else [] if fps is None else [fps]:
        m = _FP.match(re.sub(r"[\s:]", "", str(fp)).lower())
        if m is None:
            errors.append(f"fingerprint: not a SHA-256 hex fingerprint: {fp!r}")
            continue
        signers.append(Signer(vendor, where, f"fingerprint sha256:{m.group(1)[:16]}…", fingerprint=m.group(1)))
    ident = entry.get("sigstore_identity")
    if ident is not None:
        issuer = entry.get("sigstore_issuer")
        if not isinstance(ident, str) or (issuer is not None and not isinstance(issuer, str)):
            errors.append(f"sigstore_identity / sigstore_issuer: expected text, got {ident!r} / {issuer!r}")
        else:
            label = f"Sigstore identity {ident}" + (f" ({issuer})" if issuer else "")
            signers.append(Signer(vendor, where, label, identity=ident, issuer=issuer))
    return signers, errors


def _signers_from_file(vendor: str, where: str, path: Path, shown: str) -> list[Signer]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SignerError("no such file") from None
    except OSError as exc:
        raise SignerError(f"unreadable: {exc.strerror or exc}") from None
    text = raw.lstrip()
    if b"PRIVATE KEY-----" in text[:200]:
        raise SignerError("holds a private key; register the vendor's public key or certificate")
    if text.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----") or _looks_openpgp(raw, tags=(6,)):
        key = _pgp_key(raw)
        return [Signer(vendor, where, f"{shown} (OpenPGP key {key.fingerprint.keyid})", pgp_key=key)]
    try:
        if text.startswith(b"-----BEGIN CERTIFICATE-----"):
            certs = x509.load_pem_x509_certificates(raw)
        elif text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(raw)
            return [_key_signer(vendor, where, key, shown)]
        elif text.startswith((b"ssh-", b"ecdsa-sha2-")):
            return [_key_signer(vendor, where, serialization.load_ssh_public_key(text), shown)]
        else:
            certs = _der_cert_or_key(raw)
            if not isinstance(certs, list):
                return [_key_signer(vendor, where, certs, shown)]
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignerError(f"not a readable public key or certificate ({_short(exc)})") from None
    return [
        Signer(vendor, where, f"{shown} ({_cert_name(c)})", cert=c, public_key=c.public_key(), fingerprint=_cert_fp(c))
        for c in certs
    ]


def _der_cert_or_key(raw: bytes) -> list[x509.Certificate] | Any:
    try:
        return [x509.load_der_x509_certificate(raw)]
    except ValueError:
        pass
    try:
        return serialization.load_der_public_key(raw)
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("not PEM, DER, OpenSSH or OpenPGP") from None


def _key_signer(vendor: str, where: str, key: Any, shown: str) -> Signer:
    if isinstance(key, dsa.DSAPublicKey):
        raise SignerError("DSA keys are not supported")
    return Signer(vendor, where, f"{shown} ({_key_type(key)})", public_key=key, fingerprint=_key_fp(key))


# ---------------------------------------------------------------- one signature


def check_signature(
    sig: bytes, data: bytes, signers: list[Signer], applied: datetime | None = None, trusted_root: Path | None = None
) -> SignatureCheck:
    """Check detached signature `sig` over `data` against the registered `signers`. `applied`: when
    the update was applied (the latest the signature can have been made)."""
    # only text can be JSON or PEM: a raw signature's random bytes may well start with '{' or '-'
    text = sig.lstrip() if _is_text(sig) else b""
    try:
        if text.startswith(b"{"):
            return _check_sigstore(sig, data, signers, trusted_root)
        if text.startswith(b"-----BEGIN PGP SIGNATURE-----"):
            return _check_openpgp(sig, data, signers)
        if text.startswith((b"-----BEGIN PKCS7-----", b"-----BEGIN CMS-----")):
            return _check_cms(_pem_body(text), data, signers, applied)
        cms_der = _as_cms(sig)
        if cms_der is not None:
            return _check_cms(cms_der, data, signers, applied)
        if _looks_openpgp(sig, tags=(2,)):
            pgp = _check_openpgp(sig, data, signers, fallback=True)
            if pgp is not None:
                return pgp
        return _check_raw(sig, data, signers, applied)
    except _Unreadable as exc:
        return SignatureCheck(exc.format, "error", error=str(exc), reasons=[f"signature not checked: {exc}"])


def _is_text(blob: bytes) -> bool:
    try:
        blob.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(b >= 0x20 or b in b"\t\r\n" for b in blob)


class _Unreadable(Exception):
    def __init__(self, fmt: str, message: str) -> None:
        super().__init__(message)
        self.format = fmt


# ---- raw signature bytes ----


def _check_raw(sig: bytes, data: bytes, signers: list[Signer], applied: datetime | None) -> SignatureCheck:
    candidates = [sig]
    if _B64.match(sig.strip()):  # `openssl dgst -sign ... | base64` and the like
        with contextlib.suppress(binascii.Error, ValueError):
            candidates.append(base64.b64decode(b"".join(sig.split()), validate=True))
    keyed = [s for s in signers if s.public_key is not None]
    for s in keyed:
        for blob in candidates:
            how = _verify_any(s.public_key, blob, data)
            if how is None:
                continue
            out = SignatureCheck(f"raw-{how}", "valid", signer=s.label, signer_where=s.where)
            if s.cert is not None:
                _raw_cert_validity(out, s.cert, applied)
            return out
    if not keyed:  # a gap in the register, not broken input: the signer is simply unknown
        why = "no public key or certificate is registered for the vendor"
        return SignatureCheck("raw", "untrusted", reasons=[f"raw signature not checked: {why}"])
    names = ", ".join(s.label for s in keyed)
    return SignatureCheck(
        "raw",
        "invalid",
        reasons=[f"signature does not verify with the registered key(s) {names}"],
    )


def _raw_cert_validity(out: SignatureCheck, cert: x509.Certificate, applied: datetime | None) -> None:
    """A raw signature carries no signing time: the certificate can only be judged against the time
    the update was applied, the latest the signature can have been made."""
    nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    out.reasons.append(f"raw signature has no signing time; certificate valid {_day(nb)} to {_day(na)}")
    if applied is not None and applied < nb:
        out.status, out.cert_valid_at_signing = "untrusted", False
        out.reasons.append(f"certificate {_cert_name(cert)} only valid from {_day(nb)}, after the update was applied")


def _verify_any(key: Any, sig: bytes, data: bytes) -> str | None:
    """The algorithm name if `sig` verifies over `data` with `key` under a usual scheme, else None."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(sig, data)
            return "ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "ed448"
    except InvalidSignature:
        return None
    for name in ("sha256", "sha384", "sha512"):
        h = _HASHES[name]()
        if isinstance(key, ec.EllipticCurvePublicKey):
            if _ok(lambda h=h: key.verify(sig, data, ec.ECDSA(h))):
                return f"ecdsa-{name}"
        elif isinstance(key, rsa.RSAPublicKey):
            if _ok(lambda h=h: key.verify(sig, data, padding.PKCS1v15(), h)):
                return f"rsa-pkcs1v15-{name}"
            pss = padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.AUTO)
            if _ok(lambda h=h, pss=pss: key.verify(sig, data, pss, h)):
                return f"rsa-pss-{name}"
    return None


def _ok(fn: Any) -> bool:
    try:
        fn()
        return True
    except (InvalidSignature, ValueError):
        return False


# ---- CMS / PKCS#7 SignedData ----


def _as_cms(sig: bytes) -> bytes | None:
    """DER ContentInfo(SignedData), else None. A DER ECDSA signature is a SEQUENCE too, so the
    content type decides, parsed strictly."""
    if not sig or sig[0] != 0x30:
        return None
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(sig, strict=True)
        return sig if info["content_type"].native == "signed_data" else None
    except (ValueError, TypeError, KeyError):
        return None


def _pem_body(text: bytes) -> bytes:
    lines = [ln for ln in text.decode("ascii", "replace").splitlines() if ln and not ln.startswith("-----")]
    try:
        return base64.b64decode("".join(lines), validate=True)
    except (binascii.Error, ValueError):
        raise _Unreadable("cms", "PEM signature with a broken base64 body") from None


def _check_cms(der: bytes, data: bytes, signers: list[Signer], applied: datetime | None) -> SignatureCheck:
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise _Unreadable("cms", f"CMS {info['content_type'].native}, not SignedData")
        sd = info["content"]
        pool = [x509.load_der_x509_certificate(c.chosen.dump()) for c in sd["certificates"] if c.name == "certificate"]
        infos = list(sd["signer_infos"])
        attached = sd["encap_content_info"]["content"].native
    except _Unreadable:
        raise
    except Exception as exc:  # asn1crypto raises assorted types on malformed input
        raise _Unreadable("cms", f"malformed CMS SignedData ({_short(exc)})") from None
    if not infos:
        raise _Unreadable("cms", "CMS SignedData without a signer")
    if attached is not None and attached != data:
        return SignatureCheck("cms", "content", reasons=["the content embedded in the CMS signature differs"])
    checks = [_cms_signer(si, data, pool, signers, applied) for si in infos]
    order = ("valid", "untrusted", "content", "invalid", "error")
    return min(checks, key=lambda c: order.index(c.status))


def _cms_signer(si: Any, data: bytes, pool: list[x509.Certificate], signers: list[Signer], applied: datetime | None):
    try:
        digest_name = si["digest_algorithm"]["algorithm"].native
        algo = si["signature_algorithm"]
        sig_name = algo.signature_algo
        signature = si["signature"].native
        attrs = si["signed_attrs"]
        has_attrs = bool(attrs.native) if attrs is not None else False
        signing_time = None
        to_verify = data
        if has_attrs:
            values = {a["type"].native: a["values"].native for a in attrs}
            digest = (values.get("message_digest") or [None])[0]
            if digest_name not in _HASHES:
                raise _Unreadable("cms", f"unsupported digest {digest_name}")
            if digest != hashlib.new(digest_name, data).digest():
                why = "CMS messageDigest differs from the artifact's digest"
                return SignatureCheck("cms", "content", reasons=[why])
            st = (values.get("signing_time") or [None])[0]
            signing_time = st.astimezone(UTC) if isinstance(st, datetime) else None
            # signed attributes are signed as a SET OF, not the [0] IMPLICIT they are stored as
            to_verify = b"\x31" + attrs.dump()[1:]
        cert = _cms_find_cert(si["sid"], pool + [s.cert for s in signers if s.cert is not None])
        pss = algo["parameters"].native if sig_name == "rsassa_pss" else None
    except _Unreadable:
        raise
    except Exception as exc:
        raise _Unreadable("cms", f"malformed CMS SignerInfo ({_short(exc)})") from None
    if cert is None:
        why = "the CMS signer's certificate is neither in the signature nor registered"
        return SignatureCheck("cms", "untrusted", reasons=[why])
    out = SignatureCheck("cms", "invalid", signer=_cert_name(cert), signing_time=signing_time)
    if not _cms_verify(cert.public_key(), sig_name, digest_name, pss, signature, to_verify):
        out.reasons.append(f"CMS signature does not verify with its signer certificate {_cert_name(cert)}")
        return out
    _judge_cert(out, cert, pool, signers, signing_time, applied)
    return out


def _cms_find_cert(sid: Any, certs: list[x509.Certificate]) -> x509.Certificate | None:
    if sid.name == "issuer_and_serial_number":
        issuer, serial = sid.chosen["issuer"].dump(), sid.chosen["serial_number"].native
        for c in certs:
            if c.serial_number == serial and c.issuer.public_bytes() == issuer:
                return c
        return None
    ski = sid.chosen.native
    for c in certs:
        try:
            if c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest == ski:
                return c
        except x509.ExtensionNotFound:
            continue
    return None


def _cms_verify(key: Any, sig_name: str, digest_name: str, pss: Any, signature: bytes, data: bytes) -> bool:
    h = _HASHES.get(digest_name)
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return _ok(lambda: key.verify(signature, data))
    if h is None:
        return False
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _ok(lambda: key.verify(signature, data, ec.ECDSA(h())))
    if isinstance(key, rsa.RSAPublicKey):
        if sig_name == "rsassa_pss" and pss:
            ph = _HASHES.get(pss["hash_algorithm"]["algorithm"], hashes.SHA256)()
            mgf = padding.MGF1(_HASHES.get(pss["mask_gen_algorithm"]["parameters"]["algorithm"], hashes.SHA256)())
            return _ok(lambda: key.verify(signature, data, padding.PSS(mgf, pss["salt_length"]), ph))
        return _ok(lambda: key.verify(signature, data, padding.PKCS1v15(), h()))
    return False


def _judge_cert(
    out: SignatureCheck,
    cert: x509.Certificate,
    pool: list[x509.Certificate],
    signers: list[Signer],
    signing_time: datetime | None,
    applied: datetime | None,
) -> None:
    """The signature verifies with `cert`: is `cert` a registered signer (itself, its key or its
    fingerprint, or by a chain up to a registered CA) and valid at signing time?"""
    at = signing_time or applied
    if signing_time is None:
        out.reasons.append("no signing time in the signature: certificates judged at the time the update was applied")
    chain, anchor = _chain_to_signer(cert, pool, signers)
    if anchor is None:
        out.status = "untrusted"
        out.reasons.append(f"signed by {_cert_name(cert)} (sha256:{_cert_fp(cert)[:16]}…), not a registered signer")
    else:
        out.signer_where = anchor.where
        out.reasons.append(f"signer certificate {_cert_name(cert)} vouched for by {anchor.label}")
    if at is None:
        return
    expired = [c for c in chain if not c.not_valid_before_utc <= at <= c.not_valid_after_utc]
    if signing_time is not None:
        out.cert_valid_at_signing = not expired
    for c in expired:
        when = "signing" if signing_time is not None else "application"
        out.reasons.append(
            f"certificate {_cert_name(c)} not valid at {when} time {_iso(at)} "
            f"(valid {_iso(c.not_valid_before_utc)} to {_iso(c.not_valid_after_utc)})"
        )
    if anchor is not None:
        out.status = "untrusted" if expired else "valid"


def _chain_to_signer(
    cert: x509.Certificate, pool: list[x509.Certificate], signers: list[Signer]
) -> tuple[list[x509.Certificate], Signer | None]:
    """Certificates from `cert` up to the first one a registered signer names, and that signer."""
    chain = [cert]
    current = cert
    issuers = pool + [s.cert for s in signers if s.cert is not None]
    for _ in range(8):  # no real code-signing chain is deeper
        anchor = _signer_for(current, signers)
        if anchor is not None:
            return chain, anchor
        parent = next((c for c in issuers if c not in chain and _issued_by(current, c)), None)
        if parent is None:
            return chain, None
        chain.append(parent)
        current = parent
    return chain, None


def _signer_for(cert: x509.Certificate, signers: list[Signer]) -> Signer | None:
    fp, key_fp = _cert_fp(cert), _key_fp(cert.public_key())
    for s in signers:
        if s.fingerprint in (fp, key_fp):
            return s
    return None


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        bc = parent.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not bc.ca:
            return False
    except x509.ExtensionNotFound:
        return False
    try:
        child.verify_directly_issued_by(parent)
        return True
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False


# ---- OpenPGP ----


def _looks_openpgp(raw: bytes, tags: tuple[int, ...]) -> bool:
    """First byte is an OpenPGP packet header (old or new format) with one of `tags`."""
    if not raw or not raw[0] & 0x80:
        return False
    b = raw[0]
    tag = (b & 0x3F) if b & 0x40 else (b & 0x3C) >> 2
    return tag in tags


def _pgpy() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgpy
    except ImportError as exc:  # pgpy does not import on Python 3.13+ (imghdr is gone)
        raise SignerError(f"OpenPGP support needs pgpy, which does not import here: {exc}") from None
    return pgpy


def _pgp_key(raw: bytes) -> Any:
    pgpy = _pgpy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            key, _ = pgpy.PGPKey.from_blob(raw)
    except Exception as exc:  # pgpy raises assorted types on bad input
        raise SignerError(f"not a readable OpenPGP public key ({_short(exc)})") from None
    return key.pubkey if not key.is_public else key


def _check_openpgp(sig: bytes, data: bytes, signers: list[Signer], fallback: bool = False) -> SignatureCheck | None:
    try:
        pgpy = _pgpy()
    except SignerError as exc:
        raise _Unreadable("openpgp", str(exc)) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = pgpy.PGPSignature.from_blob(sig)
            keyid = s.signer
    except Exception as exc:
        if fallback:  # binary that only looked like an OpenPGP packet: let the raw check have it
            return None
        raise _Unreadable("openpgp", f"malformed OpenPGP signature ({_short(exc)})") from None
    created = s.created.astimezone(UTC) if s.created else None
    out = SignatureCheck("openpgp", "untrusted", signer=f"OpenPGP key {keyid}", signing_time=created)
    for signer in signers:
        key = signer.pgp_key
        if key is None:
            continue
        sub = key if key.fingerprint.keyid == keyid else key.subkeys.get(keyid)
        if sub is None:
            continue
        out.signer, out.signer_where = signer.label, signer.where
        if not _pgp_verify(pgpy, key, sub, s, data):
            out.status = "content"
            out.reasons.append(f"OpenPGP signature by registered key {keyid} does not verify over the artifact")
            return out
        valid = _pgp_valid_at(sub, created) and _pgp_valid_at(key, created)
        out.cert_valid_at_signing = valid
        out.status = "valid" if valid else "untrusted"
        if not valid:
            out.reasons.append(f"OpenPGP key {keyid} not valid at signing time {_iso(created)}")
        return out
    registered = [s.label for s in signers if s.pgp_key is not None]
    out.reasons.append(
        f"signed by OpenPGP key {keyid}, not a registered key"
        + (f" ({', '.join(registered)})" if registered else " (no OpenPGP key registered for the vendor)")
    )
    return out


def _pgp_verify(pgpy: Any, key: Any, sub: Any, sig: Any, data: bytes) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if key.verify(data, sig):
            return True
        if not (key.is_expired or sub.is_expired):
            return False
        # pgpy refuses keys expired *now*; validity at signing time is judged separately, so check
        # the signature itself (pgpy internals: the key material's verify over the signed hash data)
        h = getattr(hashes, sig.hash_algorithm.name)()
        return bool(sub._key.verify(sig.hashdata(data), sig.__sig__, h))


def _pgp_valid_at(key: Any, at: datetime | None) -> bool:
    if at is None:
        return True
    created = key.created.astimezone(UTC)
    expires = key.expires_at.astimezone(UTC) if key.expires_at else None
    return created <= at and (expires is None or at <= expires)


# ---- Sigstore bundle ----


class _AnyIdentity:
    """Sigstore verification policy that accepts every identity: the identity is judged afterwards
    against the register, so a verified bundle by someone else reads 'untrusted', not 'invalid'."""

    def verify(self, cert: x509.Certificate) -> None:
        return None


def _check_sigstore(sig: bytes, data: bytes, signers: list[Signer], trusted_root: Path | None) -> SignatureCheck:
    try:
        doc = json.loads(sig)
    except ValueError as exc:
        raise _Unreadable("sigstore", f"JSON signature file that does not parse ({_short(exc)})") from None
    if not isinstance(doc, dict) or "sigstore.bundle" not in str(doc.get("mediaType", "")):
        raise _Unreadable("sigstore", "JSON signature file that is not a Sigstore bundle (no sigstore mediaType)")
    try:
        from sigstore.errors import Error as SigstoreError
        from sigstore.errors import VerificationError
        from sigstore.models import Bundle, TrustedRoot
        from sigstore.verify import Verifier
        from sigstore.verify.policy import Identity
    except ImportError as exc:
        raise _Unreadable("sigstore", f"Sigstore support needs the sigstore package: {exc}") from None
    if trusted_root is None:
        raise _Unreadable(
            "sigstore", "a Sigstore bundle needs a trusted root: --trusted-root FILE or trusted_root: in the register"
        )
    try:
        root = TrustedRoot.from_file(str(trusted_root))
        verifier = Verifier(trusted_root=root)
    except (OSError, ValueError, SigstoreError) as exc:
        raise _Unreadable("sigstore", f"trusted root {trusted_root}: {_short(exc)}") from None
    try:
        bundle = Bundle.from_json(sig)
    except (ValueError, SigstoreError) as exc:
        raise _Unreadable("sigstore", f"malformed Sigstore bundle ({_short(exc)})") from None
    cert = bundle.signing_certificate
    integrated = getattr(getattr(bundle.log_entry, "_inner", None), "integrated_time", None)
    out = SignatureCheck("sigstore", "invalid", signer=_sigstore_identity(cert))
    if integrated:
        out.signing_time = datetime.fromtimestamp(int(integrated), UTC)
    try:
        verifier.verify_artifact(data, bundle, _AnyIdentity())
    except (VerificationError, ValueError) as exc:
        msg = str(exc)
        if "digest mismatch" in msg or "Signature is invalid for input" in msg or "inconsistent" in msg:
            out.status = "content"
        elif "expired at time of signing" in msg or "certificate chain" in msg:
            out.status, out.cert_valid_at_signing = "untrusted", False if "expired" in msg else None
        out.reasons.append(f"Sigstore verification failed: {msg}")
        return out
    out.cert_valid_at_signing = True
    for s in signers:
        if s.identity is None:
            continue
        try:
            Identity(identity=s.identity, issuer=s.issuer).verify(cert)
        except VerificationError:
            continue
        out.status, out.signer_where = "valid", s.where
        out.reasons.append(f"Sigstore bundle verified offline; signer {s.label}")
        return out
    wanted = [s.label for s in signers if s.identity is not None]
    out.status = "untrusted"
    out.reasons.append(
        f"Sigstore bundle verified offline but signed by {out.signer}, "
        + (f"not {', '.join(wanted)}" if wanted else "and no Sigstore identity is registered for the vendor")
    )
    return out


def _sigstore_identity(cert: x509.Certificate) -> str:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.RFC822Name) + san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        names = []
    try:
        issuer = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")).value
        iss = issuer.value.decode() if isinstance(issuer, x509.UnrecognizedExtension) else None
    except x509.ExtensionNotFound:
        iss = None
    return (", ".join(names) or _cert_name(cert)) + (f" ({iss})" if iss else "")


# ---------------------------------------------------------------- small helpers


def _cert_fp(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _key_fp(key: Any) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _cert_name(cert: x509.Certificate) -> str:
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return f"CN={cn[0].value}" if cn else cert.subject.rfc4514_string() or "(no subject)"


def _key_type(key: Any) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519 public key"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448 public key"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name} public key"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size} public key"
    return type(key).__name__


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = re.sub(r"\s*See https?://\S+ for more details\.", "", text[0]) if text else type(exc).__name__
    return first[:160]


def _iso(ts: datetime | None) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else "?"


def _day(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d")
