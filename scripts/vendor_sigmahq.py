"""Copy SigmaHQ's Windows rules into the package (src/gridhunt/rules/sigmahq/).

Usage: python scripts/vendor_sigmahq.py ../shared/sigma
Keeps each rule file byte-identical (author and references stay with the rule, as DRL 1.1 asks)
and the Detection Rule License text beside them.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml

FOLDERS = ("rules", "rules-emerging-threats", "rules-threat-hunting", "rules-compliance", "rules-placeholder")


def main(src: Path) -> None:
    dest = Path(__file__).resolve().parents[1] / "src" / "gridhunt" / "rules" / "sigmahq"
    if dest.exists():
        shutil.rmtree(dest)
    n = 0
    for folder in FOLDERS:
        for f in sorted((src / folder).rglob("*.yml")):
            doc = yaml.load(f.read_bytes(), Loader=yaml.CSafeLoader)
            if not isinstance(doc, dict) or (doc.get("logsource") or {}).get("product") != "windows":
                continue
            target = dest / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
            n += 1
    shutil.copyfile(src / "LICENSE.Detection.Rules.md", dest / "LICENSE.Detection.Rules.md")
    commit = next(
        (line.split(":", 1)[1].strip() for line in (src / "SOURCE.txt").read_text().splitlines()
         if line.startswith("Commit ")),
        "unknown",
    )
    (dest / "SOURCE.md").write_text(
        "# SigmaHQ Windows rules\n\n"
        f"{n} rules with `logsource.product: windows`, copied unchanged from github.com/SigmaHQ/sigma "
        f"at commit {commit} (folders: {', '.join(FOLDERS)}).\n"
        "Released under the Detection Rule License 1.1 (LICENSE.Detection.Rules.md): every rule keeps "
        "its author and references, and gridhunt shows them with every finding a rule produces.\n"
    )
    print(f"{n} rules copied to {dest}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/sigma"))
