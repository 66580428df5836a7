"""Synthetic utility environment and labelled vendor-compromise intrusion (`gridhunt demo`).

from gridhunt.demo import generate, score
manifest = generate(out_dir, seed=7, size="small")   # evidence/ + labels.json
card = score(labels, findings, evidence_root)        # recall / precision scorecard
"""

from gridhunt.demo.generator import generate
from gridhunt.demo.scorecard import format_scorecard, score

__all__ = ["format_scorecard", "generate", "score"]
