"""Update artifacts, the vendor's SHA-256 manifest and detached Ed25519 signatures.

The vendor release key is derived from the seed (see `context.derive_key`), so signatures
are byte-identical across runs. One artifact is tampered after signing: its bytes no longer
match `manifest.sha256` and its `.sig` no longer verifies — the update log records the hash
of what was actually applied, as an update agent would.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from gridhunt.demo.context import Change, derive_key
from gridhunt.demo.timeutil import MINUTE, iso_ms
from gridhunt.demo.world import World

UPDATES_HEADER = "ts_applied,target,product,version,vendor,artifact,artifact_sha256,signature,channel"


@dataclass
class UpdateRow:
    ts: int
    target: str
    product: str
    version: str
    vendor: str
    artifact: str  # relative to updates.csv
    sha256: str
    signature: str
    channel: str
    tampered: bool = False


def render_update(_ts: int, r: UpdateRow) -> str:
    return ",".join(
        (iso_ms(r.ts), r.target, r.product, r.version, r.vendor, r.artifact, r.sha256, r.signature, r.channel)
    )


def build_updates(w: World, evidence: Path, cal: dict[str, Change]) -> tuple[list[UpdateRow], list[str]]:
    """Write artifacts, manifest and signatures; return the update-log rows and written files."""
    rng = random.Random(f"{w.seed}:artifacts")
    key = derive_key(w.seed, "vendor-release")
    art_dir = evidence / "updates" / "artifacts"
    art_dir.mkdir(parents=True, exist_ok=True)
    slug = w.vendor_slug
    channel = f"updates.{w.vendor_domain}"
    written: list[str] = []
    manifest: list[tuple[str, str]] = []

    def blob(name: str, magic: bytes, size: int) -> bytes:
        return magic + name.encode() + b"\0" + rng.randbytes(size)

    def vendor_artifact(name: str, data: bytes, applied: bytes | None = None) -> tuple[str, str]:
        """Sign and list the genuine bytes; write `applied` (defaults to genuine) to disk."""
        manifest.append((hashlib.sha256(data).hexdigest(), name))
        (art_dir / f"{name}.sig").write_bytes(key.sign(data))
        on_disk = applied if applied is not None else data
        (art_dir / name).write_bytes(on_disk)
        written.extend([f"updates/artifacts/{name}", f"updates/artifacts/{name}.sig"])
        return hashlib.sha256(on_disk).hexdigest(), f"artifacts/{name}.sig"

    rows: list[UpdateRow] = []

    def rollout(
        change: str,
        first: int,
        step: int,
        targets: list[str],
        product: str,
        version: str,
        artifact: str,
        sha: str,
        sig: str,
        vendor: str = w.vendor,
        via: str = channel,
        tampered: bool = False,
    ) -> None:
        """One update-log row a target, `first` minutes into the change window then every `step`."""
        for i, target in enumerate(targets):
            rows.append(
                UpdateRow(
                    cal[change].start + (first + step * i) * MINUTE,
                    target,
                    product,
                    version,
                    vendor,
                    f"artifacts/{artifact}",
                    sha,
                    sig,
                    via,
                    tampered=tampered,
                )
            )

    he = f"{slug}-headend-7.4.3.pkg"
    sha, sig = vendor_artifact(he, blob(he, b"PK\x03\x04", 48 * 1024))
    rollout("headend_upgrade", 25, 0, [w.h("headend01").name], f"{w.vendor} HeadEnd", "7.4.3", he, sha, sig)
    c420 = f"{slug}-collector-fw-4.2.0.bin"
    sha, sig = vendor_artifact(c420, blob(c420, b"MCFW", 32 * 1024))
    collectors = [col.name for col in w.collectors]
    rollout("collector_fw_420", 20, 3, collectors, f"{w.vendor} Collector Firmware", "4.2.0", c420, sha, sig)
    mfw = f"{slug}-meter-fw-2.9.8.bin"
    sha, sig = vendor_artifact(mfw, blob(mfw, b"MCFW", 24 * 1024))
    meters = [f"meters@{fdr}" for fdr in w.feeders[:5]]
    rollout("meter_fw", 15, 25, meters, f"{w.vendor} Meter Firmware", "2.9.8", mfw, sha, sig)
    # The hotfix: the vendor's build system signed the genuine image, but the image served
    # from the breached update channel carries an implant appended after signing.
    c421 = f"{slug}-collector-fw-4.2.1.bin"
    genuine = blob(c421, b"MCFW", 32 * 1024)
    tampered = genuine[:-4096] + b"IMPL" + rng.randbytes(4092)
    sha, sig = vendor_artifact(c421, genuine, applied=tampered)
    rollout(
        "collector_fw_421", 30, 2, collectors, f"{w.vendor} Collector Firmware", "4.2.1", c421, sha, sig, tampered=True
    )
    # Another vendor's patch, installed by hand and unsigned: normal for that vendor, not an attack.
    dms = "gridos-dms-11.2.4.msp"
    dms_bytes = blob(dms, b"\xd0\xcf\x11\xe0", 40 * 1024)
    (art_dir / dms).write_bytes(dms_bytes)
    written.append(f"updates/artifacts/{dms}")
    dms_hosts = [w.h(key_name).name for key_name in ["dms01", "dms02"]]
    dms_sha = hashlib.sha256(dms_bytes).hexdigest()
    rollout("dms_patch", 10, 20, dms_hosts, "GridOS DMS", "11.2.4", dms, dms_sha, "", "GridOS Systems", "manual")
    (art_dir / "manifest.sha256").write_text(
        "".join(f"{h}  {n}\n" for h, n in sorted(manifest, key=lambda x: x[1])), encoding="utf-8"
    )
    written.append("updates/artifacts/manifest.sha256")
    rows.sort(key=lambda r: (r.ts, r.target))
    return rows, sorted(written)
