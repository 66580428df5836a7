"""Vendor risk ticket: the questions, each pre-filled from the evidence; Markdown + JSON; the CLI."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridhunt.assess.ticket import build_ticket, render_markdown, write_ticket
from gridhunt.cli import app
from tests.vendor_case import ATTACKER, SPRAYER, build

IDS = ["scope", "code_build_signing", "update_channels", "remote_access", "customer_data", "credentials", "iocs",
       "timeline", "containment"]  # fmt: skip


@pytest.fixture
def acme(tmp_path: Path):
    case, refs, certs = build(tmp_path)
    yield case
    case.close()


def _q(t: dict) -> dict[str, dict]:
    return {q["id"]: q for q in t["questions"]}


def _text(q: dict) -> str:
    return "\n".join(q["our_evidence"])


def test_every_question_is_there_and_pre_filled(acme) -> None:
    t = build_ticket(acme, "acme")
    assert [q["id"] for q in t["questions"]] == IDS
    assert t["vendor"] == "Acme" and t["contact"] == "security@acme.example"
    assert t["window"] == {"start": "2026-04-01T00:00:00Z", "end": "2026-04-30T00:00:00Z"}
    q = _q(t)
    assert all(x["question"] and x["our_evidence"] for x in t["questions"])
    scope = _text(q["scope"])
    assert "We hold 13 registered access paths for Acme" in scope and "4 without telemetry" in scope
    assert "jump_host jump01 → ami, ot-control" in scope
    assert "Update channel https://updates.acme.example/fw/: signing key on file (acme-release.pub.pem)" in _text(
        q["code_build_signing"]
    )
    upd = _text(q["update_channels"])
    assert "telemetry telemetry.acme.example: 2 records" in upd and "clients: he01 (ami, OT)" in upd
    remote = _text(q["remote_access"])
    assert "vpn_account acme.bob: 6 records" in remote and "1 VPN sessions (1.0 h)" in remote
    assert f"{ATTACKER} (SG, 1 ok / 0 failed)" in remote and f"{SPRAYER} (SG, 0 ok / 1 failed)" in remote
    assert "jump_host jump01" in remote and "outside any permitted conduit: dms01" in remote
    assert "AMI bulk" not in _text(q["customer_data"])  # no read / export jobs in this case
    assert "update_channel https://updates.acme.example/fw/: 300 B toward your side, 25.0 MB from it" in _text(
        q["customer_data"]
    )
    creds = _text(q["credentials"])
    assert (
        "api_token tok-old: last rotated 2025-01-01" in creds
        and f"used 1x after 2026-04-10 from {ATTACKER} (SG)" in creds
    )
    assert "certificate O=Acme,CN=client.acme.example" in creds and "SHA-256 " in creds
    assert "api_token tok-unused: last rotated 2026-04-20; rotated after the incident began" in creds
    iocs = q["iocs"]["data"]
    assert [i["value"] for i in iocs["ips"]] == [SPRAYER, ATTACKER]
    # names carrying the vendor's name that none of its registered channels covers: theirs, or look-alikes?
    assert [x["value"] for x in iocs["lookalike_names"]] == ["api.acme-status.example", "gw.acme.example"]
    tl = _text(q["timeline"])
    assert "Vendor path reached OT zone ot-control outside any conduit" in tl
    assert tl.index("2026-04-14") < tl.index("2026-04-15")  # in time order
    cont = q["containment"]["data"]
    assert "api_token tok-old" in cont["rotate"] and "vpn_account acme.bob" in cont["rotate"]
    assert "service_account svc_acme" not in cont["rotate"]  # rotated after the incident began
    assert t["summary"]["no_telemetry"] == ["api_token tok-unused", "cert certs/acme-old.pem", "cert certs/missing.pem",
                                            "cert certs/garbage.pem"]  # fmt: skip
    assert any("missing.pem: no such file" in n for n in t["notes"])


def test_markdown_and_json_are_written(acme, tmp_path: Path) -> None:
    t = build_ticket(acme, "Acme")
    md, js = write_ticket(t, tmp_path / "out")
    text = md.read_text()
    assert text.startswith("# Security questionnaire for Acme") and "To: security@acme.example" in text
    assert text.count("*What our evidence shows:*") == len(IDS)
    assert "## 6. Our accounts, tokens and certificates you hold" in text
    assert json.loads(js.read_text())["questions"][0]["id"] == "scope"
    assert render_markdown(t) == text  # deterministic


def test_without_update_verification_the_ticket_still_goes_out(acme, monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def no_updates(name: str, *a, **k):  # as in a build without gridhunt.assess.updates
        if name == "gridhunt.assess.updates":
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_updates)
    t = build_ticket(acme, "Acme")
    assert "update verification is not available in this build" in t["notes"]
    assert _q(t)["code_build_signing"]["data"]["updates_not_verified"] == []


def test_cli_ticket(tmp_path: Path) -> None:
    path = tmp_path / "case.duckdb"
    case, *_ = build(tmp_path / "ctx", path)
    case.close()
    runner = CliRunner()
    res = runner.invoke(app, ["vendor", "ticket", str(path), "--vendor", "Acme", "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    assert "9 questions" in res.output and (tmp_path / "t" / "ticket.md").is_file()
    assert json.loads((tmp_path / "t" / "ticket.json").read_text())["vendor"] == "Acme"
    res = runner.invoke(app, ["vendor", "ticket", str(path), "--vendor", "Nope", "--out", str(tmp_path / "t2")])
    assert res.exit_code == 2 and "unknown vendor" in res.output and not (tmp_path / "t2").exists()
