"""What the benchmark scripts share: each measurement in a fresh Python process (so its peak RSS is
its own), handed a JSON spec and writing a JSON result."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / (1024 * 1024)  # KiB on Linux, bytes on macOS


def run_child(script: Path, tmp: Path, n: int, kind: str, env: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    """Run `script --child KIND SPEC` in a new process (cwd `tmp`); `n` numbers the spec / result files.
    Returns the result the child wrote to spec['result_path']."""
    spec_path = tmp / f"spec-{n}.json"
    result_path = tmp / f"result-{n}.json"
    spec_path.write_text(json.dumps({**spec, "result_path": str(result_path)}))
    cmd = [sys.executable, str(script.resolve()), "--child", kind, str(spec_path)]
    proc = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True)
    if proc.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"{kind} child failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(result_path.read_text())
