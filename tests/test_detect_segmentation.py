"""Segmentation: the zones / conduits policy (errors name the line), every flow classified, each
seg.* finding fires on its attack shape and stays quiet on its benign twin, the zone matrix, the CLI.

The policy, inventory and vendor register are the fixture files in tests/data/segmentation/evidence,
read by the real context reader; flows are written straight into `conn` (as the Zeek and firewall
readers would), except in the CLI test, which ingests the fixture conn.log and firewall.csv."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridhunt.case import Case
from gridhunt.cli import app
from gridhunt.detect import run_analytics
from gridhunt.detect import segmentation as seg
from gridhunt.detect.settings import load_settings
from gridhunt.ingest import context, ingest_paths
from tests.conftest import TEST_DATA, rows, run_analytic, utc

DATA = TEST_DATA / "segmentation"
EVIDENCE = DATA / "evidence"
T0 = utc(2026, 4, 14, 2, 0, 0)
WS, FS, PROXY, JUMP, DMS, HMI, SIS, SIS_ENG, HE = (
    "10.10.1.15", "10.10.0.20", "10.20.0.20", "10.30.0.10", "10.40.0.10", "10.40.1.11", "10.40.9.5", "10.40.9.6",
    "10.50.0.10",
)  # fmt: skip
VPN_CLIENT, NL, VENDOR_NET = "10.30.8.212", "198.51.100.23", "203.0.113.5"
_ref = iter(range(1, 10**9))
_port = iter(range(40000, 65000))


@pytest.fixture
def c(tmp_path: Path) -> Case:
    case = Case.open(tmp_path / "c.duckdb")
    for name in ("assets.yaml", "vendors.yaml", "zones.yaml"):
        res = context.ingest(case, EVIDENCE / name, context.sniff((EVIDENCE / name).read_bytes(), EVIDENCE / name))
        assert res.records_bad == 0, res.errors
    yield case
    case.close()


def flow(
    c: Case,
    ts: datetime,
    src: str,
    dst: str,
    port: int | None,
    proto: str = "tcp",
    action: str | None = None,
    source: str = "zeek",
    sport: int | None = None,
    out: int = 1000,
    back: int = 5000,
) -> str:
    ref = f"line {next(_ref)}"
    c.con.execute(
        "INSERT INTO conn (ts, src_ip, src_port, dst_ip, dst_port, proto, bytes_out, bytes_in, action, source, "
        "source_file, source_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ts, src, sport or next(_port), dst, port, proto, out, back, action, source, f"{source}.log", ref],
    )
    return ref


def vpn_session(c: Case, ts: datetime, user: str, client: str, tunnel: str, minutes: float) -> None:
    """A VPN login (auth) and its session (the conn row the VPN reader writes: client -> tunnel address)."""
    c.con.execute(
        'INSERT INTO auth (ts, "user", src_ip, dst_host, outcome, source, source_file, source_ref) '
        "VALUES (?, ?, ?, 'vpn01', 'success', 'vpn', 'vpn.csv', ?)",
        [ts, user, client, f"line {next(_ref)}"],
    )
    c.con.execute(
        "INSERT INTO conn (ts, src_ip, dst_ip, duration, service, source, uid, source_file, source_ref) "
        "VALUES (?, ?, ?, ?, 'vpn', 'vpn', 'S0001', 'vpn.csv', ?)",
        [ts + timedelta(seconds=1), client, tunnel, minutes * 60, f"line {next(_ref)}"],
    )


def logon(c: Case, ts: datetime, user: str, src: str, host: str = "pc-dms01") -> None:
    c.con.execute(
        'INSERT INTO auth (ts, "user", src_ip, dst_host, outcome, source, event_id, logon_type, source_file, '
        "source_ref) VALUES (?, ?, ?, ?, 'success', 'windows', 4624, '10', 'security.jsonl', ?)",
        [ts, user, src, host, f"line {next(_ref)}"],
    )


def run(c: Case, name: str, settings: dict | None = None):
    return run_analytic(c, name, settings).findings


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def statuses(c: Case) -> dict[tuple[str, str, int | None], tuple[str, str | None]]:
    seg.classify(c)
    got = rows(c, "SELECT src_ip, dst_ip, dst_port, status, rule FROM gh_seg_flows")
    return {(s, d, p): (st, r) for s, d, p, st, r in got}


# ---- the policy -------------------------------------------------------------------------------


def test_policy_keeps_kinds_assets_roles_and_internet_conduits(c: Case) -> None:
    assert rows(c, "SELECT name, kind, level, cidrs, assets, roles FROM zones ORDER BY source_ref")[3:] == [
        ("ot-control", "ot", 3, ["10.40.0.0/16", "fd00:40::/32"], [], []),
        ("ami", None, 3, ["10.50.0.0/16"], [], []),
        ("safety", "ot", 4, [], ["pc-sis-eng"], ["safety_controller"]),
    ]
    assert [(z.name, z.ot) for z in seg.policy_zones(c)] == [
        ("it", False),
        ("dmz", False),
        ("vendor-access", False),
        ("ot-control", True),
        ("ami", True),  # no kind, security level 3
        ("safety", True),
    ]
    assert ("ami", "internet", "tcp", "443", None) in rows(
        c, "SELECT from_zone, to_zone, proto, ports, via_host FROM conduits"
    )


@pytest.mark.parametrize(
    ("name", "messages"),
    [
        ("unknown_zone.yaml", ["unknown_zone.yaml: line 14: conduits[1]: unknown zone 'ot-contrl'"]),
        (
            "overlap.yaml",
            [
                "overlap.yaml: line 8: zones[3]: cidrs[1]: 10.40.0.0/16 overlaps zone 'ot-control' (10.40.0.0/17)",
                "overlap.yaml: line 11: conduits[1]: zone 'ot-field' was rejected (see line 5)",
            ],
        ),
        ("ports.yaml", ["ports.yaml: line 14: conduits[4]: ports: bad port range '500-80' (start above end)"]),
    ],
)
def test_policy_errors_name_the_line(c: Case, name: str, messages: list[str]) -> None:
    with pytest.raises(seg.PolicyError) as exc:
        seg.load_policy(c, DATA / "bad" / name)
    assert exc.value.messages == messages
    # nothing of the bad file stays: the case keeps its policy
    assert rows(c, "SELECT count(*) FROM zones")[0][0] == 6
    assert rows(c, "SELECT count(*) FROM conduits")[0][0] == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("zones:\n  - {name: internet, cidrs: [0.0.0.0/0]}\n", "line 2: zones[0]: name: 'internet' is the implicit"),
        ("zones:\n  - name: corp\n    level: 5\n    cidrs: [10.0.0.0/8]\n", "line 3: zones[0]: level: 5 is not an IEC"),
        ("zones:\n  - {name: corp, kind: office, cidrs: [10.0.0.0/8]}\n", "line 2: zones[0]: kind: unknown zone kind"),
        ("zones:\n  - {name: corp, level: 1}\n", "line 2: zones[0]: no cidrs, assets or roles"),
        (
            "zones:\n  - {name: a, assets: [hmi1]}\n  - name: b\n    assets: [x, HMI1]\n",
            "line 4: zones[1]: assets[1]: 'HMI1' is already in zone 'a'",
        ),
        (
            "zones:\n  - {name: a, cidrs: [10.0.0.0/8]}\nconduits:\n  - {from: a, to: internet, proto: tpc}\n",
            "line 4: conduits[0]: proto: unknown protocol 'tpc'",
        ),
        (
            "zones:\n  - {name: a, cidrs: [10.0.0.0/8]}\n"
            "conduits:\n  - from: a\n    to: internet\n    ports: [22, 70000]\n",
            "line 6: conduits[0]: ports: not a port or range: '70000'",
        ),
    ],
)
def test_more_policy_errors(c: Case, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "zones.yaml"
    path.write_text(text)
    with pytest.raises(seg.PolicyError) as exc:
        seg.load_policy(c, path)
    assert exc.value.messages[0].startswith(f"zones.yaml: {message}"), exc.value.messages


def test_load_policy_replaces_zones_and_conduits(c: Case, tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "assets:\n  - {asset_id: X-1, ips: [10.1.1.1]}\n"  # other sections of the file are left alone
        "zones:\n  - {name: corp, kind: it, cidrs: [10.0.0.0/8]}\n  - {name: plant, kind: ot, cidrs: [172.16.0.0/12]}\n"
        "conduits:\n  - {from: corp, to: plant, proto: tcp, ports: any}\n"
    )
    assert seg.load_policy(c, path) == 3
    assert rows(c, "SELECT name FROM zones ORDER BY name") == [("corp",), ("plant",)]
    assert rows(c, "SELECT from_zone, to_zone, ports FROM conduits") == [("corp", "plant", "any")]
    assert rows(c, "SELECT count(*) FROM assets WHERE asset_id = 'X-1'")[0][0] == 0


# ---- classification ---------------------------------------------------------------------------


def test_addresses_map_to_zones_by_asset_cidr_and_inventory(c: Case) -> None:
    for dst in (SIS, SIS_ENG, "10.40.9.7", "10.99.0.7", "10.77.0.1", NL, "fd00:40::10", "::ffff:10.40.0.10",
                "239.255.255.250", "not-an-ip"):  # fmt: skip
        flow(c, T0, HMI, dst, 502)
    seg.classify(c)
    got = dict(rows(c, "SELECT dst_ip, dst_zone || ' ' || dst_how FROM gh_seg_flows"))
    got = {k: got.get(k) for k in got}
    assert got[SIS] == "safety role"  # its role puts it in `safety`, though ot-control's CIDR holds it
    assert got[SIS_ENG] == "safety asset"
    assert got["10.40.9.7"] == "ot-control cidr"
    assert got["10.99.0.7"] == "ami inventory"  # in no CIDR; the inventory says ami
    assert got["10.77.0.1"] is None  # internal, in no zone
    assert got[NL] == "internet public"
    assert got["fd00:40::10"] == "ot-control cidr"
    assert got["::ffff:10.40.0.10"] == "ot-control cidr"
    assert got["239.255.255.250"] == "ot-control local"  # multicast stays in the sender's zone
    assert got["not-an-ip"] is None
    by = statuses(c)
    assert by[HMI, SIS, 502] == ("allowed", None)
    assert by[HMI, "10.77.0.1", 502] == ("unknown-zone", None)
    assert by[HMI, "239.255.255.250", 502] == ("allowed", None)


def test_firewall_and_zeek_records_of_one_connection_are_one_flow(c: Case) -> None:
    fw = flow(c, T0, WS, HE, 22, action="deny", source="firewall", sport=50101, out=0, back=0)
    zk = flow(c, T0 + timedelta(seconds=1), WS, HE, 22, source="zeek", sport=50101, out=0, back=0)
    flow(c, T0 + minutes(10), WS, HE, 22, source="zeek", sport=50101)  # port reused later: another flow
    seg.classify(c)
    got = rows(c, "SELECT conn_rows, action, sources FROM gh_seg_flows ORDER BY ts")
    assert got == [(2, "deny", ["firewall", "zeek"]), (1, None, ["zeek"])]
    (f,) = run(c, "seg.it_to_ot")
    assert f.count == 2 and f.details["flows_denied"] == 1 and f.details["conn_records"] == 3
    assert [e["source_ref"] for e in f.evidence][:2] == [fw, zk]


# ---- it_to_ot ---------------------------------------------------------------------------------


def test_it_host_to_the_head_end_outside_the_443_conduit_fires(c: Case) -> None:
    ok = flow(c, T0, WS, HE, 443)  # benign twin: the head-end web UI over its conduit
    bad = [flow(c, T0 + minutes(i), WS, HE, 22, out=300, back=700) for i in (1, 2)]
    (f,) = run(c, "seg.it_to_ot")
    assert (f.rule_id, f.severity, f.count) == ("seg.it_to_ot", "high", 2)
    assert f.entity == f"{WS} (it) -> ami tcp/22"
    assert f.title == "Flow into an OT zone from another internal zone outside any conduit: it -> ami tcp/22"
    assert [e["source_ref"] for e in f.evidence] == bad and ok not in [e["source_ref"] for e in f.evidence]
    d = f.details
    assert (d["src_host"], d["flows"], d["bytes_out"], d["bytes_in"], d["flows_denied"]) == ("pc-ws01", 2, 600, 1400, 0)
    assert d["conduits_checked"] == ["it -> ami tcp/443 (zones.yaml conduits[1])"]
    assert f.evidence[0]["fields"]["dst_zone"] == "ami" and f.evidence[0]["fields"]["status"] == "violation"
    assert f.attack == ["T0886", "T1021"]


def test_it_to_the_head_end_over_443_alone_is_quiet(c: Case) -> None:
    for i in range(5):
        flow(c, T0 + minutes(i), WS, HE, 443)
    assert run(c, "seg.it_to_ot") == []
    assert run(c, "seg.conduit_violation") == []


def test_a_denied_attempt_is_low_and_one_that_got_through_is_high(c: Case) -> None:
    flow(c, T0, FS, DMS, 445, action="deny", source="firewall")
    (f,) = run(c, "seg.it_to_ot")
    assert (f.severity, f.details["flows_denied"]) == ("low", 1)
    flow(c, T0 + minutes(5), FS, DMS, 445, action="allow", source="firewall")
    (f,) = run(c, "seg.it_to_ot")
    assert (f.severity, f.count, f.details["flows_denied"], f.details["flows_firewall_allowed"]) == ("high", 2, 1, 1)


# ---- internet_to_ot ---------------------------------------------------------------------------


def test_internet_into_ot_fires_and_internet_into_the_dmz_is_quiet(c: Case) -> None:
    flow(c, T0, NL, PROXY, 443)  # benign twin: the policy says nothing about the DMZ's internet traffic
    flow(c, T0 + minutes(1), NL, DMS, 502, out=64, back=12)
    (f,) = run(c, "seg.internet_to_ot")
    assert (f.entity, f.severity) == (f"{NL} (internet) -> ot-control tcp/502", "high")
    assert f.attack == ["T0883", "T0822", "T1133"]
    assert statuses(c)[NL, PROXY, 443] == ("unpoliced", None)
    assert run(c, "seg.conduit_violation") == []


# ---- vendor_bypasses_jump_host ----------------------------------------------------------------


def test_vendor_rdp_through_the_jump_host_is_allowed(c: Case) -> None:
    vpn_session(c, T0, "mc.gcook", "198.51.100.77", VPN_CLIENT, minutes=60)
    flow(c, T0 + minutes(2), VPN_CLIENT, JUMP, 3389)  # inside vendor-access
    logon(c, T0 + minutes(3), "v-mc-gcook", JUMP)
    flow(c, T0 + minutes(3), JUMP, DMS, 3389)  # the conduit's via host
    for name in ("seg.vendor_bypasses_jump_host", "seg.it_to_ot"):
        assert run(c, name) == [], name
    by = statuses(c)
    assert by[JUMP, DMS, 3389] == ("allowed", None)
    assert rows(c, f"SELECT reason FROM gh_seg_flows WHERE src_ip = '{JUMP}'")[0][0].startswith(
        "vendor-access -> ot-control tcp/3389 via pc-jump01"
    )


def test_vendor_vpn_address_straight_into_ot_fires_while_the_session_lasts(c: Case) -> None:
    vpn_session(c, T0, "mc.gcook", "198.51.100.77", VPN_CLIENT, minutes=30)
    flow(c, T0 + minutes(5), VPN_CLIENT, DMS, 3389)
    (f,) = run(c, "seg.vendor_bypasses_jump_host")
    assert (f.severity, f.entity) == ("high", f"{VPN_CLIENT} (vendor-access) -> ot-control tcp/3389")
    assert f.details["vendor_path"] == "MeterCo account mc.gcook VPN tunnel address (session S0001)"
    assert f.details["conduits_checked"] == [
        "vendor-access -> ot-control tcp/3389 via pc-jump01 (zones.yaml conduits[3])"
    ]
    # the same address two hours later belongs to nobody we know of: a plain zone violation
    flow(c, T0 + minutes(120), VPN_CLIENT, DMS, 3389)
    (g,) = run(c, "seg.it_to_ot")
    assert g.count == 1 and g.ts_first == T0 + minutes(120)


def test_vendor_ip_range_into_ot_is_a_vendor_bypass_not_just_internet(c: Case) -> None:
    flow(c, T0, VENDOR_NET, DMS, 3389)
    (f,) = run(c, "seg.vendor_bypasses_jump_host")
    assert f.details["vendor_path"] == "MeterCo ip_range 203.0.113.0/24"
    assert run(c, "seg.internet_to_ot") == []


def test_vendor_account_workstation_to_the_head_end_over_a_conduit_is_medium(c: Case) -> None:
    logon(c, T0, "v-mc-gcook", WS, host="pc-fs01")
    flow(c, T0 + minutes(10), WS, HE, 443)  # it -> ami 443 is allowed, but not for a vendor path
    (f,) = run(c, "seg.vendor_bypasses_jump_host")
    assert f.severity == "medium" and f.details["allowed_by"] == ["it -> ami tcp/443 (zones.yaml conduits[1])"]
    assert f.details["vendor_path"] == "MeterCo account v-mc-gcook logged on from it (windows)"
    assert run(c, "seg.vendor_bypasses_jump_host", {"report_conduit_allowed": False}) == []
    # past the hold time the workstation is an IT host again
    flow(c, T0 + timedelta(hours=13), WS, HE, 443)
    (f,) = run(c, "seg.vendor_bypasses_jump_host")
    assert f.count == 1


def test_kind_vendor_zone_makes_every_address_in_it_a_vendor_path(c: Case, tmp_path: Path) -> None:
    text = (
        (EVIDENCE / "zones.yaml")
        .read_text()
        .replace("  - name: vendor-access\n", "  - name: vendor-access\n    kind: vendor\n")
    )
    (tmp_path / "zones.yaml").write_text(text)
    seg.load_policy(c, tmp_path / "zones.yaml")
    flow(c, T0, "10.30.5.5", DMS, 3389)
    flow(c, T0, JUMP, DMS, 3389)
    (f,) = run(c, "seg.vendor_bypasses_jump_host")
    assert f.details["vendor_path"] == "in vendor zone vendor-access" and f.details["src_ip"] == "10.30.5.5"


# ---- ot_to_internet ---------------------------------------------------------------------------


def test_ot_host_to_the_internet_fires_and_to_the_dmz_proxy_is_quiet(c: Case) -> None:
    flow(c, T0, HMI, PROXY, 3128)  # benign twin: the allowed DMZ proxy
    flow(c, T0 + minutes(1), HE, "203.0.113.3", 443)  # ami -> internet 443 has a conduit
    flow(c, T0 + minutes(2), HMI, "198.51.100.88", 443, out=2000, back=6000)
    (f,) = run(c, "seg.ot_to_internet")
    assert (f.entity, f.severity, f.details["bytes_out"]) == (f"{HMI} (ot-control) -> internet tcp/443", "high", 2000)
    assert f.details["conduits_checked"] == []
    by = statuses(c)
    assert by[HMI, PROXY, 3128][0] == by[HE, "203.0.113.3", 443][0] == "allowed"


def test_ot_host_to_a_registered_vendor_range_is_low(c: Case) -> None:
    flow(c, T0, DMS, "203.0.113.3", 443)
    (f,) = run(c, "seg.ot_to_internet")
    assert f.severity == "low" and f.details["dst_vendor_ranges"] == ["MeterCo ip_range 203.0.113.0/24"]


# ---- conduit_violation ------------------------------------------------------------------------


def test_other_zone_pairs_outside_a_conduit_fire_as_conduit_violations(c: Case) -> None:
    flow(c, T0, WS, PROXY, 25)  # benign twin: it -> dmz 25 is a conduit
    flow(c, T0, HMI, SIS, 502)  # ot-control -> safety 502 is a conduit
    flow(c, T0, HMI, SIS, 20005)  # ... and so is its port range
    flow(c, T0 + minutes(1), DMS, FS, 445)  # OT -> IT
    flow(c, T0 + minutes(2), HMI, SIS, 102)  # ot-control -> safety, a port the conduit lacks
    flow(c, T0 + minutes(3), WS, PROXY, 8080, action="deny", source="firewall")
    found = {f.entity: f.severity for f in run(c, "seg.conduit_violation")}
    assert found == {
        f"{DMS} (ot-control) -> it tcp/445": "medium",
        f"{HMI} (ot-control) -> safety tcp/102": "medium",
        f"{WS} (it) -> dmz tcp/8080": "informational",
    }


# ---- matrix, hunt and CLI ---------------------------------------------------------------------


def test_zone_matrix_counts_flows_bytes_and_statuses(c: Case) -> None:
    flow(c, T0, WS, HE, 443, out=100, back=900)
    flow(c, T0, WS, HE, 443, out=100, back=900)
    flow(c, T0, WS, HE, 22, action="deny", source="firewall", out=0, back=0)
    flow(c, T0, HMI, NL, 443, out=10, back=20)
    flow(c, T0, WS, NL, 443, out=1, back=2)
    flow(c, T0, "10.77.0.1", DMS, 502, out=5, back=5)
    m = seg.zone_matrix(c)
    assert m.zones == ["it", "dmz", "vendor-access", "ot-control", "ami", "safety", "internet", "(unknown)"]
    cell = m.cell("it", "ami")
    assert (cell.flows, cell.bytes, cell.allowed, cell.violation, cell.denied, cell.status) == (
        3, 2000, 2, 1, 1, "violation"
    )  # fmt: skip
    assert seg.cell_text(cell) == "3 / 2.0 KB\n1 outside conduits\n1 denied"
    assert (m.cell("ot-control", "internet").status, m.cell("ot-control", "internet").bytes) == ("violation", 30)
    assert m.cell("it", "internet").status == "unpoliced"
    assert m.cell("(unknown)", "ot-control").status == "unknown-zone"
    assert (m.cell("it", "dmz").status, seg.cell_text(m.cell("it", "dmz"))) == ("conduit", "conduit, no traffic")
    assert (m.cell("dmz", "it").status, seg.cell_text(m.cell("dmz", "it"))) == ("none", "·")
    assert len(m.to_dict()["cells"]) == 64


def test_hunt_runs_the_seg_analytics_and_skips_them_without_zones(c: Case, tmp_path: Path) -> None:
    flow(c, T0, WS, HE, 22)
    res = run_analytics(c, only=["seg"])
    assert [f.rule_id for f in res.findings] == ["seg.it_to_ot"]
    bare = Case.open(tmp_path / "bare.duckdb")
    bare.con.execute("INSERT INTO conn (ts, src_ip, dst_ip) VALUES (?, '10.0.0.1', '10.0.0.2')", [T0])
    runs = run_analytics(bare, only=["seg"]).runs
    assert {r.skipped_reason for r in runs} == {"no rows in zones"}
    bare.close()


def test_defaults_cover_every_seg_analytic() -> None:
    s = load_settings()
    for a in seg.ANALYTICS:
        assert s[a.name]["enabled"] is True and "denied_severity" in s[a.name]


def _fixture_case(tmp_path: Path) -> Path:
    path = tmp_path / "case.duckdb"
    with Case.open(path) as case:
        report = ingest_paths(case, [EVIDENCE])
        assert report.records_bad == 0, report.messages()
    return path


def test_cli_prints_the_matrix_and_violations(tmp_path: Path) -> None:
    path = _fixture_case(tmp_path)
    res = CliRunner().invoke(
        app, ["segmentation", str(path), "--csv", str(tmp_path / "flows.csv")], env={"COLUMNS": "250"}
    )
    assert res.exit_code == 0, res.output
    assert "8 flows (4 allowed, 3 violation, 1 unpoliced, 0 unknown-zone)" in res.stdout
    for text in ("vendor-access", "safety", "internet", "conduit, no traffic", "seg.it_to_ot", "seg.ot_to_internet"):
        assert text in res.stdout, text
    with (tmp_path / "flows.csv").open() as fh:
        flows = list(csv.DictReader(fh))
    assert len(flows) == 8 and list(flows[0]) == list(seg.FLOW_COLUMNS)
    jump = next(r for r in flows if r["src_ip"] == JUMP)
    assert (jump["status"], jump["action"], jump["conn_rows"]) == ("allowed", "allow", "2")


def test_cli_json(tmp_path: Path) -> None:
    path = _fixture_case(tmp_path)
    res = CliRunner().invoke(app, ["segmentation", str(path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["flows_by_status"] == {"allowed": 4, "violation": 3, "unpoliced": 1, "unknown-zone": 0}
    assert out["conn_records"] == 10
    cells = {(x["from_zone"], x["to_zone"]): x for x in out["matrix"]["cells"]}
    assert (cells["it", "ami"]["flows"], cells["it", "ami"]["denied"], cells["it", "ami"]["status"]) == (
        2,
        1,
        "violation",
    )
    assert sorted((f["rule_id"], f["severity"]) for f in out["findings"]) == [
        ("seg.it_to_ot", "high"),
        ("seg.it_to_ot", "low"),
        ("seg.ot_to_internet", "high"),
    ]


def test_cli_policy_replaces_the_case_policy_and_bad_policy_exits_2(tmp_path: Path) -> None:
    path = _fixture_case(tmp_path)
    res = CliRunner().invoke(app, ["segmentation", str(path), "--policy", str(DATA / "bad" / "ports.yaml")])
    assert res.exit_code == 2
    assert "ports.yaml: line 14: conduits[4]: ports: bad port range '500-80'" in " ".join(res.output.split())
    strict = tmp_path / "strict.yaml"
    strict.write_text("zones:\n  - {name: corp, kind: it, cidrs: [10.0.0.0/8]}\n")
    res = CliRunner().invoke(app, ["segmentation", str(path), "--policy", str(strict), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [z["name"] for z in out["zones"]] == ["corp"]
    assert out["flows_by_status"]["violation"] == 0  # one zone: only intra-zone and unpoliced traffic
    with Case.open(path, read_only=True) as case:
        assert rows(case, "SELECT name FROM zones") == [("corp",)]
    res = CliRunner().invoke(app, ["segmentation", str(tmp_path / "nope.duckdb")])
    assert res.exit_code == 2


def test_evidence_is_cut_to_the_cap_before_it_is_aggregated(c: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    # the cap is applied in SQL per group (a group can hold millions of conn rows), earliest rows first
    monkeypatch.setattr(seg, "MAX_EVIDENCE_ROWS", 3)
    bad = [flow(c, T0 + minutes(i), WS, HE, 22) for i in range(5)]
    (f,) = run(c, "seg.it_to_ot")
    assert f.count == 5 and [e["source_ref"] for e in f.evidence] == bad[:3]
    assert f.evidence[0]["fields"]["dst_zone"] == "ami" and f.evidence[0]["fields"]["status"] == "violation"
