"""The demo generator: determinism, format validity, and labels that point at real records."""

from __future__ import annotations

import csv
import hashlib
import ipaddress
import json
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gridhunt.case import Case
from gridhunt.demo import generate
from gridhunt.demo.cast import Cast, cast
from gridhunt.demo.world import World, build_world
from gridhunt.ingest import ami, ingest_paths
from gridhunt.ingest.context import ACCESS_KINDS

# Copied from docs/FORMATS.md on purpose: a change to the contract must show up here.
FORMATS_HEADERS = {
    "network/firewall.csv": (
        "ts,device,action,proto,src_ip,src_port,dst_ip,dst_port,bytes_out,bytes_in,duration,rule"
    ),
    "network/vpn.csv": (
        "ts,gateway,user,src_ip,assigned_ip,event,reason,session_id,bytes_in,bytes_out,duration"
    ),
    "updates/updates.csv": (
        "ts_applied,target,product,version,vendor,artifact,artifact_sha256,signature,channel"
    ),
    "context/change_windows.csv": "start,end,ticket,system,description",
}
# the AMI audit vocabulary the reader accepts (DESIGN.md's format)
AMI_ACTIONS = set(ami.ACTIONS)
AMI_TARGETS = set(ami.TARGET_TYPES)
# Techniques the issue asks the intrusion to cover.
REQUIRED_ATTACK = {
    "T1110.003",
    "T1078",
    "T1566.001",
    "T1059.001",
    "T1558.003",
    "T1098",
    "T1484.001",
    "T1003.001",
    "T1021.002",
    "T1569.002",
    "T1071.001",
    "T1071.004",
    "T1041",
    "T1070.001",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("demo_a")
    return out, generate(out, seed=7, size="small")


@pytest.fixture(scope="module")
def labels(demo: tuple[Path, dict[str, Any]]) -> list[dict[str, Any]]:
    return json.loads((demo[0] / "labels.json").read_text())


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _zeek_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    fields: list[str] = []
    rows = []
    for n, line in enumerate(path.read_text().split("\n"), 1):
        if line.startswith("#fields\t"):
            fields = line.split("\t")[1:]
        elif line and not line.startswith("#"):
            rows.append((n, line.split("\t")))
    return fields, rows


def _record(evidence: Path, rel: str, line_no: int, cache: dict[str, list[str]]) -> dict[str, Any]:
    """The record at a 1-based physical line, flattened to field -> value."""
    if rel not in cache:
        cache[rel] = (evidence / rel).read_text().split("\n")
    lines = cache[rel]
    text = lines[line_no - 1]
    if rel.endswith(".jsonl") and rel.startswith("windows/"):
        ev = json.loads(text)["Event"]
        eid = ev["System"]["EventID"]
        flat = {
            "EventID": eid["#text"] if isinstance(eid, dict) else eid,
            "Computer": ev["System"]["Computer"],
        }
        data = ev.get("EventData") or {}
        if "UserData" in ev:
            data = next(iter(ev["UserData"].values()))
        flat.update(data)
        return flat
    if rel.endswith(".jsonl"):
        return json.loads(text)
    if rel.endswith(".log"):
        header = next(x for x in lines if x.startswith("#fields\t")).split("\t")[1:]
        return dict(zip(header, text.split("\t"), strict=True))
    if rel.endswith(".csv"):
        header = next(csv.reader([lines[0]]))
        return dict(zip(header, next(csv.reader([text])), strict=True))
    raise AssertionError(rel)


def test_manifest_counts_match_files(demo: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = demo
    assert manifest["seed"] == 7 and manifest["size"] == "small"
    assert 50_000 <= manifest["records_total"] <= 150_000
    for f in manifest["files"]:
        p = out / "evidence" / f["path"]
        assert p.stat().st_size == f["bytes"]
        if f["path"].endswith(".jsonl"):
            assert sum(1 for _ in p.open()) == f["records"]
    assert manifest["time_range"] == {"start": "2026-04-01T00:00:00.000Z", "end": "2026-05-01T00:00:00.000Z"}


def test_same_seed_is_byte_identical(demo: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    generate(tmp_path, seed=7, size="small")
    a, b = _files(demo[0]), _files(tmp_path)
    assert sorted(a) == sorted(b)
    assert any(k.endswith(".sig") for k in a)
    for k in a:
        assert a[k] == b[k], k


def test_different_seed_differs(
    demo: tuple[Path, dict[str, Any]], labels: list[dict[str, Any]], tmp_path: Path
) -> None:
    generate(tmp_path, seed=8, size="tiny")
    ev_a, ev_b = demo[0] / "evidence", tmp_path / "evidence"
    hosts_a = {a["hostname"] for a in yaml.safe_load((ev_a / "context/assets.yaml").read_text())["assets"]}
    hosts_b = {a["hostname"] for a in yaml.safe_load((ev_b / "context/assets.yaml").read_text())["assets"]}
    assert hosts_a != hosts_b
    labels_b = json.loads((tmp_path / "labels.json").read_text())
    assert [x["id"] for x in labels] == [x["id"] for x in labels_b]
    assert [x["ts_first"] for x in labels] != [x["ts_first"] for x in labels_b]
    assert [x["entities"] for x in labels] != [x["entities"] for x in labels_b]
    users_a = {r["user"] for r in csv.DictReader((ev_a / "network/vpn.csv").open())}
    users_b = {r["user"] for r in csv.DictReader((ev_b / "network/vpn.csv").open())}
    assert users_a != users_b


def test_labels_shape(labels: list[dict[str, Any]]) -> None:
    ids = [x["id"] for x in labels]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) >= 15
    covered = {t for x in labels for t in x["attack"]}
    assert covered >= REQUIRED_ATTACK, REQUIRED_ATTACK - covered
    for lab in labels:
        assert set(lab) >= {"id", "title", "attack", "ts_first", "ts_last", "entities", "evidence"}
        assert lab["evidence"] and lab["entities"] and lab["ts_first"] <= lab["ts_last"]
        for ev in lab["evidence"]:
            assert not ev["source_file"].startswith("/")
            assert ev["source_ref"].startswith("line ")


def test_every_label_points_at_the_record_it_describes(
    demo: tuple[Path, dict[str, Any]], labels: list[dict[str, Any]]
) -> None:
    evidence = demo[0] / "evidence"
    cache: dict[str, list[str]] = {}
    for lab in labels:
        for ev in lab["evidence"]:
            rec = _record(evidence, ev["source_file"], int(ev["source_ref"].split()[1]), cache)
            for k, v in ev["expect"].items():
                assert str(rec.get(k)) == str(v), (lab["id"], ev, k, rec.get(k))


def test_evidence_timestamps_fall_inside_label_span(
    demo: tuple[Path, dict[str, Any]], labels: list[dict[str, Any]]
) -> None:
    evidence = demo[0] / "evidence"
    cache: dict[str, list[str]] = {}
    for lab in labels:
        for ev in lab["evidence"]:
            rec = _record(evidence, ev["source_file"], int(ev["source_ref"].split()[1]), cache)
            ts = rec.get("ts") or rec.get("ts_applied")
            if ev["source_file"].endswith(".log"):
                continue  # epoch seconds; the expect fields already pin the record
            if ts is None:
                raw = json.loads(cache[ev["source_file"]][int(ev["source_ref"].split()[1]) - 1])
                ts = raw["Event"]["System"]["TimeCreated"]["#attributes"]["SystemTime"][:23] + "Z"
            assert lab["ts_first"] <= ts <= lab["ts_last"] or ts[:19] == lab["ts_last"][:19], (lab["id"], ts)


def test_windows_jsonl_is_evtx_dump_shaped(demo: tuple[Path, dict[str, Any]]) -> None:
    seen: set[int] = set()
    for p in sorted((demo[0] / "evidence/windows").glob("*.jsonl")):
        last: dict[tuple[str, str], int] = {}
        for line in p.open():
            ev = json.loads(line)["Event"]
            s = ev["System"]
            eid = s["EventID"]["#text"] if isinstance(s["EventID"], dict) else s["EventID"]
            seen.add(eid)
            assert s["TimeCreated"]["#attributes"]["SystemTime"].endswith("Z")
            assert s["Channel"] and s["Computer"] and s["Provider"]["#attributes"]["Name"]
            key = (s["Computer"], s["Channel"])
            assert s["EventRecordID"] > last.get(key, 0)  # increasing per computer and channel
            last[key] = s["EventRecordID"]
            assert ("EventData" in ev) != ("UserData" in ev)
    assert {
        4624,
        4625,
        4648,
        4672,
        4688,
        4720,
        4728,
        4732,
        4756,
        4768,
        4769,
        4771,
        4776,
        5136,
        5145,
        1102,
        7045,
        104,
        1,
        3,
        10,
        11,
        13,
        22,
        4104,
    } <= seen


def test_windows_field_values_match_windows(
    demo: tuple[Path, dict[str, Any]], labels: list[dict[str, Any]]
) -> None:
    evidence = demo[0] / "evidence"
    by_id = {x["id"]: x for x in labels}
    cache: dict[str, list[str]] = {}
    roast = [
        _record(evidence, e["source_file"], int(e["source_ref"].split()[1]), cache)
        for e in by_id["S06-kerberoasting"]["evidence"]
        if e["expect"].get("EventID") == 4769
    ]
    assert roast and all(r["TicketEncryptionType"] == "0x17" for r in roast)
    lsass = [
        _record(evidence, e["source_file"], int(e["source_ref"].split()[1]), cache)
        for e in by_id["S10-lsass-access"]["evidence"]
        if e["expect"].get("EventID") == 10
    ]
    assert lsass[0]["GrantedAccess"] == "0x1010" and lsass[0]["TargetImage"].endswith("lsass.exe")
    svc = [
        _record(evidence, e["source_file"], int(e["source_ref"].split()[1]), cache)
        for e in by_id["S09-psexec-lateral"]["evidence"]
        if e["expect"].get("EventID") == 7045
    ]
    assert svc and svc[0]["ServiceName"] == "PSEXESVC"
    fails = [
        json.loads(x)["Event"]["EventData"]
        for x in (evidence / "windows/security.jsonl").open()
        if '"EventID":4625' in x
    ]
    assert fails and {
        "Status",
        "SubStatus",
        "LogonType",
        "IpAddress",
        "WorkstationName",
        "TargetUserName",
    } <= set(fails[0])
    benign_tgs = [
        json.loads(x)["Event"]["EventData"]["TicketEncryptionType"]
        for x in (evidence / "windows/security.jsonl").open()
        if '"EventID":4769' in x
    ]
    assert benign_tgs.count("0x12") > 10 * benign_tgs.count("0x17")


def test_zeek_logs_are_valid_tsv(demo: tuple[Path, dict[str, Any]]) -> None:
    for name in ("conn", "dns", "http", "ssl", "modbus", "dnp3"):
        p = demo[0] / "evidence/zeek" / f"{name}.log"
        lines = p.read_text().split("\n")
        assert lines[0] == "#separator \\x09" and lines[4] == f"#path\t{name}"
        fields = lines[6].split("\t")[1:]
        types = lines[7].split("\t")[1:]
        assert lines[6].startswith("#fields\t") and lines[7].startswith("#types\t")
        assert len(fields) == len(types) and fields[:2] == ["ts", "uid"]
        assert lines[-2].startswith("#close\t") and lines[-1] == ""
        _, rows = _zeek_rows(p)
        assert rows
        prev = 0.0
        for _n, r in rows:
            assert len(r) == len(fields)
            assert float(r[0]) >= prev
            prev = float(r[0])


def test_csv_headers_follow_formats(demo: tuple[Path, dict[str, Any]]) -> None:
    for rel, header in FORMATS_HEADERS.items():
        p = demo[0] / "evidence" / rel
        rows = list(csv.reader(p.open()))
        assert ",".join(rows[0]) == header
        assert len(rows) > 1 and all(len(r) == len(rows[0]) for r in rows)
    for row in csv.DictReader((demo[0] / "evidence/network/firewall.csv").open()):
        assert row["action"] in ("allow", "deny") and row["proto"] in ("tcp", "udp", "icmp")
    for row in csv.DictReader((demo[0] / "evidence/network/vpn.csv").open()):
        assert row["event"] in ("login", "login_failed", "logout")


def test_ami_audit_records(demo: tuple[Path, dict[str, Any]]) -> None:
    keys = [
        "ts",
        "system",
        "user",
        "src_ip",
        "action",
        "target_type",
        "target_id",
        "target_count",
        "params",
        "result",
    ]
    meters: set[str] = set()
    for name in ("headend_audit.jsonl", "dms_audit.jsonl"):
        for line in (demo[0] / "evidence/ami" / name).open():
            r = json.loads(line)
            assert list(r) == keys
            assert r["system"] in ami.SYSTEMS and r["action"] in AMI_ACTIONS
            assert r["target_type"] in AMI_TARGETS and r["result"] in ami.RESULTS
            assert isinstance(r["params"], dict)
            if r["target_type"] == "meter" and r["target_count"] == 1:
                meters.add(r["target_id"])
    assert len(meters) > 1000


def test_context_files(demo: tuple[Path, dict[str, Any]]) -> None:
    ctx = demo[0] / "evidence/context"
    assets = yaml.safe_load((ctx / "assets.yaml").read_text())["assets"]
    roles = {a["role"] for a in assets}
    assert {
        "domain_controller",
        "vpn_concentrator",
        "jump_host",
        "ami_headend",
        "meter_data_management",
        "hmi",
        "dms_server",
        "engineering_workstation",
        "field_collector",
        "workstation",
        "rtu",
        "plc",
    } <= roles
    assert sum(a["zone"] == "it" for a in assets) >= 290
    zones = yaml.safe_load((ctx / "zones.yaml").read_text())
    assert [z["name"] for z in zones["zones"]] == ["it", "dmz", "vendor-access", "ot-control", "ami"]
    # The hop in S14 must really be forbidden: no vendor-access -> ot-control conduit.
    assert not any(c["from"] == "vendor-access" and c["to"] == "ot-control" for c in zones["conduits"])
    vendors = yaml.safe_load((ctx / "vendors.yaml").read_text())
    kinds = {a["kind"] for a in vendors["vendors"][0]["access"]}
    assert set(ACCESS_KINDS) <= kinds  # every kind of access path the register knows
    assert (ctx / vendors["vendors"][0]["access"][-1]["identifier"]).exists()  # the cert file


def test_update_artifacts_manifest_and_signatures(demo: tuple[Path, dict[str, Any]]) -> None:
    ev = demo[0] / "evidence"
    art = ev / "updates/artifacts"
    manifest = dict(
        reversed(line.split("  ", 1)) for line in (art / "manifest.sha256").read_text().splitlines()
    )
    vendors = yaml.safe_load((ev / "context/vendors.yaml").read_text())
    chan = next(a for a in vendors["vendors"][0]["access"] if a["kind"] == "update_channel")
    key = load_pem_public_key((ev / "context" / chan["signing_key"]).read_bytes())
    bad_hash, bad_sig = [], []
    for name, digest in manifest.items():
        data = (art / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            bad_hash.append(name)
        try:
            key.verify((art / f"{name}.sig").read_bytes(), data)  # type: ignore[union-attr]
        except InvalidSignature:
            bad_sig.append(name)
    assert len(bad_hash) == 1 and bad_hash == bad_sig and "4.2.1" in bad_hash[0]
    rows = list(csv.DictReader((ev / "updates/updates.csv").open()))
    for r in rows:  # the update log records what was applied
        assert (
            hashlib.sha256((ev / "updates" / r["artifact"]).read_bytes()).hexdigest() == r["artifact_sha256"]
        )


def test_bad_size_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, seed=1, size="huge")


# -- benign look-alikes (demo/lookalikes.py): each must really be in the output ------------------
def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def world7() -> tuple[World, Cast]:
    w = build_world(7)
    return w, cast(w)


@pytest.fixture(scope="module")
def labelled(labels: list[dict[str, Any]]) -> set[tuple[str, int]]:
    return {(e["source_file"], int(e["source_ref"].split()[1])) for lab in labels for e in lab["evidence"]}


@pytest.fixture(scope="module")
def sec(demo: tuple[Path, dict[str, Any]]) -> list[dict[str, Any]]:
    """Security events flattened: EventID, ts, Computer, line, and the EventData fields."""
    out = []
    for n, line in enumerate((demo[0] / "evidence/windows/security.jsonl").open(), 1):
        ev = json.loads(line)["Event"]
        s = ev["System"]
        out.append(
            {
                "EventID": s["EventID"],
                "ts": _ts(s["TimeCreated"]["#attributes"]["SystemTime"]),
                "Computer": s["Computer"],
                "line": n,
                **(ev.get("EventData") or {}),
            }
        )
    return out


def _zeek(demo: tuple[Path, dict[str, Any]], name: str) -> list[dict[str, str]]:
    fields, rows = _zeek_rows(demo[0] / f"evidence/zeek/{name}.log")
    return [{"line": str(n), **dict(zip(fields, r, strict=True))} for n, r in rows]


@pytest.fixture(scope="module")
def conn(demo: tuple[Path, dict[str, Any]]) -> list[dict[str, str]]:
    return _zeek(demo, "conn")


@pytest.fixture(scope="module")
def dns(demo: tuple[Path, dict[str, Any]]) -> list[dict[str, str]]:
    return _zeek(demo, "dns")


@pytest.fixture(scope="module")
def vpn(demo: tuple[Path, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = csv.DictReader((demo[0] / "evidence/network/vpn.csv").open())
    return [{**r, "line": n, "t": _ts(r["ts"])} for n, r in enumerate(rows, 2)]


def _utc_hour(t: datetime) -> int:
    return t.utctimetuple().tm_hour


def _epoch(t: str) -> float:
    return float(t)


def test_lookalike_typos_end_in_success_from_the_same_address(
    sec: list[dict[str, Any]], vpn: list[dict[str, Any]], labelled: set[tuple[str, int]], world7: tuple[World, Cast]
) -> None:
    _, c = world7
    # Windows: every Kerberos pre-auth failure but the GIS tool's is a typo, 1-3 in a row, and the
    # same user gets a TGT from the same address within two minutes.
    fails = [e for e in sec if e["EventID"] == 4771 and e["TargetUserName"] != c.gis_user.sam]
    tgts = defaultdict(list)
    for e in sec:
        if e["EventID"] == 4768:
            tgts[(e["TargetUserName"], e["IpAddress"])].append(e["ts"])
    runs: Counter[tuple[str, datetime]] = Counter()
    for f in fails:
        nxt = [t for t in tgts[(f["TargetUserName"], f["IpAddress"])] if f["ts"] <= t <= f["ts"] + timedelta(minutes=2)]
        assert nxt, f
        runs[(f["TargetUserName"], min(nxt))] += 1
    assert len(runs) >= 50 and set(runs.values()) <= {1, 2, 3} and max(runs.values()) >= 2
    admins = {a for a, _ in runs if a.startswith("adm-")}
    assert admins  # admins mistype too
    # RDP typos: network-logon failures from an admin workstation, then the RDP logon from it.
    rdp_ok = {(e["TargetUserName"], e["IpAddress"]) for e in sec if e["EventID"] == 4624 and e["LogonType"] == 10}
    rdp_fail = [
        e for e in sec if e["EventID"] == 4625 and e["LogonType"] == 3 and e["TargetUserName"].startswith("adm-")
    ]
    assert rdp_fail and all((e["TargetUserName"], e["IpAddress"]) in rdp_ok for e in rdp_fail)
    # VPN: every unlabelled failure is followed by a login of the same account from the same address.
    logins = defaultdict(list)
    for r in vpn:
        if r["event"] == "login":
            logins[(r["user"], r["src_ip"])].append(r["t"])
    n_fail = 0
    for r in vpn:
        if r["event"] == "login_failed" and ("network/vpn.csv", r["line"]) not in labelled:
            n_fail += 1
            assert any(r["t"] <= t <= r["t"] + timedelta(minutes=5) for t in logins[(r["user"], r["src_ip"])]), r
    assert n_fail >= 5


def test_lookalike_low_and_slow_failures(sec: list[dict[str, Any]], world7: tuple[World, Cast]) -> None:
    _, c = world7
    phone = [
        e for e in sec if e["EventID"] == 4625 and e["TargetUserName"] == c.phone_user.sam and e["LogonType"] == 8
    ]
    assert len(phone) >= 40 and len({e["IpAddress"] for e in phone}) == 1
    gaps = [(b["ts"] - a["ts"]).total_seconds() for a, b in zip(phone, phone[1:], strict=False)]
    assert all(1770 <= g <= 1830 for g in gaps)  # one failure every 30 min: below any spray threshold
    ok = [e for e in sec if e["EventID"] == 4624 and e["TargetUserName"] == c.phone_user.sam and e["LogonType"] == 8]
    assert ok and ok[0]["IpAddress"] == phone[0]["IpAddress"] and ok[0]["ts"] > phone[-1]["ts"]
    gis = [e for e in sec if e["EventID"] == 4771 and e["TargetUserName"] == c.gis_user.sam]
    assert sum(_utc_hour(e["ts"]) in (8, 10, 12, 14, 16) and e["ts"].minute in (10, 11, 12) for e in gis) >= 15
    scanner = [e for e in sec if e["EventID"] == 4625 and e["TargetUserName"] == "scan2folder"]
    assert len(scanner) >= 100


def test_lookalike_vendor_vpn_from_usual_country(vpn: list[dict[str, Any]], labelled: set[tuple[str, int]]) -> None:
    vendor_net = ipaddress.ip_network("203.0.113.0/24")
    days: defaultdict[str, set[int]] = defaultdict(set)
    srcs: defaultdict[str, set[str]] = defaultdict(set)
    for r in vpn:
        mine = r["event"] == "login" and ("network/vpn.csv", r["line"]) not in labelled
        if mine and ipaddress.ip_address(r["src_ip"]) in vendor_net:
            days[r["user"]].add(r["t"].day)
            srcs[r["user"]].add(r["src_ip"])
    vendor_users = list(days)
    assert len(vendor_users) == 4
    for u in vendor_users:
        assert {1, 2} <= days[u] and len(days[u]) >= 6, u  # seen in the baseline, and all month
    assert any(len(s) >= 2 for s in srcs.values())  # home line and the vendor's office, same ASN


def _geo(demo: tuple[Path, dict[str, Any]]) -> list[tuple[ipaddress.IPv4Network, dict[str, str]]]:
    rows = csv.DictReader((demo[0] / "evidence/context/geoip.csv").open())
    return [(ipaddress.ip_network(r["cidr"]), r) for r in rows]


def _country(geo: list[tuple[ipaddress.IPv4Network, dict[str, str]]], ip: str) -> str:
    hits = [r["country"] for net, r in geo if ipaddress.ip_address(ip) in net]
    assert len(hits) == 1, ip
    return hits[0]


def test_lookalike_traveller_new_country_plausible_gap(
    demo: tuple[Path, dict[str, Any]], vpn: list[dict[str, Any]], world7: tuple[World, Cast]
) -> None:
    _, c = world7
    geo = _geo(demo)
    logins = [r for r in vpn if r["user"] == c.traveller.sam and r["event"] == "login"]
    countries = [_country(geo, r["src_ip"]) for r in logins]
    assert countries[0] == "GB" and "FR" in countries and countries[-1] == "GB"
    first_fr = countries.index("FR")
    assert "FR" not in countries[:first_fr]  # a first-seen country for the account ...
    gap = logins[first_fr]["t"] - logins[first_fr - 1]["t"]
    assert countries[first_fr - 1] == "GB" and gap >= timedelta(hours=9)  # ... reached in plausible time


def test_lookalike_night_shift_operator(sec: list[dict[str, Any]], world7: tuple[World, Cast]) -> None:
    _, c = world7
    night = {u.sam for u in c.night_ops}
    logons = [e for e in sec if e["EventID"] == 4624 and e["TargetUserName"] in night]
    assert len(logons) >= 40 and {e["TargetUserName"] for e in logons} == night
    assert all(_utc_hour(e["ts"]) >= 21 or _utc_hour(e["ts"]) < 6 for e in logons)
    assert {e["ts"].day for e in logons} >= set(range(1, 31))
    # Nobody else logs on to an HMI at night: the day crew is on 06:00 and 14:00 shifts.
    hmi_night = [
        e
        for e in sec
        if e["EventID"] == 4624 and "-hmi" in e["Computer"] and (_utc_hour(e["ts"]) >= 21 or _utc_hour(e["ts"]) < 6)
    ]
    assert {e["TargetUserName"] for e in hmi_night} == night


def test_lookalike_service_tickets(
    sec: list[dict[str, Any]], labelled: set[tuple[str, int]], world7: tuple[World, Cast]
) -> None:
    _, c = world7
    tgs = [e for e in sec if e["EventID"] == 4769]
    assert sum(e["TicketEncryptionType"] == "0x12" for e in tgs) >= 10_000
    mon = [e for e in tgs if e["TargetUserName"].startswith(f"{c.monitor.sam}@")]
    assert mon and all(e["TicketEncryptionType"] == "0x12" for e in mon)
    bursts: list[list[dict[str, Any]]] = []
    for e in mon:
        if bursts and e["ts"] - bursts[-1][0]["ts"] < timedelta(minutes=2):
            bursts[-1].append(e)
        else:
            bursts.append([e])
    assert len(bursts) >= 60 and all(len({e["ServiceName"] for e in b}) >= 12 for b in bursts)
    rc4 = [
        e for e in tgs if e["TicketEncryptionType"] == "0x17" and ("windows/security.jsonl", e["line"]) not in labelled
    ]
    by_acct: defaultdict[str, list[datetime]] = defaultdict(list)
    for e in rc4:
        by_acct[e["TargetUserName"]].append(e["ts"])
    for ts in by_acct.values():  # isolated, never a burst
        assert all(b - a > timedelta(minutes=10) for a, b in zip(ts, ts[1:], strict=False))
    users = {u.sam for u in c.rc4_users}
    assert {a.split("@")[0] for a in by_acct} >= users
    asrep = [e for e in sec if e["EventID"] == 4768 and e["PreAuthType"] == "0"]
    assert len(asrep) == 30 and {e["TargetUserName"] for e in asrep} == {c.asrep.sam}


def test_lookalike_admin_activity(
    demo: tuple[Path, dict[str, Any]], sec: list[dict[str, Any]], world7: tuple[World, Cast]
) -> None:
    _, c = world7
    ev = demo[0] / "evidence"
    new = [e for e in sec if e["EventID"] == 4720 and e["TargetUserName"] == c.joiner.sam]
    assert len(new) == 1 and 8 <= _utc_hour(new[0]["ts"]) < 17 and new[0]["ts"].day <= 2
    groups = {e["TargetUserName"] for e in sec if e["EventID"] in (4728, 4756) and e.get("MemberSid") == c.joiner.sid}
    assert groups and not groups & {"Domain Admins", "Enterprise Admins", "Administrators"}
    windows = [
        (_ts(r["start"]), _ts(r["end"]))
        for r in csv.DictReader((ev / "context/change_windows.csv").open())
        if r["system"] == "active-directory"
    ]
    gpo = [e for e in sec if e["EventID"] == 5136 and e["ObjectClass"] == "groupPolicyContainer"]
    assert any(a <= e["ts"] <= b for e in gpo for a, b in windows)
    sysmon = [json.loads(x)["Event"]["EventData"] for x in (ev / "windows/sysmon.jsonl").open()]
    assert any(
        d.get("TargetImage", "").endswith("lsass.exe")
        and d["GrantedAccess"] == "0x1000"
        and d["SourceImage"].endswith("MsMpEng.exe")
        for d in sysmon
    )
    ps_file = [d for d in sysmon if "-NoProfile -File C:\\Scripts\\" in d.get("CommandLine", "")]
    assert len(ps_file) >= 10 and all(d["User"].split("\\")[1].startswith("adm-") for d in ps_file)
    services = {
        json.loads(x)["Event"]["EventData"]["ServiceName"]
        for x in (ev / "windows/system.jsonl").open()
        if "7045" in x
    }
    assert services - {"PSEXESVC"}


def test_lookalike_periodic_traffic(
    demo: tuple[Path, dict[str, Any]], conn: list[dict[str, str]], world7: tuple[World, Cast]
) -> None:
    w, c = world7

    def series(src: str, dst: str) -> list[dict[str, str]]:
        return [r for r in conn if r["id.orig_h"] == src and r["id.resp_h"] == dst]

    for pool in ("0.pool.ntp.example", "1.pool.ntp.example"):
        ntp = series(w.h("mailgw").ip, w.infra[pool])
        assert len(ntp) >= 600 and {r["id.resp_p"] for r in ntp} == {"123"}
    hb = series(w.h(c.monitor_host).ip, w.infra["collector.monitor-saas.example"])
    gaps = [_epoch(b["ts"]) - _epoch(a["ts"]) for a, b in zip(hb, hb[1:], strict=False)]
    sizes = [int(r["orig_bytes"]) for r in hb]
    assert len(hb) >= 1400 and all(1797 <= g <= 1803 for g in gaps) and max(sizes) - min(sizes) <= 12
    defender = series(w.h("wsus01").ip, w.infra["definitionupdates.os-vendor.example"])
    assert len(defender) >= 300
    tel = f"telemetry.{w.vendor_domain}"
    assert len(series(w.h("headend01").ip, w.external[tel])) >= 30 * 140
    vendors = yaml.safe_load((demo[0] / "evidence/context/vendors.yaml").read_text())
    assert {"kind": "telemetry", "identifier": tel} in vendors["vendors"][0]["access"]


def test_lookalike_long_connections_and_large_uploads(conn: list[dict[str, str]], world7: tuple[World, Cast]) -> None:
    w, c = world7
    s2s = [r for r in conn if r["id.resp_h"] == w.infra["s2s-peer"] and r["id.resp_p"] == "4500"]
    assert len(s2s) == 30 and all(float(r["duration"]) > 20 * 3600 for r in s2s)
    teams = [
        r
        for r in conn
        if r["id.resp_h"] == w.external["teams.saas-office.example"] and r["proto"] == "udp"
    ]
    assert len(teams) >= 30 and all(float(r["duration"]) >= 15 * 60 for r in teams)
    backup = [r for r in conn if r["id.resp_h"] == w.infra["vault.offsite-backup.example"]]
    nights = {datetime.fromtimestamp(_epoch(r["ts"]), UTC).day for r in backup}
    assert len(backup) == 30 and nights == set(range(1, 31))  # every night, from the baseline on
    assert all(int(r["orig_bytes"]) >= 10**10 and r["id.orig_h"] == w.h("backup01").ip for r in backup)
    store = w.external["files.cloudstore.example"]
    big = [r for r in conn if r["id.resp_h"] == store and int(r["orig_bytes"]) >= 10**9]
    assert len(big) == 1 and big[0]["id.orig_h"] == c.uploader.workstation.ip  # type: ignore[union-attr]
    assert len({r["id.orig_h"] for r in conn if r["id.resp_h"] == store}) >= 10  # a common site, not a rare one


def test_lookalike_dns(dns: list[dict[str, str]], world7: tuple[World, Cast]) -> None:
    w, _ = world7
    suffixes = (".cloudfront.net", ".akamaiedge.net", ".elb.amazonaws.com", ".azurefd.net")
    cdn = [r for r in dns if r["query"].endswith(suffixes)]
    assert len(cdn) >= 200 and all(r["rcode_name"] == "NOERROR" for r in cdn)
    assert len({r["query"] for r in cdn if r["query"].endswith(".cloudfront.net")}) >= 10
    nx = [r for r in dns if r["rcode_name"] == "NXDOMAIN"]
    assert 9 <= len(nx) <= 15 and all(r["query"].endswith(w.dns_domain) for r in nx)
    txt = [r for r in dns if r["qtype_name"] == "TXT" and r["id.orig_h"] == w.h("mail01").ip]
    assert len(txt) >= 30 and any("v=spf1" in r["answers"] for r in txt) and any("v=DKIM1" in r["answers"] for r in txt)


def _label_rows(demo: tuple[Path, dict[str, Any]], label: dict[str, Any], rel: str) -> list[dict[str, Any]]:
    cache: dict[str, list[str]] = {}
    refs = [int(e["source_ref"].split()[1]) for e in label["evidence"] if e["source_file"] == rel]
    return [_record(demo[0] / "evidence", rel, n, cache) for n in sorted(refs)]


def test_intrusion_network_steps_have_the_expected_shape(
    demo: tuple[Path, dict[str, Any]], labels: list[dict[str, Any]]
) -> None:
    by_id = {x["id"]: x for x in labels}
    beacon = _label_rows(demo, by_id["S04-c2-beacon"], "zeek/conn.log")
    ts = [float(r["ts"]) for r in beacon]
    gaps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
    assert len(beacon) >= 4 and ts[-1] - ts[0] >= 6 * 3600
    assert all(0.8 * 600 <= g <= 1.2 * 600 for g in gaps)  # jitter within ±20 % ...
    assert statistics.pstdev(gaps) / statistics.mean(gaps) >= 0.05  # ... but really jittered
    sizes = {int(r["resp_bytes"]) for r in beacon} | {int(r["orig_bytes"]) for r in beacon}
    assert max(sizes) - min(sizes) <= 100
    c2 = {r["id.resp_h"] for r in beacon}
    assert len(c2) == 1
    tunnel = _label_rows(demo, by_id["S12-dns-tunnel"], "zeek/dns.log")
    assert len(tunnel) >= 100 and {r["qtype_name"] for r in tunnel} == {"TXT"}
    assert len({".".join(r["query"].split(".")[-3:]) for r in tunnel}) == 1
    assert min(len(r["query"].split(".")[0]) for r in tunnel) >= 25
    exfil = _label_rows(demo, by_id["S13-exfil-over-c2"], "zeek/conn.log")
    assert exfil and {r["id.resp_h"] for r in exfil} == c2
    assert all(int(r["orig_bytes"]) >= 10**6 and datetime.fromtimestamp(float(r["ts"]), UTC).hour < 5 for r in exfil)


def test_geoip_covers_every_public_address(
    demo: tuple[Path, dict[str, Any]], conn: list[dict[str, str]], vpn: list[dict[str, Any]]
) -> None:
    geo = _geo(demo)
    nets = [n for n, _ in geo]
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    public = {r["id.resp_h"] for r in conn} | {r["id.orig_h"] for r in conn} | {r["src_ip"] for r in vpn}
    public = {ip for ip in public if not ip.startswith("10.")}
    assert len(public) >= 50
    for ip in public:
        _country(geo, ip)


# -- benign ICS traffic (demo/icsnet.py) ---------------------------------------------------------
@pytest.fixture(scope="module")
def ics(demo: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The demo's modbus.log and dnp3.log ingested into a real case: its `ics` rows."""
    zeek = demo[0] / "evidence/zeek"
    case = Case.open(tmp_path_factory.mktemp("ics_case") / "c.duckdb")
    try:
        report = ingest_paths(case, [zeek / "modbus.log", zeek / "dnp3.log"])
        assert report.records_bad == 0 and report.records_ok > 0
        cur = case.con.execute(
            "SELECT ts, uid, src_ip, src_port, dst_ip, dst_port, protocol, function, direction, is_write, is_control "
            "FROM ics ORDER BY ts, source_file, source_ref"
        )
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        case.close()


def _assets_by_role(demo: tuple[Path, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """role -> {ip: hostname} from the demo's inventory."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for a in yaml.safe_load((demo[0] / "evidence/context/assets.yaml").read_text())["assets"]:
        for ip in a["ips"]:
            out[a["role"]][ip] = a["hostname"]
    return out


def test_ics_logs_ingest_with_expected_protocols_and_functions(
    demo: tuple[Path, dict[str, Any]], ics: list[dict[str, Any]]
) -> None:
    _, manifest = demo
    files = {f["path"]: f["records"] for f in manifest["files"]}
    assert len(ics) == files["zeek/modbus.log"] + files["zeek/dnp3.log"]  # every record parsed
    counts = Counter((r["protocol"], r["function"]) for r in ics)
    assert counts[("dnp3", "READ")] >= 4000  # SCADA polling, sampled
    assert 100 <= counts[("dnp3", "UNSOLICITED_RESPONSE")] <= 1000  # RTUs reporting by exception
    assert counts[("dnp3", "DIRECT_OPERATE")] == 1  # the breaker test, nothing else operates
    assert counts[("modbus", "READ_HOLDING_REGISTERS")] >= 1000 and counts[("modbus", "READ_INPUT_REGISTERS")] >= 1000
    writes = counts[("modbus", "WRITE_SINGLE_REGISTER")] + counts[("modbus", "WRITE_MULTIPLE_REGISTERS")]
    assert 10 <= writes <= 100  # occasional engineering changes
    assert set(counts) == {
        ("dnp3", "READ"),
        ("dnp3", "UNSOLICITED_RESPONSE"),
        ("dnp3", "DIRECT_OPERATE"),
        ("modbus", "READ_HOLDING_REGISTERS"),
        ("modbus", "READ_INPUT_REGISTERS"),
        ("modbus", "WRITE_SINGLE_REGISTER"),
        ("modbus", "WRITE_MULTIPLE_REGISTERS"),
    }
    # the breaker test is the one control command (DNP3 operate functions count as control)
    assert [r["function"] for r in ics if r["is_control"]] == ["DIRECT_OPERATE"]
    assert {r["direction"] for r in ics if r["function"] == "UNSOLICITED_RESPONSE"} == {"response"}
    # the polling stays a small share of the demo (under 10 % of everything else)
    ics_total = len(ics)
    assert ics_total <= 0.1 * (manifest["records_total"] - ics_total)


def test_ics_masters_outstations_and_writers(demo: tuple[Path, dict[str, Any]], ics: list[dict[str, Any]]) -> None:
    roles = _assets_by_role(demo)
    ews, rtus, plcs = roles["engineering_workstation"], roles["rtu"], roles["plc"]
    assert len(rtus) >= 3 and len(plcs) >= 2
    masters = {ip for role in ("scada_server", "historian", "hmi", "engineering_workstation") for ip in roles[role]}
    assert {r["src_ip"] for r in ics} <= masters
    assert {r["dst_ip"] for r in ics if r["protocol"] == "dnp3"} <= set(rtus)
    assert {r["dst_ip"] for r in ics if r["protocol"] == "modbus"} <= set(plcs)
    assert {r["dst_port"] for r in ics if r["protocol"] == "dnp3"} == {20000}
    assert {r["dst_port"] for r in ics if r["protocol"] == "modbus"} == {502}
    # every SCADA master polls every RTU (the standby keeps its channels up too)
    for scada in roles["scada_server"]:
        assert {r["dst_ip"] for r in ics if r["src_ip"] == scada and r["function"] == "READ"} == set(rtus)
    # writes come only from engineering workstations, on working days in working hours (the site runs on UTC)
    writes = [r for r in ics if r["is_write"]]
    assert writes and {r["src_ip"] for r in writes} <= set(ews) and len({r["src_ip"] for r in writes}) == len(ews)
    for r in writes:
        t = r["ts"].astimezone(UTC)
        assert t.weekday() < 5 and 8 <= t.hour < 17, r
    # field devices sit in the OT control zone the zones policy declares
    zones = yaml.safe_load((demo[0] / "evidence/context/zones.yaml").read_text())["zones"]
    ot = [ipaddress.ip_network(c) for z in zones if z["name"] == "ot-control" for c in z["cidrs"]]
    assert all(any(ipaddress.ip_address(ip) in n for n in ot) for ip in [*rtus, *plcs])


def test_ics_direct_operate_inside_its_change_window(
    demo: tuple[Path, dict[str, Any]], ics: list[dict[str, Any]]
) -> None:
    roles = _assets_by_role(demo)
    (op,) = [r for r in ics if r["function"] == "DIRECT_OPERATE"]
    assert op["src_ip"] in roles["engineering_workstation"] and op["dst_ip"] in roles["rtu"]
    windows = list(csv.DictReader((demo[0] / "evidence/context/change_windows.csv").open()))
    inside = [w for w in windows if _ts(w["start"]) <= op["ts"] <= _ts(w["end"])]
    assert len(inside) == 1 and inside[0]["ticket"].startswith("CHG-")
    assert inside[0]["system"] == "substation-rtu" and roles["rtu"][op["dst_ip"]] in inside[0]["description"]
    # the RTU reports the trip to its SCADA master, unsolicited, moments later
    later = [
        r
        for r in ics
        if r["function"] == "UNSOLICITED_RESPONSE"
        and r["dst_ip"] == op["dst_ip"]
        and op["ts"] < r["ts"] <= op["ts"] + timedelta(seconds=5)
    ]
    assert len(later) == 1 and later[0]["src_ip"] in roles["scada_server"]


def test_ics_records_belong_to_conn_sessions(ics: list[dict[str, Any]], conn: list[dict[str, str]]) -> None:
    sessions = {r["uid"]: r for r in conn if r["service"] in ("modbus", "dnp3")}
    assert sessions and {r["uid"] for r in ics} == set(sessions)
    for r in ics:
        c = sessions[r["uid"]]
        assert (c["id.orig_h"], c["id.resp_h"], c["id.resp_p"], c["service"]) == (
            r["src_ip"],
            r["dst_ip"],
            str(r["dst_port"]),
            r["protocol"],
        )
        start = float(c["ts"])
        assert start <= r["ts"].timestamp() <= start + float(c["duration"])
