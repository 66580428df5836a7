"""Vendor register schema, `vendor_exposure` per path kind, the graph, the assess.* exposure findings,
the hunt hook and `gridhunt vendor exposure`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from typer.testing import CliRunner

from gridhunt.assess import vendor as vx
from gridhunt.case import Case
from gridhunt.cli import app
from gridhunt.detect import AnalyticsResult
from gridhunt.ingest import context
from tests.conftest import rows
from tests.vendor_case import ATTACKER, DMS, HE, JUMP, TUNNEL, VENDOR_IP, build


@pytest.fixture
def acme(tmp_path: Path):
    case, refs, certs = build(tmp_path)
    yield case, refs, certs, tmp_path
    case.close()


def _paths(rep: vx.ExposureReport) -> dict[str, vx.PathReport]:
    return {p.label: p for p in rep.paths}


# ---- register schema --------------------------------------------------------------------------


def test_register_keeps_deadlines_urls_hosts_keys_and_pem_paths(acme) -> None:
    case, _, certs, d = acme
    got = {r[0]: r[1:] for r in rows(case, "SELECT identifier, rotate_by, attrs FROM vendor_access")}
    assert got["tok-old"][0] == datetime(2026, 4, 10, tzinfo=UTC)
    chan = json.loads(got["https://updates.acme.example/fw/"][1])
    assert chan["urls"] == ["https://updates.acme.example/fw/"] and chan["hosts"] == ["cdn.acme.example"]
    assert chan["signing_key"] == str((d / "keys" / "acme-release.pub.pem").resolve())
    assert json.loads(got["certs/acme-mtls.pem"][1]) == {"pem": str((d / "certs" / "acme-mtls.pem").resolve())}
    fp = json.loads(got["gateway-cert"][1])["fingerprint"]
    assert fp == certs["seen"].fingerprint(hashes.SHA256()).hex()  # colons / upper case normalised
    assert rows(case, "SELECT contact FROM vendors") == [("security@acme.example",)]


def test_register_errors_name_line_and_entry_and_the_rest_loads(tmp_path: Path) -> None:
    p = tmp_path / "vendors.yaml"
    p.write_text(
        """vendors:
  - name: Acme
    access:
      - {kind: cert, identifier: gw, fingerprint: "zz:11"}
      - {kind: update_channel, identifier: updates.acme.example, urls: [updates]}
      - {kind: telemetry, identifier: "bad host/name"}
      - just-a-string
      - {kind: api_token, identifier: tok-1, rotate_by: someday}
      - {kind: vpn_account, identifier: acme.bob}
secrets:
  - {secret_id: tok-1, kind: api_token, owner_vendor: Acme, expires: 2026-13-45}
  - {secret_id: cert-x, kind: cert, owner_vendor: Acme, fingerprint: "12"}
"""
    )
    with Case.open(None) as case:
        res = context.ingest(case, p, context.sniff(p.read_bytes(), p))
        assert res.errors == [
            ("line 4: vendors[0].access[0]", "fingerprint: not a SHA-1 / SHA-256 hex fingerprint: 'zz:11'"),
            ("line 5: vendors[0].access[1]", "urls[0]: not a URL (scheme://host/path): 'updates'"),
            ("line 6: vendors[0].access[2]",
             "identifier: not a host name, domain, address or CIDR: 'bad host/name'"),
            ("line 7: vendors[0].access[3]", "expected a mapping, got 'just-a-string'"),
            ("line 8: vendors[0].access[4]", "rotate_by: bad timestamp 'someday'"),
            ("line 11: secrets[0]", "expires: bad timestamp '2026-13-45'"),
            ("line 12: secrets[1]", "fingerprint: not a SHA-1 / SHA-256 hex fingerprint: '12'"),
        ]  # fmt: skip
        assert rows(case, "SELECT identifier FROM vendor_access") == [("acme.bob",)]
        assert rows(case, "SELECT vendor FROM vendors") == [("Acme",)]


def test_malformed_yaml_is_one_error_with_its_line(tmp_path: Path) -> None:
    p = tmp_path / "vendors.yaml"
    p.write_text("vendors:\n  - name: Acme\n    access: [\n      {kind: jump_host, identifier: j\n")
    with Case.open(None) as case:
        res = context.ingest(case, p, "context_vendors")
        assert res.records_bad == 1 and res.errors[0][1].startswith("YAML syntax error")
        assert res.errors[0][0].startswith("line ")


# ---- exposure per path kind -------------------------------------------------------------------


def test_every_path_kind_finds_its_evidence(acme) -> None:
    case, refs, *_ = acme
    rep = vx.vendor_exposure(case, "acme")  # the name matches ignoring case
    assert rep.vendor == "Acme" and rep.contact == "security@acme.example"
    assert (rep.window_start, rep.window_end) == (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 30, tzinfo=UTC))
    p = _paths(rep)
    assert len(rep.paths) == 13  # every register entry is listed, evidence or not

    bob = p["vpn_account acme.bob"]
    assert bob.logins == {"success": 2, "failure": 1}
    assert bob.sessions == 1 and bob.tunnel_addresses == [TUNNEL] and bob.session_seconds == 3600
    src = {s["ip"]: s for s in bob.sources}
    assert src[VENDOR_IP]["registered"] and src[VENDOR_IP]["country"] == "DE"
    assert not src[ATTACKER]["registered"] and src[ATTACKER]["country"] == "SG"
    assert bob.sources[0]["ip"] != VENDOR_IP  # addresses outside the vendor's ranges come first
    # from the tunnel, while the session lasts: RDP to the jump host and a logon there
    assert [(h["host"], h["zone"]) for h in bob.hosts] == [("jump01", "vendor-access")]
    assert bob.bytes_from_vendor == 10_000 + 2000 and bob.bytes_to_vendor == 90_000 + 8000

    svc = p["service_account svc_acme"]
    hosts = {h["host"]: h for h in svc.hosts}
    assert hosts["dc01"]["how"] == ["Kerberos / NTLM at the DC"] and not hosts["dc01"]["outside_conduit"]
    assert hosts["he01"]["how"] == ["AMI audit"]

    tok = p["api_token tok-old"]
    assert tok.counts == {"ami_audit": 2} and {h["host"] for h in tok.hosts} == {"he01"}

    jump = p["jump_host jump01"]
    assert jump.counts["conn"] == 4  # three flows out, the RDP from the tunnel in
    assert JUMP not in {ip for h in jump.hosts for ip in h["ips"]}  # a jump host does not reach itself

    rng = p["ip_range 203.0.113.0/24"]
    assert rng.roles["session"] == 1 and rng.roles["client"] == 2  # the VPN session; telemetry + update flows
    assert {s["ip"] for s in rng.sources} >= {VENDOR_IP, "203.0.113.40"}

    upd = p["update_channel https://updates.acme.example/fw/"]
    assert upd.counts == {"dns": 1, "http": 1, "conn": 1}  # the CDN host by DNS, the URL's host by HTTP
    assert upd.bytes_from_vendor == 25_000_000 and [h["host"] for h in upd.hosts] == ["he01"]
    tele = p["telemetry telemetry.acme.example"]
    assert tele.counts == {"tls": 1, "conn": 1} and tele.bytes_to_vendor == 4000

    assert p["cert certs/acme-mtls.pem"].counts == {"tls": 1}  # by subject, whatever the RDN order
    assert p["cert gateway-cert"].counts == {"x509": 1}  # by the register's fingerprint


def test_paths_without_evidence_are_no_telemetry_gaps(acme) -> None:
    case, *_ = acme
    rep = vx.vendor_exposure(case, "Acme")
    gaps = [p.label for p in rep.gaps]
    assert gaps == ["api_token tok-unused", "cert certs/acme-old.pem", "cert certs/missing.pem",
                    "cert certs/garbage.pem"]  # fmt: skip
    (f,) = [f for f in rep.findings if f.rule_id == "assess.vendor_no_telemetry"]
    assert f.severity == "informational" and f.details["paths"] == gaps
    assert [e["source_ref"] for e in f.evidence] == ["vendors[0].access[3]", "vendors[0].access[9]",
                                                     "vendors[0].access[11]", "vendors[0].access[12]"]  # fmt: skip
    # an unreadable PEM is named with its entry; the other paths are still judged
    assert any("vendors[0].access[11] (cert certs/missing.pem)" in n and "no such file" in n for n in rep.notes)
    assert any("vendors[0].access[12]" in n and "not a PEM / DER X.509 certificate" in n for n in rep.notes)


def test_ot_reach_is_highlighted_and_outside_a_conduit_is_a_finding(acme) -> None:
    case, refs, *_ = acme
    rep = vx.vendor_exposure(case, "Acme")
    jump = _paths(rep)["jump_host jump01"]
    hosts = {h["host"]: h for h in jump.hosts}
    assert hosts["dms01"]["ot"] and hosts["dms01"]["zone"] == "ot-control"
    assert (hosts["dms01"]["outside_conduit"], hosts["dms01"]["denied"]) == (2, 1)  # RDP + logon through, SMB denied
    assert hosts["he01"]["ot"] and hosts["he01"]["allowed"] == 1 and not hosts["he01"]["outside_conduit"]
    assert not hosts["dc01"]["ot"]
    reach = {f.entity: f for f in rep.findings if f.rule_id == "assess.vendor_ot_reach"}
    assert set(reach) == {"Acme jump_host jump01 -> ot-control", "Acme service_account svc_acme -> ot-control"}
    f = reach["Acme jump_host jump01 -> ot-control"]
    assert f.severity == "high" and f.details["through"] == 2 and f.details["denied"] == 1
    assert {e["source_ref"] for e in f.evidence} == {refs["jump_dms"], refs["jump_dms_denied"], refs["dms_logon"]}
    assert "T0822" in f.attack and "T1199" in f.attack
    # the AMI head-end through its conduit from the jump host is OT too, but allowed: no finding
    assert not any("-> ami" in e for e in reach)


def test_vendor_credential_from_outside_its_ranges_is_a_finding(acme) -> None:
    case, refs, *_ = acme
    rep = vx.vendor_exposure(case, "Acme")
    got = {f.entity: f for f in rep.findings if f.rule_id == "assess.vendor_unregistered_source"}
    assert set(got) == {f"Acme vpn_account acme.bob from {ATTACKER}", f"Acme api_token tok-old from {ATTACKER}",
                        f"Acme service_account svc_acme from {ATTACKER}"}  # fmt: skip
    bob = got[f"Acme vpn_account acme.bob from {ATTACKER}"]
    assert [e["source_ref"] for e in bob.evidence] == [refs["vpn_attacker"]]  # the failure elsewhere is not a use
    assert bob.details["country"] == "SG" and bob.severity == "high"
    assert "T1550.001" in got[f"Acme api_token tok-old from {ATTACKER}"].attack


def test_the_window_limits_the_evidence(acme) -> None:
    case, *_ = acme
    rep = vx.vendor_exposure(case, "Acme", vx.parse_window("2026-04-15..2026-04-15"))
    p = _paths(rep)
    assert p["vpn_account acme.bob"].logins == {"success": 1, "failure": 1}
    assert p["jump_host jump01"].no_telemetry
    assert vx.parse_window("..2026-04-15") == (None, datetime(2026, 4, 16, tzinfo=UTC))
    for bad in ("2026-04-15", "2026-04-20..2026-04-01", "yesterday..today"):
        with pytest.raises(vx.VendorError):
            vx.parse_window(bad)


def test_findings_touching_a_path_are_attached(acme) -> None:
    case, refs, *_ = acme
    case.con.execute(
        "INSERT INTO findings VALUES ('f1', 'auth', 'auth.new_country', 'New country', 'high', ['T1078'], "
        "'acme.bob new country SG', NULL, NULL, 1, ?, '{}'), ('f2', 'sigma', 'x', 'On the jump host', 'medium', [], "
        "'jump01.corp.example', NULL, NULL, 1, '[]', '{}'), ('f3', 'auth', 'y', 'Other', 'low', [], 'acme.bob2', "
        "NULL, NULL, 1, '[]', '{}')",
        [json.dumps([{"source_file": "vpn.log", "source_ref": refs["vpn_attacker"]}])],
    )
    p = _paths(vx.vendor_exposure(case, "Acme"))
    bob = {f["finding_id"] for f in p["vpn_account acme.bob"].findings}
    assert "f1" in bob and "f3" not in bob  # by evidence record; "acme.bob2" is another account
    assert any(f["rule_id"] == "assess.vendor_unregistered_source" for f in p["vpn_account acme.bob"].findings)
    assert "f2" in {f["finding_id"] for f in p["jump_host jump01"].findings}  # by entity: its FQDN


def test_graph_chains_paths_hosts_zones_and_marks_ot(acme, tmp_path: Path) -> None:
    case, *_ = acme
    rep = vx.vendor_exposure(case, "Acme")
    g = rep.graph
    assert g.nodes["zone:ot-control"]["ot"] and not g.nodes["zone:vendor-access"]["ot"]
    assert g.has_edge("path:jump_host:jump01", "host:dms01") and g.has_edge("host:dms01", "zone:ot-control")
    assert g.edges["path:jump_host:jump01", "host:dms01"]["outside_conduit"] == 2
    assert g.has_edge("host:jump01", "path:jump_host:jump01")  # VPN account -> jump host -> OT, as a chain
    assert g.nodes[f"source:{ATTACKER}"]["registered"] is False
    data = rep.graph_json()
    assert {"nodes", "links"} <= set(data) and json.dumps(data)
    text = "\n".join(vx.graph_lines(g))
    assert "ot-control [OT]: dms01 ‼ outside conduit" in text and "api_token tok-unused  (no telemetry)" in text
    assert f"← {ATTACKER} (SG, NOT a registered vendor range)" in text


def test_unknown_vendor_names_the_ones_there(acme) -> None:
    case, *_ = acme
    with pytest.raises(vx.VendorError, match=r"unknown vendor 'Nope' \(vendors in the case: Acme\)"):
        vx.vendor_exposure(case, "Nope")


def test_hunt_hook_adds_assess_runs_and_findings(acme) -> None:
    case, *_ = acme
    res = AnalyticsResult()
    vx.assess_vendors(case, res)
    assert [(r.name, r.error) for r in res.runs] == [("assess.vendor_exposure", None), ("assess.secrets", None)]
    rules = {f.rule_id for f in res.findings}
    assert {"assess.vendor_ot_reach", "assess.secret_used_after_expiry", "assess.secret_not_rotated"} <= rules
    assert any("missing.pem: no such file" in n for n in res.notes)
    empty = AnalyticsResult()
    with Case.open(None) as c:
        vx.assess_vendors(c, empty)
    assert all(r.skipped_reason for r in empty.runs) and not empty.findings


# ---- CLI --------------------------------------------------------------------------------------


@pytest.fixture
def case_file(tmp_path: Path) -> Path:
    """The same case as a file, as `gridhunt hunt --case` leaves it."""
    path = tmp_path / "case.duckdb"
    case, *_ = build(tmp_path / "ctx", path)
    case.close()
    return path


def test_cli_exposure_text_json_and_graph(case_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["vendor", "exposure", str(case_file), "--vendor", "Acme", "--graph",
                              str(tmp_path / "g.json")])  # fmt: skip
    assert res.exit_code == 0, res.output
    for text in ("vpn_account acme.bob", "NO TELEMETRY", "reaches OT", "NOT a registered vendor range",
                 "dms01 → ot-control [OT]", "outside any conduit", "assess.vendor_ot_reach"):  # fmt: skip
        assert text in res.output, text
    assert json.loads((tmp_path / "g.json").read_text())["links"]
    res = runner.invoke(app, ["vendor", "exposure", str(case_file), "--vendor", "acme", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["summary"]["no_telemetry"][0] == "api_token tok-unused" and len(data["paths"]) == 13
    for args, msg in (
        (["--vendor", "Nope"], "unknown vendor 'Nope'"),
        (["--vendor", "Acme", "--window", "2026-05-01..2026-04-01"], "is not before end"),
    ):
        res = runner.invoke(app, ["vendor", "exposure", str(case_file), *args])
        assert res.exit_code == 2 and msg in " ".join(res.output.split()), res.output  # stderr wraps at 80
    res = runner.invoke(app, ["vendor", "exposure", str(tmp_path / "none.duckdb"), "--vendor", "Acme"])
    assert res.exit_code == 2 and "no such case file" in " ".join(res.output.split())


def test_hosts_use_the_inventory_names(acme) -> None:
    case, *_ = acme
    rep = vx.vendor_exposure(case, "Acme")
    jump = _paths(rep)["jump_host jump01"]
    assert {h["host"]: h["ips"] for h in jump.hosts}["dms01"] == [DMS]
    assert {h["host"]: h["ips"] for h in _paths(rep)["api_token tok-old"].hosts}["he01"] == [HE]


# ---- the demo ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny demo, hunted with the analytics only (no Sigma rules: keeps it to seconds)."""
    tmp = tmp_path_factory.mktemp("demo")
    (tmp / "no-rules").mkdir()
    runner = CliRunner()
    res = runner.invoke(app, ["demo", "--out", str(tmp / "d"), "--size", "tiny", "--seed", "3", "--generate-only"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["hunt", str(tmp / "d" / "evidence"), "--case", str(tmp / "case.duckdb"), "--out",
                              str(tmp / "out"), "--rules", str(tmp / "no-rules")])  # fmt: skip
    assert res.exit_code == 0, res.output
    return tmp


def _label_refs(demo: Path, prefix: str) -> set[tuple[str, str]]:
    (lab,) = [x for x in json.loads((demo / "d" / "labels.json").read_text()) if x["id"].startswith(prefix)]
    return {(e["source_file"], e["source_ref"]) for e in lab["evidence"]}


def _refs(evidence: list[dict]) -> set[tuple[str, str]]:
    return {(e["source_file"].split("/evidence/", 1)[-1], e["source_ref"]) for e in evidence}


def test_demo_every_vendor_path_listed_and_the_injected_misuse_found(demo: Path) -> None:
    with Case.open(demo / "case.duckdb", read_only=True) as case:
        (vendor,) = vx.vendor_names(case)
        rep = vx.vendor_exposure(case, vendor)
        n_register = rows(case, "SELECT count(*) FROM vendor_access")[0][0]
    assert len(rep.paths) == n_register == 16
    # every path shows evidence but the mTLS client certificate, which no log of the demo carries
    assert [p.label for p in rep.gaps] == [p.label for p in rep.paths if p.kind == "cert"]
    found = {(f.rule_id, f.entity): f for f in rep.findings}
    s02 = _label_refs(demo, "S02")  # the vendor VPN account from a cloud address abroad
    (f,) = [f for (r, e), f in found.items() if r == "assess.vendor_unregistered_source" and "vpn_account" in e]
    assert _refs(f.evidence) & s02
    s14 = _label_refs(demo, "S14")  # the jump host into the OT control zone
    (f,) = [f for (r, e), f in found.items() if r == "assess.vendor_ot_reach" and "jump_host" in e]
    assert f.entity.endswith("-> ot-control") and _refs(f.evidence) & s14
    # S18: the stale API token, in the hunt's own findings (secrets audit)
    hunted = [json.loads(x) for x in (demo / "out" / "findings.jsonl").read_text().splitlines()]
    (f,) = [f for f in hunted if f["rule_id"] == "assess.secret_used_after_expiry"]
    assert "tok-headend-01" in f["entity"] and f["severity"] == "critical"
    assert _refs(f["evidence"]) == _label_refs(demo, "S18")
    summary = json.loads((demo / "out" / "summary.json").read_text())
    runs = {a["name"]: a for a in summary["analytics"]["analytics"]}
    assert runs["assess.vendor_exposure"]["findings"] >= 5 and runs["assess.secrets"]["findings"] >= 10


def test_overlapping_sessions_on_one_tunnel_address_count_each_flow_once(acme) -> None:
    """Two VPN sessions of one account that got the same tunnel address (the usual case) overlap in
    time: a flow or logon from the tunnel inside both windows is one record, counted once."""
    from tests.vendor_case import TUNNEL, VENDOR_IP, T
    from tests.vendor_case import auth as add_auth
    from tests.vendor_case import conn as add_conn

    case, *_ = acme
    before = _paths(vx.vendor_exposure(case, "Acme"))["vpn_account acme.bob"]
    later = T + timedelta(minutes=30)
    add_auth(case, later, "acme.bob", VENDOR_IP, "vpn01", source="vpn")
    add_conn(case, later + timedelta(seconds=6), VENDOR_IP, TUNNEL, None, source="vpn", duration=3600, out=0, back=0)
    add_conn(case, later + timedelta(minutes=5), TUNNEL, "10.30.0.10", 22, out=111, back=222)
    add_auth(case, later + timedelta(minutes=5), "svc_acme", TUNNEL, "jump01.corp.example")
    bob = _paths(vx.vendor_exposure(case, "Acme"))["vpn_account acme.bob"]
    assert bob.sessions == before.sessions + 1
    assert bob.counts["conn"] == before.counts["conn"] + 2  # the new session and the new flow, once each
    assert bob.counts["auth"] == before.counts["auth"] + 2  # the new VPN logon and the tunnel logon, once each
    assert bob.records == before.records + 4
