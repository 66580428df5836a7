"""`generate()`: write a synthetic utility's evidence folder plus labels.json.

Layout under `out_dir`:
```
evidence/
  windows/{security,system,sysmon,powershell}.jsonl   evtx_dump JSONL, WEF-collected from all hosts
  zeek/{conn,dns,http,ssl,modbus,dnp3}.log            Zeek TSV (modbus / dnp3: benign ICS polling, icsnet.py)
  network/firewall.csv  network/vpn.csv
  ami/headend_audit.jsonl  ami/dms_audit.jsonl
  context/assets.yaml zones.yaml vendors.yaml change_windows.csv geoip.csv certs/ keys/
  updates/updates.csv  updates/artifacts/{*.bin,*.pkg,*.msp,*.sig,manifest.sha256}
labels.json      ground truth (list of steps with evidence pointers)
manifest.json    what was written (no timings, so it stays byte-identical per seed)
```
Output is a pure function of (seed, size): one `random.Random` per concern, derived from
the seed, a fixed April 2026 clock, and insertion-ordered containers only.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import orjson

from gridhunt.demo.background import Background
from gridhunt.demo.context import change_calendar, write_context
from gridhunt.demo.icsnet import IcsTraffic
from gridhunt.demo.intrusion import Intrusion
from gridhunt.demo.labels import LabelBook
from gridhunt.demo.lookalikes import Lookalikes
from gridhunt.demo.netlog import FIREWALL_HEADER, VPN_HEADER, ZEEK_FIELDS, Net, zeek_footer, zeek_header
from gridhunt.demo.sinks import Sink
from gridhunt.demo.timeutil import DAY, DAYS, END, INCIDENT_END, INCIDENT_START, START, iso_ms
from gridhunt.demo.updates import UPDATES_HEADER, build_updates
from gridhunt.demo.winevents import WinLog
from gridhunt.demo.world import build_world

# rate scales per-user/per-host activity; agents adds every IT host's AV check-ins (large only).
PROFILES: dict[str, dict[str, Any]] = {
    "tiny": {"rate": 0.3, "agents": False},  # for quick tests
    "small": {"rate": 1.0, "agents": False},
    "large": {"rate": 65.0, "agents": True},
}

SINKS: dict[str, tuple[str, str | None]] = {
    # key: (path under evidence/, kind)
    "sec": ("windows/security.jsonl", None),
    "sys": ("windows/system.jsonl", None),
    "sysmon": ("windows/sysmon.jsonl", None),
    "ps": ("windows/powershell.jsonl", None),
    "conn": ("zeek/conn.log", "conn"),
    "dns": ("zeek/dns.log", "dns"),
    "http": ("zeek/http.log", "http"),
    "ssl": ("zeek/ssl.log", "ssl"),
    "modbus": ("zeek/modbus.log", "modbus"),
    "dnp3": ("zeek/dnp3.log", "dnp3"),
    "fw": ("network/firewall.csv", FIREWALL_HEADER),
    "vpn": ("network/vpn.csv", VPN_HEADER),
    "headend": ("ami/headend_audit.jsonl", None),
    "dms": ("ami/dms_audit.jsonl", None),
    "updates": ("updates/updates.csv", UPDATES_HEADER),
}


def _open_sinks(evidence: Path, book: LabelBook) -> dict[str, Sink]:
    sinks: dict[str, Sink] = {}
    for key, (rel, kind) in SINKS.items():
        if kind is not None and kind in ZEEK_FIELDS:
            sinks[key] = Sink(evidence, rel, book, zeek_header(kind), zeek_footer(END))
        elif kind:
            sinks[key] = Sink(evidence, rel, book, [kind])
        else:
            sinks[key] = Sink(evidence, rel, book)
    return sinks


def generate(out_dir: Path | str, seed: int = 7, size: str = "small") -> dict[str, Any]:
    """Write evidence/ and labels.json under out_dir; return a manifest of what was written."""
    if size not in PROFILES:
        raise ValueError(f"size must be one of {sorted(PROFILES)}, not {size!r}")
    out = Path(out_dir)
    evidence = out / "evidence"
    if evidence.exists():  # stale files from an earlier run would break byte-identical output
        shutil.rmtree(evidence)
    evidence.mkdir(parents=True)
    prof = PROFILES[size]

    world = build_world(seed)
    cal = change_calendar(world)
    book = LabelBook()
    context_files = write_context(world, evidence)
    update_rows, artifact_files = build_updates(world, evidence, cal)

    sinks = _open_sinks(evidence, book)
    win = WinLog(world)
    net = Net(sinks, random.Random(f"{seed}:net"), world.h("dc01").ip)
    bg = Background(
        world, sinks, win, net, random.Random(f"{seed}:background"), prof["rate"], prof["agents"], cal
    )
    look = Lookalikes(world, sinks, win, net, bg, random.Random(f"{seed}:lookalikes"))
    ics = IcsTraffic(world, sinks, random.Random(f"{seed}:ics"), cal)
    # The intrusion's records go into the sink buffers up front (a few thousand); they are
    # written when the day they fall on is flushed, interleaved in time order with the rest.
    Intrusion(world, sinks, win, net, bg, book, cal, update_rows).emit()
    for d in range(DAYS):
        bg.day(d)
        look.day(d)  # benign look-alikes of what the identity / network analytics hunt
        ics.day(d)  # benign SCADA polling, historian / HMI reads, engineering writes
        until = START + (d + 1) * DAY
        for s in sinks.values():
            s.flush(until)
    for s in sinks.values():
        s.close()

    labels = book.to_json()
    (out / "labels.json").write_bytes(orjson.dumps(labels, option=orjson.OPT_INDENT_2) + b"\n")

    files: list[dict[str, Any]] = []
    for s in sinks.values():
        files.append({"path": s.rel, "records": s.records, "bytes": s.path.stat().st_size})
    for rel in context_files + artifact_files:
        files.append({"path": rel, "records": None, "bytes": (evidence / rel).stat().st_size})
    files.sort(key=lambda f: f["path"])
    total = sum(f["records"] or 0 for f in files)
    manifest: dict[str, Any] = {
        "generator": "gridhunt.demo",
        "seed": seed,
        "size": size,
        "utility": world.utility,
        "vendor": world.vendor,
        "evidence_dir": "evidence",
        "labels_file": "labels.json",
        "time_range": {"start": iso_ms(START), "end": iso_ms(END)},
        "incident_window": {"start": INCIDENT_START, "end": INCIDENT_END},
        "records_total": total,
        "labels": len(labels),
        "files": files,
    }
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    return manifest
