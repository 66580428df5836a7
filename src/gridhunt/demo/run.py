"""`gridhunt demo`: generate the synthetic utility, hunt it end to end, score against the labels."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from gridhunt.demo.generator import generate
from gridhunt.demo.scorecard import score

# Not logs: update artifacts, signatures, keys and certificates are read by the update and vendor
# checks, not ingested; the change calendar and geo table wait for their analytics.
NOT_INGESTED = ("updates/artifacts", "context/certs", "context/keys")


def log_inputs(evidence: Path) -> list[Path]:
    """Every generated file the hunt ingests (all of evidence/ but NOT_INGESTED)."""
    return [
        f
        for f in sorted(evidence.rglob("*"))
        if f.is_file() and not any(f.relative_to(evidence).as_posix().startswith(p) for p in NOT_INGESTED)
    ]


def run_demo(
    out: Path, seed: int = 7, size: str = "small", generate_only: bool = False, progress: Any = None
) -> dict[str, Any]:
    """Write OUT/evidence, OUT/labels.json and, unless `generate_only`, OUT/findings.jsonl,
    OUT/summary.json and OUT/scorecard.json. Returns the scorecard (or the manifest)."""
    from gridhunt.hunt import hunt

    t0 = time.perf_counter()
    manifest = generate(out, seed=seed, size=size)
    t_gen = time.perf_counter() - t0
    if generate_only:
        return {"manifest": manifest, "seconds": {"generate": round(t_gen, 3)}}
    evidence = out / "evidence"
    case_path = out / "case.duckdb"
    case_path.unlink(missing_ok=True)  # the evidence was just written anew: so is the case
    result = hunt(log_inputs(evidence), case_path=case_path, out_dir=out, progress=progress)
    labels = json.loads((out / "labels.json").read_text())
    # Score on the full evidence lists (findings.jsonl caps them per finding).
    # Light views, not to_dict(): its deep copy of every evidence list doubled the large demo's memory.
    views = [
        {"finding_id": f.finding_id, "title": f.title, "rule_id": f.rule_id, "detector": f.detector,
         "evidence": f.evidence}
        for f in result.findings
    ]  # fmt: skip
    card = score(labels, views, evidence_root=evidence)
    card["seconds"] = {
        "generate": round(t_gen, 3),
        **{k: round(v, 3) for k, v in result.seconds.items()},
        "total": round(time.perf_counter() - t0, 3),
    }
    card["seed"], card["size"] = seed, size
    card["events"] = result.ingest.records_ok
    (out / "scorecard.json").write_text(json.dumps(card, indent=2) + "\n")
    return card
