"""Score findings against the generator's labels.

A label is *caught* when any finding's evidence includes one of the label's records
(same file relative to the evidence dir, same `source_ref`). A finding is *true* when its
evidence touches at least one labelled record, otherwise it is a false positive.

    precision = true findings / all findings      (0.0 when there are no findings)
    recall    = caught labels / all labels        (0.0 when there are no labels)

Output order is deterministic: labels in label-id order, false-positive rules by count
descending then name.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

_LINE = re.compile(r"^\s*(?:line\s*)?(\d+)\s*$", re.IGNORECASE)


def _norm_ref(ref: Any) -> str:
    """`line 12`, `12`, 12 and `Line 12` are the same record; other refs compare as text."""
    s = str(ref).strip()
    m = _LINE.match(s)
    return f"line {int(m.group(1))}" if m else s


def _norm_path(path: Any, root: Path | None) -> str:
    p = str(path).replace("\\", "/")
    if root is not None:
        rp = str(root).replace("\\", "/").rstrip("/")
        candidates = [rp]
        with contextlib.suppress(OSError):  # a root that no longer exists still relativises as text
            candidates.append(str(root.resolve()).replace("\\", "/").rstrip("/"))
        for c in candidates:
            if p.startswith(c + "/"):
                p = p[len(c) + 1 :]
                break
    if p.startswith("/") and "/evidence/" in p:
        # Absolute path under another spelling of the root (or no root given): keep the
        # part after the last `evidence/` directory, which is the generator's layout.
        p = p.rsplit("/evidence/", 1)[1]
    while p.startswith("./"):
        p = p[2:]
    return str(PurePosixPath(p))


def _evidence_items(finding: dict[str, Any]) -> Iterable[tuple[Any, Any]]:
    ev = finding.get("evidence") or []
    if isinstance(ev, str | bytes):  # the findings table stores evidence as JSON text
        ev = orjson.loads(ev)
    for item in ev:
        if isinstance(item, dict):
            yield item.get("source_file"), item.get("source_ref")
        elif isinstance(item, list | tuple) and len(item) >= 2:
            yield item[0], item[1]


def _finding_name(f: dict[str, Any]) -> str:
    return str(f.get("title") or f.get("rule_id") or f.get("detector") or "untitled")


def score(
    labels: list[dict[str, Any]], findings: list[dict[str, Any]], evidence_root: Path | str | None = None
) -> dict[str, Any]:
    root = Path(evidence_root) if evidence_root is not None else None
    record_to_labels: dict[tuple[str, str], list[str]] = {}
    for lab in labels:
        for ev in lab.get("evidence", []):
            key = (_norm_path(ev["source_file"], None), _norm_ref(ev["source_ref"]))
            record_to_labels.setdefault(key, []).append(lab["id"])

    caught_by: dict[str, list[dict[str, str]]] = {lab["id"]: [] for lab in labels}
    fp: dict[str, int] = {}
    true_findings = 0
    for i, f in enumerate(findings):
        fid = str(f.get("finding_id") or f"#{i}")
        hit: list[str] = []
        for path, ref in _evidence_items(f):
            if path is None or ref is None:
                continue
            for lid in record_to_labels.get((_norm_path(path, root), _norm_ref(ref)), []):
                if lid not in hit:
                    hit.append(lid)
        if hit:
            true_findings += 1
            for lid in hit:
                caught_by[lid].append({"finding_id": fid, "title": _finding_name(f)})
        else:
            name = _finding_name(f)
            fp[name] = fp.get(name, 0) + 1

    per_label = []
    for lab in sorted(labels, key=lambda x: x["id"]):
        cb = sorted(caught_by[lab["id"]], key=lambda c: (c["finding_id"], c["title"]))
        per_label.append(
            {
                "id": lab["id"],
                "title": lab.get("title", ""),
                "attack": lab.get("attack", []),
                "detected": bool(cb),
                "caught_by": cb,
            }
        )
    n_lab, n_find = len(labels), len(findings)
    detected = sum(1 for p in per_label if p["detected"])
    fp_list = sorted(fp.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "labels_total": n_lab,
        "labels_detected": detected,
        "labels_missed": n_lab - detected,
        "recall": detected / n_lab if n_lab else 0.0,
        "findings_total": n_find,
        "findings_true": true_findings,
        "precision": true_findings / n_find if n_find else 0.0,
        "false_positives": {
            "count": n_find - true_findings,
            "by_rule": [{"rule": k, "count": v} for k, v in fp_list],
        },
        "labels": per_label,
        "missed": [p["id"] for p in per_label if not p["detected"]],
    }


def format_scorecard(card: dict[str, Any]) -> str:
    """Plain-text scorecard for the CLI."""
    lines = [
        f"recall {card['labels_detected']}/{card['labels_total']} = {card['recall']:.2f}   "
        f"precision {card['findings_true']}/{card['findings_total']} = {card['precision']:.2f}   "
        f"false positives {card['false_positives']['count']}"
    ]
    for p in card["labels"]:
        mark = "DETECTED" if p["detected"] else "missed  "
        by = ", ".join(c["title"] for c in p["caught_by"][:3])
        lines.append(f"  {mark} {p['id']}: {p['title']}" + (f"  <- {by}" if by else ""))
    for fp in card["false_positives"]["by_rule"]:
        lines.append(f"  FP x{fp['count']}: {fp['rule']}")
    return "\n".join(lines)
