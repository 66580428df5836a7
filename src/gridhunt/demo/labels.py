"""Ground truth for the demo: which records carry which intrusion step.

Labels come from the generator as it writes records, never from detectors. Each evidence
entry names a file relative to the evidence dir and a `source_ref` of the form `line N`
(1-based physical line, header lines counted) — the same convention the ingesters use.
`expect` lists a few fields the record must carry, so an analyst (and the tests) can
confirm the pointer lands on the record described.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gridhunt.demo.timeutil import iso_ms


@dataclass
class Label:
    id: str
    title: str
    attack: list[str]
    entities: list[str]
    description: str = ""
    evidence: list[tuple[str, int, int, dict[str, Any]]] = field(default_factory=list)


class LabelBook:
    def __init__(self) -> None:
        self._labels: dict[str, Label] = {}

    def define(
        self, id: str, title: str, attack: list[str], entities: list[str], description: str = ""
    ) -> str:
        if id in self._labels:
            raise ValueError(f"label {id} defined twice")
        self._labels[id] = Label(id, title, attack, entities, description)
        return id

    def add_entities(self, id: str, *entities: str) -> None:
        lab = self._labels[id]
        for e in entities:
            if e not in lab.entities:
                lab.entities.append(e)

    def evidence(self, id: str, rel: str, line: int, ts: int, expect: dict[str, Any]) -> None:
        self._labels[id].evidence.append((rel, line, ts, expect))

    def to_json(self) -> list[dict[str, Any]]:
        out = []
        for lab in sorted(self._labels.values(), key=lambda x: x.id):
            if not lab.evidence:
                raise ValueError(f"label {lab.id} has no evidence records")
            ev = sorted(lab.evidence, key=lambda e: (e[0], e[1]))
            out.append(
                {
                    "id": lab.id,
                    "title": lab.title,
                    "attack": lab.attack,
                    "ts_first": iso_ms(min(e[2] for e in ev)),
                    "ts_last": iso_ms(max(e[2] for e in ev)),
                    "entities": lab.entities,
                    "description": lab.description,
                    "evidence": [
                        {"source_file": rel, "source_ref": f"line {line}", "expect": expect}
                        for rel, line, _ts, expect in ev
                    ],
                }
            )
        return out
