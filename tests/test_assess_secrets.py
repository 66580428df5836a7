"""Secrets rotation audit: certificates parsed with `cryptography`, rotated vs not, expired, used after
expiry, bad PEMs named with their entry while the rest is still checked, and `gridhunt vendor secrets`."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from typer.testing import CliRunner

from gridhunt.assess.secrets import audit_secrets, load_cert
from gridhunt.assess.vendor import VendorError
from gridhunt.cli import app
from tests.vendor_case import ATTACKER, build, make_cert


@pytest.fixture
def acme(tmp_path: Path):
    case, refs, certs = build(tmp_path)
    yield case, refs, certs, tmp_path
    case.close()


def _rows(rep) -> dict[str, object]:
    return {r.secret_id: r for r in rep.rows}


def test_certificates_are_parsed(tmp_path: Path) -> None:
    nb, na = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    cert = make_cert(tmp_path / "rsa.pem", "client.acme.example", nb, na, bits=3072)
    info, err = load_cert(tmp_path / "rsa.pem")
    assert err is None and info is not None
    assert info.subject == "O=Acme,CN=client.acme.example" and info.self_signed and info.issuer == info.subject
    assert (info.not_before, info.not_after) == (nb, na)
    assert (info.key_type, info.key_size) == ("RSA", 3072)
    assert info.sha256 == cert.fingerprint(hashes.SHA256()).hex() and len(info.sha1) == 40
    assert info.serial == format(cert.serial_number, "x")
    make_cert(tmp_path / "ec.pem", "ec.acme.example", nb, na, key="ec")
    ec, _ = load_cert(tmp_path / "ec.pem")
    assert (ec.key_type, ec.key_size) == ("EC secp256r1", 256)
    # DER works too
    (tmp_path / "c.der").write_bytes(cert.public_bytes(__import__("cryptography.hazmat.primitives.serialization",
                                                                  fromlist=["Encoding"]).Encoding.DER))  # fmt: skip
    assert load_cert(tmp_path / "c.der")[0].sha256 == info.sha256


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("missing.pem", None, "no such file"),
        ("garbage.pem", b"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n", "not a PEM / DER X.509"),
        ("empty.der", b"", "not a PEM / DER X.509"),
        ("folder", "dir", "is a folder"),
    ],
)
def test_bad_certificate_files_say_why(tmp_path: Path, name: str, content: bytes | str | None, why: str) -> None:
    p = tmp_path / name
    if content == "dir":
        p.mkdir()
    elif content is not None:
        p.write_bytes(content)  # type: ignore[arg-type]
    info, err = load_cert(p)
    assert info is None and why in err and str(p) in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_certificate(tmp_path: Path) -> None:
    p = tmp_path / "locked.pem"
    make_cert(p, "x", datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    p.chmod(0)
    assert "unreadable" in load_cert(p)[1]


def test_rotated_not_rotated_expired_and_used_after_expiry(acme) -> None:
    case, refs, *_ = acme
    rep = audit_secrets(case, ["acme"])
    assert rep.as_of == datetime(2026, 4, 16, 3, tzinfo=UTC)  # the last evidence record
    r = _rows(rep)
    # register secrets and access paths are one credential each
    assert len(rep.rows) == 9 and r["tok-old"].refs == [(r["tok-old"].refs[0][0], "vendors[0].access[2]"),
                                                          (r["tok-old"].refs[0][0], "secrets[0]")]  # fmt: skip

    svc = r["svc_acme"]  # rotated on 2026-04-05, after the incident began on 04-01
    assert svc.rotated_after_incident and not svc.rules and svc.uses == 5

    bob = r["acme.bob"]  # rotated in January, used since, once from outside the vendor's range
    assert bob.rotated_after_incident is False and not bob.expired and bob.deadline_why == "expiry"
    assert (bob.uses, bob.failures, bob.uses_since_incident) == (2, 1, 2)
    (f,) = [f for f in rep.findings if f.entity == "Acme vpn_account acme.bob"]
    assert f.rule_id == "assess.secret_not_rotated" and f.severity == "high"
    assert f.details["outside_vendor_ranges"] == [ATTACKER]
    assert [e["source_ref"] for e in f.evidence] == ["vendors[0].access[0]", "secrets[1]", refs["vpn_ok"],
                                                     refs["vpn_attacker"]]  # fmt: skip

    tok = r["tok-old"]  # rotate_by / expires 2026-04-10: used on 04-05 (fine) and on 04-16 (not)
    assert tok.expired and tok.deadline_given == datetime(2026, 4, 10, tzinfo=UTC)
    assert tok.deadline == datetime(2026, 4, 11, tzinfo=UTC)  # a date lasts the whole day
    assert (tok.uses, tok.uses_after_deadline) == (2, 1) and tok.sources_after[0]["ip"] == ATTACKER
    (f,) = [f for f in rep.findings if f.entity == "Acme api_token tok-old"]
    assert f.rule_id == "assess.secret_used_after_expiry" and f.severity == "critical"  # from outside its ranges
    assert [e["source_ref"] for e in f.evidence] == [refs["tok_after"]]
    assert {"T1550.001", "T1528"} <= set(f.attack) and "(2026-04-10)" in f.title

    old = r["certs/acme-old.pem"]  # notAfter 2026-04-01, never seen: expired, nothing to say but revoke it
    assert old.deadline_why == "certificate notAfter" and old.expired and old.cert.key_type == "EC secp256r1"
    (f,) = [f for f in rep.findings if f.entity == "Acme cert certs/acme-old.pem"]
    assert f.rule_id == "assess.secret_expired" and f.severity == "low"

    mtls = r["certs/acme-mtls.pem"]  # valid, not rotated since the incident, in use
    assert mtls.cert.subject == "O=Acme,CN=client.acme.example" and mtls.uses == 1 and not mtls.expired
    assert "assess.secret_not_rotated" in mtls.rules

    assert r["gateway-cert"].uses == 1  # matched by the register's fingerprint in x509
    assert r["tok-unused"].rotated_after_incident and not r["tok-unused"].rules


def test_bad_pems_are_errors_naming_the_entry_and_the_rest_is_checked(acme) -> None:
    case, *_ = acme
    rep = audit_secrets(case)
    assert len(rep.errors) == 2
    assert rep.errors[0].startswith("vendors.yaml: vendors[0].access[11] (cert certs/missing.pem): ")
    assert rep.errors[0].endswith("missing.pem: no such file")
    assert rep.errors[1].startswith("vendors.yaml: vendors[0].access[12] (cert certs/garbage.pem): ")
    assert "not a PEM / DER X.509 certificate" in rep.errors[1]
    r = _rows(rep)
    assert r["certs/missing.pem"].error and "not fully checked" in r["certs/missing.pem"].status[-1]
    # the entries after the bad ones, and the bad ones' register dates, are still judged
    assert r["tok-old"].rules == ["assess.secret_used_after_expiry"]
    assert r["certs/garbage.pem"].rules == ["assess.secret_not_rotated"]


def test_a_register_fingerprint_that_is_not_the_pems_is_an_error(tmp_path: Path) -> None:
    case, _, certs = build(tmp_path)
    other = "ab" * 32
    case.con.execute(
        "UPDATE vendor_access SET attrs = json_object('pem', json_extract_string(attrs, '$.pem'), 'fingerprint', ?) "
        "WHERE identifier = 'certs/acme-mtls.pem'",
        [other],
    )
    rep = audit_secrets(case)
    (err,) = [e for e in rep.errors if "acme-mtls" in e]
    assert f"the register's fingerprint {other} is not the PEM's" in err
    case.close()


def test_as_of_decides_expiry_and_vendor_filter(acme) -> None:
    case, *_ = acme
    rep = audit_secrets(case, as_of=datetime(2026, 3, 1, tzinfo=UTC))
    assert not _rows(rep)["certs/acme-old.pem"].expired
    with pytest.raises(VendorError, match="unknown vendor 'Nope'"):
        audit_secrets(case, ["Nope"])


def test_cli_secrets_table_json_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "case.duckdb"
    case, *_ = build(tmp_path / "ctx", path)
    case.close()
    runner = CliRunner()
    res = runner.invoke(app, ["vendor", "secrets", str(path), "--vendor", "Acme"])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    for text in ("tok-old", "used after its expiry (2026-04-10): tok-old", "assess.secret_used_after_expiry",
                 "error: vendors.yaml: vendors[0].access[11]"):  # fmt: skip
        assert text in flat, text
    res = runner.invoke(app, ["vendor", "secrets", str(path), "--json", "--as-of", "2026-04-20"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["as_of"] == "2026-04-20T00:00:00Z" and len(data["secrets"]) == 9 and len(data["errors"]) == 2
    res = runner.invoke(app, ["vendor", "secrets", str(path), "--as-of", "soon"])
    assert res.exit_code == 2 and "not an ISO date" in res.output


def test_default_as_of_is_the_last_record_of_any_evidence_table(acme) -> None:
    """The audit's "now" is the last evidence record, whichever table holds it (DNS, HTTP, files,
    Windows events), not only logons and flows; a case without evidence tables still audits."""
    case, *_ = acme
    last = datetime(2026, 6, 2, 8, 30, tzinfo=UTC)
    case.con.execute(
        "INSERT INTO dns (ts, src_ip, query, source_file, source_ref) VALUES (?, '10.0.0.1', 'x.example', 'dns.log', "
        "'line 9')",
        [last],
    )
    assert audit_secrets(case).as_of == last
    http_last = datetime(2026, 7, 1, tzinfo=UTC)
    case.con.execute(
        "INSERT INTO http (ts, src_ip, host, uri, source_file, source_ref) VALUES (?, '10.0.0.1', 'h', '/', "
        "'http.log', 'line 9')",
        [http_last],
    )
    assert audit_secrets(case).as_of == http_last
