"""Update integrity: was every update applied in the incident window the vendor's genuine artifact?

For each row of `updates` (the update log) inside the window:

  artifact       the file the log names is there (paths were resolved against the log's folder)
  hash           its SHA-256 equals the vendor manifest's (`manifest.sha256` in sha256sum format beside
                 the artifacts, a `manifest:` on the register's update_channel entry, or --manifest)
                 and the hash the update log recorded
  signature      the detached signature verifies over the artifact and was made by a signer the
                 register's update_channel entry names (signing_key / certificate / fingerprint /
                 pgp_key / sigstore_identity), with its certificate valid at signing time
                 (gridhunt.assess.signatures)
  custody        the download shows in the evidence from a registered update channel: the artifact's
                 name or hash in `http` (uri) / `files` (filename, sha256), or TLS / HTTP sessions to the
                 channel host (`tls` server_name + `conn`, `http` host) in the days before it was applied

One verdict per update, the first that holds: no artifact, mismatch, unsigned, unknown signer,
no custody evidence, verified; with every reason found on the way. The window is the vendor's
incident window from the register (`--window` overrides it for every vendor); updates outside it
are checked as well and listed as outside the window, but give no findings.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml

from gridhunt.assess.signatures import SignatureCheck, Signer, check_signature, load_signers
from gridhunt.report.findings import Finding

VERDICTS = ("verified", "mismatch", "unsigned", "unknown signer", "no artifact", "no custody evidence")
RULES = {
    "mismatch": ("assess.update_mismatch", "critical", "Update applied whose artifact does not match the vendor's"),
    "unknown signer": (
        "assess.update_unknown_signer",
        "high",
        "Update applied whose signature is not by a registered vendor signer",
    ),
    "unsigned": ("assess.update_unsigned", "medium", "Update applied without a signature"),
    "no artifact": ("assess.update_no_artifact", "medium", "Update applied whose artifact is not in the evidence"),
    "no custody evidence": (
        "assess.update_no_custody",
        "low",
        "Update applied with no evidence it came from a registered update channel",
    ),
}
ATTACK = ("T1195.002", "T0862")
FIRMWARE_ATTACK = "T0839"  # Module Firmware: only for firmware images
DEFAULT_LOOKBACK = timedelta(days=14)
CLOCK_SKEW = timedelta(minutes=5)  # a download logged just after the apply time is the same download
MANIFEST_NAMES = ("manifest.sha256", "SHA256SUMS", "sha256sums.txt")
MAX_CUSTODY_ROWS = 10  # custody records kept per update (the count stays in the reason)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REF = re.compile(r"^vendors\[(\d+)\]\.access\[(\d+)\]$")
_FIRMWARE = re.compile(r"firmware|(^|[^a-z])fw([^a-z]|$)", re.IGNORECASE)


@dataclass
class UpdateVerdict:
    ts_applied: datetime
    target: str
    product: str
    version: str
    vendor: str | None
    channel: str | None
    artifact: str | None  # path as resolved at ingest
    signature: str | None
    source_file: str
    source_ref: str
    in_window: bool = False
    window: tuple[datetime | None, datetime | None] | None = None
    verdict: str = "verified"
    reasons: list[str] = field(default_factory=list)
    logged_sha256: str | None = None
    actual_sha256: str | None = None
    manifest_sha256: str | None = None
    manifest: str | None = None  # "path line N" of the manifest entry
    signature_format: str | None = None
    signature_status: str | None = None  # valid | untrusted | content | invalid | error (assess.signatures)
    signer: str | None = None
    signer_where: str | None = None  # register entry vouching for the signer
    signing_time: datetime | None = None
    cert_valid_at_signing: bool | None = None
    expected_signers: list[str] = field(default_factory=list)  # what the register says may sign
    custody: str = "not checked"  # ok | foreign source | none | not checked
    custody_evidence: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # input problems of this entry

    @property
    def entry(self) -> str:
        """How errors name this update: 'updates.csv line 4 (pc-col-01 MeterCo Firmware 4.2.0)'."""
        return f"{Path(self.source_file).name} {self.source_ref} ({self.target} {self.product} {self.version})"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("ts_applied", "signing_time"):
            d[k] = _iso(d[k])
        d["window"] = [_iso(t) for t in self.window] if self.window else None
        return d


@dataclass
class UpdateReport:
    verdicts: list[UpdateVerdict]
    errors: list[str] = field(default_factory=list)  # every input problem, each naming its entry
    notes: list[str] = field(default_factory=list)
    window: tuple[datetime | None, datetime | None] | None = None  # the --window override

    def summary(self) -> dict[str, Any]:
        inside = [v for v in self.verdicts if v.in_window]
        by = Counter(v.verdict for v in inside)
        return {
            "updates": len(self.verdicts),
            "in_window": len(inside),
            "outside_window": len(self.verdicts) - len(inside),
            "by_verdict": {k: by.get(k, 0) for k in VERDICTS},
            "errors": self.errors,
            "notes": self.notes,
        }


# ---------------------------------------------------------------- entry points


def verify_updates(
    case: Any,
    window: tuple[datetime | None, datetime | None] | None = None,
    manifest: Path | None = None,
    trusted_root: Path | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> list[UpdateVerdict]:
    """One verdict per row of the case's update log (see check_updates)."""
    return check_updates(case, window, manifest, trusted_root, lookback).verdicts


def check_updates(
    case: Any,
    window: tuple[datetime | None, datetime | None] | None = None,
    manifest: Path | None = None,
    trusted_root: Path | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> UpdateReport:
    """Verdicts for every update in the case, and every input problem met (each naming its entry;
    the other entries are still checked). `window` overrides the vendors' incident windows;
    `manifest` / `trusted_root` the register's. A --manifest that cannot be read raises ValueError."""
    report = UpdateReport([], window=window)
    forced = _Manifest.load(manifest) if manifest is not None else None
    if forced is not None:
        if forced.fatal:
            raise ValueError(f"--manifest {manifest}: {forced.fatal}")
        report.errors.extend(forced.errors)
    if trusted_root is not None and not Path(trusted_root).is_file():
        raise ValueError(f"--trusted-root {trusted_root}: no such file")
    register = _Register.load(case)
    manifests: dict[Path, _Manifest] = {}
    artifacts = _Artifacts()
    verdicts = [_new_verdict(r) for r in _update_rows(case)]
    for v in verdicts:
        v.expected_signers = [s.label for s in register.signers(v.vendor)]
        _judge_window(v, window, register)
        _check_files(v, register, forced, manifests, artifacts, trusted_root)
    _check_custody(case, verdicts, register, lookback, report.notes)
    for v in verdicts:
        v.verdict = _verdict(v)
    # register problems first, then the manifests', then each update's, in update-log order
    report.errors[:0] = register.errors
    report.errors.extend(e for m in manifests.values() for e in m.errors)
    report.errors.extend(f"{v.entry}: {e}" for v in verdicts for e in v.errors)
    report.verdicts = verdicts
    return report


def assess_updates(case: Any) -> tuple[list[Finding], dict[str, Any]]:
    """For the hunt: findings of the updates in the vendors' windows and the summary.json section.
    A failure here is reported in the summary, never stops the hunt."""
    try:
        report = check_updates(case)
    except Exception as exc:  # noqa: BLE001 - one broken check must not lose the hunt's other findings
        return [], {"error": f"{type(exc).__name__}: {exc}"}
    return update_findings(report.verdicts), report.summary()


def parse_window(text: str) -> tuple[datetime | None, datetime | None]:
    """'START..END' (ISO dates or times, UTC when no zone; either side may be empty). A date-only END
    takes in that whole day."""
    if ".." not in text:
        raise ValueError(f"--window: expected START..END, got {text!r}")
    a, b = (s.strip() for s in text.split("..", 1))
    start = _parse_ts(a, "START") if a else None
    end = _parse_ts(b, "END") if b else None
    if end is not None and len(b) == 10:
        end += timedelta(days=1) - timedelta(microseconds=1)
    if start and end and start > end:
        raise ValueError(f"--window: START {a} is after END {b}")
    return start, end


# ---------------------------------------------------------------- register


@dataclass
class _Channel:
    vendor: str
    identifier: str
    where: str
    hosts: list[str]
    signers: list[Signer]
    manifest: Path | None = None
    trusted_root: Path | None = None


@dataclass
class _Register:
    windows: dict[str, tuple[datetime | None, datetime | None]]  # lower-cased vendor -> incident window
    names: dict[str, str]  # lower-cased vendor -> as registered
    channels: dict[str, list[_Channel]]  # lower-cased vendor -> its update channels
    errors: list[str]

    @classmethod
    def load(cls, case: Any) -> _Register:
        reg = cls({}, {}, {}, [])
        for vendor, start, end in case.con.execute(
            "SELECT vendor, incident_start, incident_end FROM vendors ORDER BY vendor"
        ).fetchall():
            reg.names[vendor.lower()] = vendor
            if start is not None or end is not None:
                reg.windows[vendor.lower()] = (_utc(start), _utc(end))
        rows = case.con.execute(
            "SELECT vendor, identifier, source_file, source_ref FROM vendor_access "
            "WHERE kind = 'update_channel' ORDER BY source_file, source_ref"
        ).fetchall()
        docs: dict[str, Any] = {}
        for vendor, ident, source_file, source_ref in rows:
            where = f"{Path(source_file).name} {source_ref}"
            if source_file not in docs:
                docs[source_file] = _read_register(Path(source_file), reg.errors)
            entry = _entry_at(docs[source_file], source_ref)
            ch = _Channel(vendor, ident, where, _hosts(ident, entry or {}, where, reg.errors), [])
            if docs[source_file] is not None and entry is None:
                why = "no longer in the file; its signers unread"
                reg.errors.append(f"{where} ({vendor} update channel {ident}): {why}")
            if entry is not None:
                _channel_files(ch, entry, Path(source_file).parent, reg.errors)
            reg.channels.setdefault(vendor.lower(), []).append(ch)
        return reg

    def signers(self, vendor: str | None) -> list[Signer]:
        return [s for ch in self.channels.get((vendor or "").lower(), []) for s in ch.signers]

    def hosts(self, vendor: str | None) -> list[str]:
        return sorted({h for ch in self.channels.get((vendor or "").lower(), []) for h in ch.hosts})


def _read_register(path: Path, errors: list[str]) -> Any:
    """The register file as YAML data, None (with an error) when it no longer reads."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        errors.append(f"{path.name}: unreadable ({exc.strerror or exc}): signers and manifests of its update "
                      "channels not read")  # fmt: skip
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        errors.append(f"{path.name}:{line} YAML syntax error ({getattr(exc, 'problem', None) or exc}): signers and "
                      "manifests of its update channels not read")  # fmt: skip
    return None


def _entry_at(doc: Any, ref: str) -> dict[str, Any] | None:
    m = _REF.match(ref or "")
    if m is None or not isinstance(doc, dict):
        return None
    try:
        entry = doc["vendors"][int(m.group(1))]["access"][int(m.group(2))]
    except (KeyError, IndexError, TypeError):
        return None
    return entry if isinstance(entry, dict) else None


def _hosts(ident: str, entry: dict[str, Any], where: str, errors: list[str]) -> list[str]:
    """Host names / addresses of a channel: its identifier (a host or URL), `hosts:` and `urls:`."""
    out = []
    extra = []
    for key in ("hosts", "urls", "url"):
        value = entry.get(key)
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(x, str) for x in items):
            errors.append(f"{where}: {key}: expected a list of host names / URLs, got {value!r}")
            continue
        extra.extend(items)
    for item in [ident, *extra]:
        host = urlsplit(item).hostname if "://" in item else item.split("/")[0].rsplit(":", 1)[0]
        host = (host or "").strip().lower().rstrip(".").removeprefix("*.")
        if host and host not in out:
            out.append(host)
    return out


def _channel_files(ch: _Channel, entry: dict[str, Any], base: Path, errors: list[str]) -> None:
    named = f"{ch.where} ({ch.vendor} update channel {ch.identifier})"
    signers, problems = load_signers(ch.vendor, ch.where, entry, base)
    ch.signers = signers
    errors.extend(f"{named}: {p}" for p in problems)
    for key in ("manifest", "trusted_root"):
        value = entry.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            errors.append(f"{named}: {key}: expected a file path, got {value!r}")
            continue
        path = Path(value) if Path(value).is_absolute() else base / value
        if not path.is_file():
            errors.append(f"{named}: {key}: {value}: no such file")
            continue
        setattr(ch, key, path)


# ---------------------------------------------------------------- manifest


@dataclass
class _Manifest:
    path: Path
    entries: dict[str, tuple[str, int]]  # file name (lower-cased) -> (sha256, line)
    errors: list[str]
    fatal: str | None = None

    @classmethod
    def load(cls, path: Path) -> _Manifest:
        """sha256sum output ('<hex>  name' or '<hex> *name') or BSD style ('SHA256 (name) = <hex>').
        A bad line is an error naming it; the other lines still count."""
        m = cls(Path(path), {}, [])
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            m.fatal = f"unreadable ({exc.strerror or exc})"
            return m
        for n, line in enumerate(text.splitlines(), 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            gnu = re.match(r"^([0-9A-Fa-f]{64}) [ *](.+)$", s)
            bsd = re.match(r"^SHA256 \((.+)\) = ([0-9A-Fa-f]{64})$", s)
            if gnu:
                sha, name = gnu.group(1), gnu.group(2)
            elif bsd:
                name, sha = bsd.group(1), bsd.group(2)
            else:
                m.errors.append(f"{m.path.name} line {n}: not '<sha256>  <file name>': {s[:80]!r}")
                continue
            m.entries[PurePosixPath(name.strip().replace("\\", "/")).name.lower()] = (sha.lower(), n)
        return m


def _manifest_for(
    v: UpdateVerdict, art: Path, forced: _Manifest | None, register: _Register, cache: dict[Path, _Manifest]
) -> _Manifest | None:
    if forced is not None:
        return forced
    paths = [ch.manifest for ch in register.channels.get((v.vendor or "").lower(), []) if ch.manifest]
    paths += [art.parent / n for n in MANIFEST_NAMES if (art.parent / n).is_file()]
    if not paths:
        return None
    if paths[0] not in cache:
        cache[paths[0]] = _Manifest.load(paths[0])
    m = cache[paths[0]]
    if m.fatal:
        v.errors.append(f"manifest {m.path}: {m.fatal}")
        return None
    return m


# ---------------------------------------------------------------- per update: window, files, signature


def _update_rows(case: Any) -> list[dict[str, Any]]:
    cur = case.con.execute(
        "SELECT ts_applied, target, product, version, vendor, artifact_sha256, signature_ref, channel, "
        "artifact_path, source_file, source_ref FROM updates "
        "ORDER BY ts_applied, target, source_file, TRY_CAST(regexp_extract(source_ref, '\\d+') AS BIGINT)"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _new_verdict(r: dict[str, Any]) -> UpdateVerdict:
    return UpdateVerdict(
        ts_applied=_utc(r["ts_applied"]),
        target=r["target"],
        product=r["product"],
        version=r["version"],
        vendor=r["vendor"],
        channel=r["channel"],
        artifact=r["artifact_path"],
        signature=r["signature_ref"],
        source_file=r["source_file"],
        source_ref=r["source_ref"],
        logged_sha256=r["artifact_sha256"],
    )


def _judge_window(
    v: UpdateVerdict, override: tuple[datetime | None, datetime | None] | None, register: _Register
) -> None:
    key = (v.vendor or "").lower()
    if override is not None:
        v.window = override
    elif key in register.windows:
        v.window = register.windows[key]
    else:
        if not v.vendor:
            why = "the update log names no vendor"
        elif key in register.names:
            why = f"vendor {v.vendor!r} has no incident window in the register"
        else:
            why = f"vendor {v.vendor!r} is not in the vendor register"
        v.reasons.append(f"outside window: {why} (--window checks it)")
        return
    start, end = v.window
    v.in_window = (start is None or v.ts_applied >= start) and (end is None or v.ts_applied <= end)
    if not v.in_window:
        v.reasons.append(f"outside window {_when(start) or '…'} .. {_when(end) or '…'}")


class _Artifacts:
    """SHA-256 of every artifact read; the bytes of the last one (rows of one rollout are adjacent)."""

    def __init__(self) -> None:
        self.hashes: dict[str, str] = {}
        self._last: tuple[str, bytes] | None = None

    def read(self, path: str) -> bytes:
        if self._last is not None and self._last[0] == path:
            return self._last[1]
        data = Path(path).read_bytes()
        self.hashes[path] = hashlib.sha256(data).hexdigest()
        self._last = (path, data)
        return data


def _check_files(
    v: UpdateVerdict,
    register: _Register,
    forced: _Manifest | None,
    manifests: dict[Path, _Manifest],
    artifacts: _Artifacts,
    trusted_root: Path | None,
) -> None:
    if not v.artifact:
        v.reasons.append("no artifact: the update log names no artifact file")
        return
    if "://" in v.artifact:
        v.reasons.append(f"no artifact: {v.artifact} is a URL; put the file in the evidence to verify it")
        return
    art = Path(v.artifact)
    try:
        data = artifacts.read(v.artifact)
    except FileNotFoundError:
        v.reasons.append(f"no artifact: {art.name} not found ({art})")
        return
    except OSError as exc:
        v.errors.append(f"artifact {art}: unreadable ({exc.strerror or exc})")
        v.reasons.append(f"no artifact: {art.name} unreadable")
        return
    v.actual_sha256 = actual = artifacts.hashes[v.artifact]
    if v.logged_sha256 and v.logged_sha256 != actual:
        shown = v.logged_sha256 if _SHA256.match(v.logged_sha256) else f"{v.logged_sha256!r} (not a SHA-256)"
        v.reasons.append(f"hash: the update log recorded {shown}, the artifact file hashes to {actual}")
    m = _manifest_for(v, art, forced, register, manifests)
    if m is None:
        v.reasons.append(f"manifest: none found for {art.name} (looked for {', '.join(MANIFEST_NAMES)} beside it)")
    elif art.name.lower() not in m.entries:
        v.reasons.append(f"manifest: {art.name} is not listed in {m.path.name}")
    else:
        sha, line = m.entries[art.name.lower()]
        v.manifest_sha256, v.manifest = sha, f"{m.path} line {line}"
        if sha != actual:
            where = f"{m.path.name} line {line}"
            v.reasons.append(f"hash: sha256 {actual} differs from the vendor manifest's {sha} ({where})")
        else:
            v.reasons.append(f"hash: matches the vendor manifest ({m.path.name} line {line})")
    _check_sig(v, data, register, trusted_root)


def _check_sig(v: UpdateVerdict, data: bytes, register: _Register, trusted_root: Path | None) -> None:
    if not v.signature:
        v.reasons.append("signature: none")
        return
    sig_path = Path(v.signature)
    try:
        sig = sig_path.read_bytes()
    except FileNotFoundError:
        v.errors.append(f"signature {sig_path.name}: no such file ({sig_path})")
        v.reasons.append(f"signature: {sig_path.name} named in the update log but not found")
        v.signature = None
        return
    except OSError as exc:
        v.errors.append(f"signature {sig_path}: unreadable ({exc.strerror or exc})")
        v.reasons.append(f"signature: {sig_path.name} unreadable")
        v.signature = None
        return
    signers = register.signers(v.vendor)
    root = trusted_root or next(
        (ch.trusted_root for ch in register.channels.get((v.vendor or "").lower(), []) if ch.trusted_root), None
    )
    chk: SignatureCheck = check_signature(sig, data, signers, v.ts_applied, root)
    v.signature_format, v.signer, v.signer_where = chk.format, chk.signer, chk.signer_where
    v.signing_time, v.cert_valid_at_signing = chk.signing_time, chk.cert_valid_at_signing
    v.signature_status = chk.status
    if chk.error:
        v.errors.append(f"signature {sig_path.name}: {chk.error}")
    by = f" by {chk.signer}" if chk.signer else ""
    lead = {
        "valid": f"signature: {chk.format}{by} verifies",
        "untrusted": f"signature: {chk.format}{by}: signer not accepted",
        "content": f"signature: {chk.format}{by} shows the artifact changed after signing",
        "invalid": f"signature: {chk.format} does not verify",
        "error": f"signature: {chk.format} not checked",
    }[chk.status]
    v.reasons.append(lead)
    if not signers:
        v.reasons.append(f"  no usable signer registered for vendor {v.vendor!r} (update_channel signing_key etc.)")
    v.reasons.extend(f"  {r}" for r in chk.reasons if not r.startswith(("signature not checked", "raw signature not")))
    if chk.error:
        v.reasons.append(f"  {chk.error}")


# ---------------------------------------------------------------- custody


def _check_custody(
    case: Any, verdicts: list[UpdateVerdict], register: _Register, lookback: timedelta, notes: list[str]
) -> None:
    have = {t: _count(case, t) for t in ("http", "files", "tls")}
    if not any(have.values()):
        notes.append("custody not checked: the case holds no http, files or tls records")
        for v in verdicts:
            v.reasons.append("custody: not checked (no http / files / tls records in the case)")
        return
    names = sorted({Path(v.artifact).name.lower() for v in verdicts if v.artifact})
    hashes = sorted({h for v in verdicts for h in (v.actual_sha256, v.logged_sha256) if h and _SHA256.match(h)})
    all_hosts = sorted({h for chs in register.channels.values() for ch in chs for h in ch.hosts})
    artifact_rows = _artifact_sightings(case, names, hashes, have)
    channel_rows = _channel_sessions(case, all_hosts, have)
    for v in verdicts:
        lo, hi = v.ts_applied - lookback, v.ts_applied + CLOCK_SKEW
        hosts = register.hosts(v.vendor)
        name = Path(v.artifact).name.lower() if v.artifact else None
        mine = {x for x in (v.actual_sha256, v.logged_sha256) if x}
        seen = [r for r in artifact_rows if lo <= r["ts"] <= hi and (r["name"] == name or r["sha256"] in mine)]
        good = [r for r in seen if _registered(r["from"], hosts)]
        foreign = [r for r in seen if not _registered(r["from"], hosts)]
        # a request to the channel that names another known artifact is that artifact's download, not this one's
        sessions = [
            r
            for r in channel_rows
            if lo <= r["ts"] <= hi and _registered(r["from"], hosts) and (r["name"] == name or r["name"] not in names)
        ]
        if not hosts:
            v.reasons.append(f"custody: vendor {v.vendor!r} has no registered update channel")
        if good:
            v.custody = "ok"
            v.reasons.append(f"custody: {_seen(good)}")
            if foreign:
                v.reasons.append(f"custody: also fetched from an unregistered source: {_seen(foreign)}")
            rows = good + foreign
        elif foreign:
            v.custody = "foreign source"
            v.reasons.append(f"custody: foreign source: {_seen(foreign)}; not a registered update channel")
            rows = foreign
        elif sessions:
            v.custody = "ok"
            v.reasons.append(
                f"custody: {len(sessions)} session(s) to registered channel "
                f"{', '.join(sorted({r['from'] for r in sessions}))} in the {_span(lookback)} before it was "
                f"applied, the last at {_when(max(r['ts'] for r in sessions))} (content not visible)"
            )
            rows = sessions
        else:
            v.custody = "none"
            v.reasons.append(
                f"custody: no download of {Path(v.artifact).name if v.artifact else 'the artifact'} and no session "
                f"to a registered update channel in the {_span(lookback)} before it was applied"
            )
            rows = []
        rows = sorted(rows, key=lambda r: r["ts"], reverse=True)[:MAX_CUSTODY_ROWS]
        v.custody_evidence = [e for r in rows for e in r["evidence"]]


def _count(case: Any, table: str) -> int:
    return int(case.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _artifact_sightings(case: Any, names: list[str], hashes: list[str], have: dict[str, int]) -> list[dict[str, Any]]:
    """http requests whose URI path ends in an artifact's name; files records by name or SHA-256.
    'from' is where it came from: the HTTP host / TLS server name of the connection, else its address."""
    out: list[dict[str, Any]] = []
    if names and have["http"]:
        cond = " OR ".join("contains(lower(uri), ?)" for _ in names)
        for ts, host, dst, uri, src, sf, sr in case.con.execute(
            f"SELECT ts, host, dst_ip, uri, src_ip, source_file, source_ref FROM http WHERE {cond}", names
        ).fetchall():
            base = PurePosixPath(urlsplit(uri or "").path).name.lower()
            if base in names:
                out.append(_row(ts, (host or dst or "").lower(), base, None, "http", sf, sr, f"{src} GET {uri}"))
    if (names or hashes) and have["files"]:
        sql = """SELECT f.ts, lower(f.filename), lower(f.sha256), f.tx_hosts, f.rx_hosts, f.source_file, f.source_ref,
                   (SELECT any_value(h.host) FROM http h WHERE h.uid = f.uid AND f.uid IS NOT NULL),
                   (SELECT any_value(t.server_name) FROM tls t WHERE t.uid = f.uid AND f.uid IS NOT NULL)
                 FROM files f WHERE list_contains(?, lower(f.sha256)) OR list_contains(?, lower(f.filename))"""
        for ts, fname, sha, tx, rx, sf, sr, host, sni in case.con.execute(sql, [hashes, names]).fetchall():
            frm = (host or sni or tx or "").lower()
            out.append(_row(ts, frm, fname, sha, "files", sf, sr, f"{tx} -> {rx}"))
    return out


def _channel_sessions(case: Any, hosts: list[str], have: dict[str, int]) -> list[dict[str, Any]]:
    """TLS sessions (with their conn record) and HTTP requests to any registered channel host."""
    if not hosts:
        return []
    out: list[dict[str, Any]] = []
    match = " OR ".join("(lower({c}) = ? OR ends_with(lower({c}), ?))" for _ in hosts)
    params = [x for h in hosts for x in (h, "." + h)]
    if have["tls"]:
        sql = f"""SELECT t.ts, lower(t.server_name), t.src_ip, t.source_file, t.source_ref, c.source_file, c.source_ref
                  FROM tls t LEFT JOIN (SELECT uid, any_value(source_file) AS source_file,
                                        any_value(source_ref) AS source_ref FROM conn
                                        WHERE uid IS NOT NULL GROUP BY uid) c ON c.uid = t.uid
                  WHERE {match.format(c="t.server_name")}"""
        for ts, sni, src, sf, sr, cf, cr in case.con.execute(sql, params).fetchall():
            r = _row(ts, sni, None, None, "tls", sf, sr, f"{src} -> {sni}")
            if cf:
                r["evidence"].append({"source_file": cf, "source_ref": cr, "ts": _iso(_utc(ts)), "table": "conn"})
            out.append(r)
    if have["http"]:
        sql = f"SELECT ts, lower(host), src_ip, uri, source_file, source_ref FROM http WHERE {match.format(c='host')}"
        for ts, host, src, uri, sf, sr in case.con.execute(sql, params).fetchall():
            base = PurePosixPath(urlsplit(uri or "").path).name.lower()
            out.append(_row(ts, host, base, None, "http", sf, sr, f"{src} GET {uri}"))
    return out


def _row(ts: Any, frm: str, name: str | None, sha: str | None, table: str, sf: str, sr: str, what: str) -> dict:
    t = _utc(ts)
    ev = {"source_file": sf, "source_ref": sr, "ts": _iso(t), "table": table, "what": what}
    return {"ts": t, "from": frm, "name": name, "sha256": sha, "evidence": [ev]}


def _registered(frm: str, hosts: list[str]) -> bool:
    frm = (frm or "").lower().rstrip(".")
    return any(frm == h or frm.endswith("." + h) for h in hosts) or any(h in frm.split(",") for h in hosts)


def _seen(rows: list[dict[str, Any]]) -> str:
    last = max(rows, key=lambda r: r["ts"])
    ev = last["evidence"][0]
    more = f" (+{len(rows) - 1} more)" if len(rows) > 1 else ""
    return (
        f"fetched from {last['from'] or '?'} at {_when(last['ts'])} "
        f"({ev['table']} {Path(ev['source_file']).name} {ev['source_ref']}){more}"
    )


# ---------------------------------------------------------------- verdict and findings


def _verdict(v: UpdateVerdict) -> str:
    status = v.signature_status
    if v.actual_sha256 is None:
        return "no artifact"
    hash_bad = (v.logged_sha256 and v.logged_sha256 != v.actual_sha256) or (
        v.manifest_sha256 is not None and v.manifest_sha256 != v.actual_sha256
    )
    if hash_bad or status == "content":
        return "mismatch"
    if not v.signature or status is None:
        return "unsigned"
    if status != "valid":
        return "unknown signer"
    if v.custody in ("none", "foreign source"):
        return "no custody evidence"
    return "verified"


def update_findings(verdicts: list[UpdateVerdict]) -> list[Finding]:
    """One finding per verdict, vendor, product, version and artifact among the updates inside the
    window: a rollout to 24 collectors of one tampered image is one finding with 24 update records."""
    groups: dict[tuple[Any, ...], list[UpdateVerdict]] = {}
    for v in verdicts:
        if v.in_window and v.verdict != "verified":
            key = (v.verdict, v.custody, v.vendor, v.product, v.version, v.artifact, v.actual_sha256)
            groups.setdefault(key, []).append(v)
    out = []
    for (verdict, custody, vendor, product, version, artifact, actual), vs in groups.items():
        rule, severity, title = RULES[verdict]
        first = vs[0]
        if verdict == "unsigned" and first.expected_signers:
            severity = "high"  # the register names a signer: this vendor's updates should be signed
        if verdict == "no custody evidence" and custody == "foreign source":
            severity, title = "high", "Update artifact fetched from a source that is not a registered update channel"
        name = Path(artifact).name if artifact else None
        evidence: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for v in vs:
            for ev in [{"source_file": v.source_file, "source_ref": v.source_ref, "ts": _iso(v.ts_applied),
                        "table": "updates", "fields": {"target": v.target, "version": v.version}},
                       *v.custody_evidence]:  # fmt: skip
                k = (ev["source_file"], ev["source_ref"])
                if k not in seen:
                    seen.add(k)
                    evidence.append(ev)
        reasons: list[str] = []
        for v in vs:
            reasons.extend(r for r in v.reasons if r not in reasons)
        attack = [*ATTACK] + ([FIRMWARE_ATTACK] if _FIRMWARE.search(f"{product} {name or ''}") else [])
        out.append(
            Finding(
                detector="assess",
                rule_id=rule,
                title=title,
                severity=severity,
                attack=attack,
                entity=f"{product} {version}" + (f" ({name})" if name else ""),
                ts_first=min(v.ts_applied for v in vs),
                ts_last=max(v.ts_applied for v in vs),
                count=len(vs),
                evidence=evidence,
                details={
                    "verdict": verdict,
                    "vendor": vendor,
                    "product": product,
                    "version": version,
                    "artifact": artifact,
                    "targets": sorted({v.target for v in vs}),
                    "actual_sha256": actual,
                    "manifest_sha256": first.manifest_sha256,
                    "logged_sha256": first.logged_sha256,
                    "manifest": first.manifest,
                    "signature": first.signature,
                    "signature_format": first.signature_format,
                    "signer": first.signer,
                    "signing_time": _iso(first.signing_time),
                    "cert_valid_at_signing": first.cert_valid_at_signing,
                    "custody": custody,
                    "reasons": reasons[:40],
                },
            )
        )
    return out


# ---------------------------------------------------------------- small helpers


def _parse_ts(s: str, which: str) -> datetime:
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"--window: {which} is not an ISO date or time: {s!r}") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _span(d: timedelta) -> str:
    return f"{d.days} days" if d.days >= 1 else f"{int(d.total_seconds() // 3600)} hours"


def _utc(ts: Any) -> Any:
    return ts.astimezone(UTC) if isinstance(ts, datetime) else ts


def _when(ts: datetime | None) -> str | None:
    """Seconds are enough in a reason an analyst reads."""
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else None


def _iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z") if ts else None
