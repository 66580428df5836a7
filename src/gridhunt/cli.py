"""gridhunt command line: thin wrappers over the library (hunt.py, sigma/, demo/)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.box import SIMPLE_HEAD
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gridhunt import __version__
from gridhunt.report.findings import SEVERITIES

app = typer.Typer(
    help="Hunt for a vendor compromise in a utility's evidence: Windows event logs (EVTX, JSON exports), "
    "Zeek, firewall/VPN and AMI audit logs go into one DuckDB case file; Sigma rules and analytics "
    "run over it; findings come out with the evidence that proves them.",
    no_args_is_help=True,
    add_completion=False,
)
rules_app = typer.Typer(help="Inspect Sigma rules: what loads, what converts, what is skipped and why.")
app.add_typer(rules_app, name="rules")
vendor_app = typer.Typer(
    help="A vendor's access paths after its breach: exposure per path, secrets rotation audit, risk ticket.",
    no_args_is_help=True,
)
app.add_typer(vendor_app, name="vendor")
console = Console(stderr=True)
SEV_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "informational": "dim"}


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


@app.callback(invoke_without_command=True)
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        print(__version__)
        raise typer.Exit()


@app.command()
def hunt(
    evidence: Annotated[list[Path], typer.Argument(help="Evidence files and folders (folders are read recursively).")],
    case: Annotated[
        Path | None, typer.Option("--case", help="Keep the DuckDB case file here for later commands.")
    ] = None,
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", help="Sigma rule files or folders (repeatable). Default: the packaged rules."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for findings.jsonl and summary.json.")] = Path(
        "gridhunt-out"
    ),
    placeholders: Annotated[
        Path | None,
        typer.Option("--placeholders", help="YAML: placeholder name → values, for rules using %name% (expand)."),
    ] = None,
    min_level: Annotated[
        str, typer.Option("--min-level", help="Run only rules at or above this level: " + ", ".join(SEVERITIES))
    ] = "informational",
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML with analytics thresholds to change (same shape as gridhunt/detect/defaults.yaml; "
            "see `gridhunt analytics`).",
        ),
    ] = None,
    geoip: Annotated[
        list[Path] | None,
        typer.Option(
            "--geoip",
            help="MaxMind-format .mmdb (GeoLite2 Country/City/ASN, repeatable). Default: the country+ASN "
            "data bundled with geoip2fast; a geoip.csv in the evidence (cidr,country,asn,org) wins over both.",
        ),
    ] = None,
) -> None:
    """Ingest EVIDENCE, run Sigma rules and the behavioural analytics over it and write
    OUT/findings.jsonl and OUT/summary.json.

    Example: gridhunt hunt ./evidence --case case.duckdb --out ./hunt-out
    """
    from gridhunt.detect.settings import SettingsError, load_settings
    from gridhunt.hunt import hunt as run_hunt
    from gridhunt.hunt import load_placeholders

    if min_level not in SEVERITIES:
        raise typer.BadParameter(f"--min-level must be one of {', '.join(SEVERITIES)}")
    try:
        values = load_placeholders(placeholders)
        load_settings(config)
        for g in geoip or []:
            _check_mmdb(g)
    except (OSError, ValueError, SettingsError) as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e
    started = time.perf_counter()
    with _progress() as progress:
        result = run_hunt(
            evidence,
            case_path=case,
            rule_paths=rules,
            out_dir=out,
            placeholders=values,
            min_level=min_level,
            progress=progress,
            on_stage=lambda s: console.log(s) if not console.is_terminal else None,
            settings_path=config,
            mmdb_paths=geoip or [],
        )
    for msg in result.ingest.messages():
        console.print(f"[yellow]![/] {msg}", highlight=False)
    for rule_id, why in result.run.rule_errors:
        console.print(f"[yellow]![/] rule {rule_id}: not run: {why}", highlight=False)
    for r in result.analytics.runs:
        if r.error:
            console.print(f"[yellow]![/] analytic {r.name}: failed: {r.error}", highlight=False)
    _print_summary(result.summary(), time.perf_counter() - started, out)


@app.command()
def analytics(
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Print the default settings YAML (a start for your --config file).")
    ] = False,
) -> None:
    """List the behavioural analytics: name, default severity, ATT&CK ids, what each finds and its
    settings. Change settings with `gridhunt hunt --config FILE` (only the keys you change)."""
    from gridhunt.detect import all_analytics
    from gridhunt.detect.settings import default_files, default_settings

    if defaults:
        print("\n".join(text.rstrip("\n") + "\n" for _, text in default_files()), end="")
        return
    settings = default_settings()
    t = Table(title="gridhunt analytics")
    for col in ("name", "severity", "ATT&CK", "finds", "settings (defaults)"):
        t.add_column(col, overflow="fold")
    for a in all_analytics():
        conf = ", ".join(f"{k}={v}" for k, v in settings.get(a.name, {}).items() if k != "enabled")
        t.add_row(a.name, a.severity, " ".join(a.attack), a.title, conf)
    Console().print(t)


@app.command()
def timeline(
    case: Annotated[Path, typer.Argument(help="A case file written by `gridhunt hunt --case FILE`.")],
    user: Annotated[str | None, typer.Option("--user", help="Account name (case-insensitive, no domain).")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Host name, short or fully qualified.")] = None,
    ip: Annotated[str | None, typer.Option("--ip", help="Source IP address.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per entry on stdout.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", help="Show at most this many entries.")] = None,
) -> None:
    """One account's, host's or address's authentication story: every logon attempt in time order
    with its geo, outcome, source and evidence record, and the findings that touch it.

    Example: gridhunt timeline case.duckdb --user mc.gcook
    """
    from gridhunt.case import Case
    from gridhunt.report.timeline import auth_timeline

    if not case.is_file():
        console.print(f"[red]error:[/] {case}: no such case file (write one with `gridhunt hunt --case {case}`)")
        raise typer.Exit(2)
    try:
        with Case.open(case, read_only=True) as c:
            entries = auth_timeline(c, user=user, host=host, ip=ip, limit=limit)
    except ValueError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e
    if as_json:
        for e in entries:
            print(json.dumps(e, default=str))
        return
    subject = user or host or ip
    t = Table(title=f"timeline: {subject} ({len(entries)} entries)")
    for col in ("time (UTC)", "outcome", "user", "from", "geo", "to", "how", "findings", "record"):
        t.add_column(col, overflow="fold")
    for e in entries:
        ts = e["ts"].strftime("%Y-%m-%d %H:%M:%S") if e["ts"] else "?"
        if e["kind"] == "finding":
            style = SEV_STYLE.get(e["severity"], "")
            t.add_row(
                ts,
                f"[{style}]{e['severity']}[/]",
                "",
                "",
                "",
                "",
                f"[{style}]{e['title']}[/]",
                e["rule_id"],
                f"{e['count']} events",
            )
            continue
        geo = "internal" if e["internal"] else " ".join(x for x in (e["country"], e["asn"], e["org"]) if x)
        how = " ".join(
            str(x)
            for x in (
                e["source"],
                e["event_id"],
                e["logon_type_name"] or e["logon_type"],
                e["auth_package"],
                e["service"],
            )
            if x
        )
        outcome = e["outcome"] + (f": {e['failure_reason']}" if e["failure_reason"] else "")
        style = {"failure": "yellow", "lockout": "red"}.get(e["outcome"], "")
        t.add_row(
            ts,
            f"[{style}]{outcome}[/]" if style else outcome,
            e["user"] or "",
            e["src_ip"] or e["src_host"] or "",
            geo,
            e["dst_host"] or "",
            how,
            ", ".join(e["findings"]),
            f"{Path(e['source_file']).name}:{e['source_ref']}",
        )
    Console().print(t)


@app.command()
def beacons(
    case: Annotated[Path, typer.Argument(help="A case file written by `gridhunt hunt --case FILE`.")],
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            help="score (strobes first, then highest score), connections, bytes (most first), first (first seen, "
            "oldest first) or last (last seen, most recent first).",
        ),
    ] = "score",
    min_score: Annotated[
        float,
        typer.Option(
            "--min-score",
            help="Only pairs scoring at least this, 0..1 (strobes are always listed). RITA's bands: 0.5 low, "
            "0.7 medium, 0.9 high; hunt reports from net.beacon.min_score (0.7).",
        ),
    ] = 0.5,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Also write the rows (every column) to this CSV file.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Show / export at most this many pairs.")] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML with analytics settings (net.beacon allow-lists, weights), as for hunt."),
    ] = None,
) -> None:
    """RITA-style beacon table. Every internal -> external pair (destination named by TLS
    SNI, HTTP Host or the source's own DNS answer, else its IP) is scored per 24 h window
    with RITA v5's model: timestamp, data-size, duration and histogram scores, 0.25 each.
    Each row shows the pair's best window, and connections, bytes, first / last seen over
    the whole case.

    A perfectly regular beacon of constant size scores 1.0; from 0.7 is RITA's medium
    band, from 0.9 its high band. Pairs with under 4 distinct connection times in every
    window are not scored; 86,400+ connections in a day make a strobe.

    Example: gridhunt beacons case.duckdb --min-score 0.8 --sort connections --csv b.csv
    """
    from gridhunt.case import Case
    from gridhunt.detect.beacon import SORTS, beacon_scores, write_csv
    from gridhunt.detect.settings import SettingsError, load_settings

    if sort not in SORTS:
        raise typer.BadParameter(f"--sort must be one of {', '.join(SORTS)}")
    if not case.is_file():
        console.print(f"[red]error:[/] {case}: no such case file (write one with `gridhunt hunt --case {case}`)")
        raise typer.Exit(2)
    try:
        settings = load_settings(config)
        with Case.open(case, read_only=True) as c:
            rows = beacon_scores(c, settings, min_score=min_score, sort=sort, limit=limit)
    except (OSError, ValueError, SettingsError) as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e
    if csv_path is not None:
        write_csv(rows, csv_path)
        console.print(f"{len(rows)} pairs written to {csv_path}")
    t = Table(title=f"beacons: {case.name} ({len(rows)} pairs, min score {min_score:g}, by {sort})", box=SIMPLE_HEAD)
    for col in ("score", "source", "destination", "ts", "ds", "dur", "hist", "conns", "bytes", "first seen",
                "last seen"):  # fmt: skip
        # numbers never wrap; addresses, names and times fold in a narrow terminal
        short = col not in ("source", "destination", "first seen", "last seen")
        t.add_column(col, overflow="fold", no_wrap=short, justify="right" if col in ("conns", "bytes") else "left")
    for r in rows:
        if r["score"] is None:
            score = "[red]strobe[/]"
        else:
            style = "red" if r["score"] >= 0.9 else "yellow" if r["score"] >= 0.7 else ""
            score = f"[{style}]{r['score']:.3f}[/]" if style else f"{r['score']:.3f}"
            score += " [red]strobe[/]" if r["strobe"] else ""
        comps = [f"{r[k]:.2f}" if r[k] is not None else "" for k in ("ts_score", "ds_score", "dur_score", "hist_score")]
        t.add_row(
            score,
            r["src_ip"],
            r["dst"] + ("" if r["kind"] == "ip" else f" ({', '.join((r['dst_ips'] or [])[:2])})"),
            *comps,
            f"{r['connections']:,}",
            _size(r["bytes_out"] + r["bytes_in"]),
            r["first_seen"].strftime("%Y-%m-%d %H:%M"),
            r["last_seen"].strftime("%Y-%m-%d %H:%M"),
        )
    Console().print(t)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return str(n)


def _check_mmdb(path: Path) -> None:
    import maxminddb
    from maxminddb.errors import InvalidDatabaseError

    try:
        maxminddb.open_database(str(path)).close()
    except (OSError, ValueError, InvalidDatabaseError) as e:
        raise ValueError(f"{path}: not a readable MaxMind database: {e}") from None


def _print_summary(s: dict, seconds: float, out: Path) -> None:
    ing, rules, fnd = s["ingest"], s["rules"], s["findings"]
    t = Table(title="gridhunt hunt", show_header=False, box=None)
    t.add_row("files read / skipped", f"{ing['files_read']} / {ing['files_skipped']}")
    t.add_row(
        "records ingested / bad / ignored",
        f"{ing['records_ok']:,} / {ing['records_bad']:,} / {ing.get('records_ignored', 0):,}",
    )
    t.add_row(
        "rules converted / skipped / no event source",
        f"{rules['rules_converted']} / {rules['rules_skipped']} / {rules['rules_without_event_source']}",
    )
    t.add_row("rules run / failed at run time", f"{rules['rules_run']} / {len(rules['rule_errors'])}")
    t.add_row("events matched", f"{s['events_matched']:,}")
    runs = s["analytics"]["analytics"]
    skipped = sum(1 for r in runs if "skipped_reason" in r)
    t.add_row("analytics run / skipped", f"{s['analytics']['analytics_run']} / {skipped}")
    sev = ", ".join(f"[{SEV_STYLE[k]}]{k} {v}[/]" for k, v in reversed(fnd["by_severity"].items()) if v)
    t.add_row("findings", f"{fnd['total']} ({sev or 'none'})")
    t.add_row("time", f"{seconds:.1f} s")
    t.add_row("written", f"{out / 'findings.jsonl'}, {out / 'summary.json'}")
    Console().print(t)


@rules_app.command("check")
def rules_check(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Rule files or folders. Default: the packaged rules.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    show: Annotated[str, typer.Option("--show", help="Which rules to list: skipped (default), all, none.")] = "skipped",
) -> None:
    """Load and convert rules; list every skipped rule with the reason, and the counts."""
    from gridhunt.sigma.ruleset import load_rules, packaged_rule_dirs

    rs = load_rules(paths or packaged_rule_dirs())
    if as_json:
        report = {
            **rs.summary(),
            "rules": [
                {
                    "rule_id": r.rule_id,
                    "title": r.title,
                    "level": r.level,
                    "path": r.path,
                    "event_source": bool(r.sources),
                }
                for r in rs.rules
            ],
            "correlations": [{"rule_id": c.rule_id, "title": c.title, "type": c.type} for c in rs.correlations],
            "skipped": [{"path": x.path, "rule": x.rule, "reason": x.reason} for x in rs.skipped],
        }
        json.dump(report, sys.stdout, indent=2)
        print()
        return
    out = Console()
    if show in ("all", "skipped"):
        for x in rs.skipped:
            out.print(
                f"[yellow]skipped[/] {x.path}{' (' + x.rule + ')' if x.rule else ''}: {x.reason}", highlight=False
            )
        for r in rs.unmapped:
            ls = ", ".join(f"{k}: {v}" for k, v in sorted(r.logsource.items()))
            out.print(f"[cyan]no event source[/] {r.path} ({ls})", highlight=False)
    if show == "all":
        for r in rs.rules:
            out.print(f"[green]converted[/] {r.rule_id} {r.level:<13} {r.title}", highlight=False)
    s = rs.summary()
    out.print(
        f"{s['rule_files']} files: {s['rules_converted']} rules converted, {s['correlation_rules']} correlation "
        f"rules, {s['rules_skipped']} skipped, {s['rules_without_event_source']} converted without a Windows "
        "event source"
    )


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for evidence/, labels.json, findings and scorecard.")
    ] = Path("gridhunt-demo"),
    seed: Annotated[int, typer.Option("--seed", help="Same seed, byte-identical evidence.")] = 7,
    size: Annotated[
        str, typer.Option("--size", help="small (~120k records, < 1 min) or large (>= 5M records).")
    ] = "small",
    generate_only: Annotated[bool, typer.Option("--generate-only", help="Write the evidence and labels only.")] = False,
) -> None:
    """Generate a synthetic electric + water utility with a labelled vendor-compromise intrusion,
    hunt it end to end and print the scorecard: each attack step detected or missed, false positives,
    precision and recall. Same seed, same files."""
    from gridhunt.demo.run import run_demo
    from gridhunt.demo.scorecard import format_scorecard

    if size not in ("small", "large", "tiny"):
        raise typer.BadParameter("--size must be small or large")
    with _progress() as progress:
        card = run_demo(out, seed=seed, size=size, generate_only=generate_only, progress=progress)
    if generate_only:
        m = card["manifest"]
        Console().print(
            f"evidence written to {out / 'evidence'} ({m.get('total_records', '?')} records) "
            f"in {card['seconds']['generate']:.1f} s; labels in {out / 'labels.json'}"
        )
        return
    Console().print(format_scorecard(card), highlight=False)
    Console().print(
        f"{card['events']:,} events hunted in {card['seconds']['total']:.1f} s; "
        f"written: {out / 'findings.jsonl'}, {out / 'scorecard.json'}, {out / 'labels.json'}"
    )


@app.command()
def segmentation(
    case: Annotated[Path, typer.Argument(help="A case file written by `gridhunt hunt --case FILE`.")],
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="zones.yaml to load first, replacing the case's zones and conduits."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print matrix, violations and counts as JSON.")] = False,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Also write every classified flow to this CSV file.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML with analytics settings (seg.* severities), as for hunt.")
    ] = None,
) -> None:
    """Judge every flow in CASE against the IEC 62443 zones / conduits policy: allowed, violation,
    unpoliced (internet traffic of a non-OT zone the policy says nothing about) or unknown zone.
    Prints the zone x zone matrix (rows: from, columns: to; flows / bytes; green allowed, red
    outside any conduit, dim no traffic) and the seg.* violations.

    Example: gridhunt segmentation case.duckdb --policy evidence/context/zones.yaml
    """
    from gridhunt.case import Case
    from gridhunt.detect import segmentation as seg
    from gridhunt.detect.settings import SettingsError, load_settings

    if not case.is_file():
        console.print(f"[red]error:[/] {case}: no such case file (write one with `gridhunt hunt --case {case}`)")
        raise typer.Exit(2)
    try:
        settings = load_settings(config)
        with Case.open(case) as c:
            if policy is not None:
                seg.load_policy(c, policy)
            if not c.con.execute("SELECT count(*) FROM zones").fetchall()[0][0]:
                raise ValueError(f"{case}: the case holds no zones; pass --policy zones.yaml")
            rep = seg.report(c, settings)
            if csv_path is not None:
                console.print(f"{seg.write_flows_csv(c, csv_path):,} flows written to {csv_path}")
    except seg.PolicyError as e:
        for msg in e.messages:
            console.print(f"[red]error:[/] {msg}", highlight=False)
        raise typer.Exit(2) from e
    except (OSError, ValueError, SettingsError) as e:
        console.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from e
    if as_json:
        print(json.dumps(rep.to_dict(), default=str))
        return
    for note in rep.classification.notes:
        console.print(f"[yellow]![/] {note}", highlight=False)
    style = {"allowed": "green", "violation": "bold red", "unknown-zone": "magenta", "conduit": "dim green",
             "none": "dim", "unpoliced": ""}  # fmt: skip
    m = rep.matrix
    by = rep.classification.by_status
    t = Table(
        title=f"zones: {rep.classification.flows:,} flows ("
        + ", ".join(f"{by.get(s, 0):,} {s}" for s in seg.STATUSES)
        + ")",
        caption="rows: from zone, columns: to zone; flows / bytes. green: allowed (conduit or same zone), "
        "red: outside any conduit, plain: internet traffic the policy does not police, dim: no traffic",
    )
    t.add_column("from \\ to", style="bold")
    for z in m.zones:
        t.add_column(z, overflow="fold")
    for a in m.zones:
        cells = [m.cell(a, b) for b in m.zones]
        t.add_row(a, *(f"[{style[x.status]}]{seg.cell_text(x)}[/]" if style[x.status] else seg.cell_text(x)
                       for x in cells))  # fmt: skip
    Console().print(t)
    v = Table(title=f"segmentation findings ({len(rep.findings)})")
    for col in ("severity", "rule", "from", "to", "proto/port", "flows (denied)", "bytes", "first seen", "why"):
        v.add_column(col, overflow="fold")
    for f in rep.findings:
        d = f.details
        checked = d.get("conduits_checked")
        why = ["checked: " + "; ".join(checked) if checked else f"no conduit {d['src_zone']} -> {d['dst_zone']}"]
        if f.rule_id == "seg.vendor_bypasses_jump_host":
            why.insert(0, f"vendor path: {d.get('vendor_path')}")
        why += [f"source is {d['jump_host']}"] if d.get("jump_host") else []
        why += ["to " + ", ".join(d["dst_vendor_ranges"])] if d.get("dst_vendor_ranges") else []
        why = "; ".join(why)
        v.add_row(
            f"[{SEV_STYLE[f.severity]}]{f.severity}[/]",
            f.rule_id,
            f"{d['src_ip']}" + (f" {d['src_host']}" if d.get("src_host") else "") + f" ({d['src_zone']})",
            f"{d['dst_zone']}: " + ", ".join(d["dst_ips"][:3]) + (" …" if d["destinations"] > 3 else ""),
            f"{d.get('proto') or '?'}/{d.get('dst_port') if d.get('dst_port') is not None else '*'}",
            f"{d['flows']:,} ({d['flows_denied']:,})",
            seg.human_bytes(d["bytes_out"] + d["bytes_in"]),
            f.ts_first.strftime("%Y-%m-%d %H:%M") if f.ts_first else "",
            why,
        )
    Console().print(v)


@app.command()
def assets(
    case: Annotated[Path, typer.Argument(help="A case file written by `gridhunt hunt --case FILE`.")],
    gaps: Annotated[
        bool, typer.Option("--gaps", help="Only assets with a blind spot (a required evidence source missing).")
    ] = False,
    unknown: Annotated[bool, typer.Option("--unknown", help="Only devices the inventory does not list.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Also write one row per asset (every column) to this CSV file.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML with analytics settings (assets.* required sources, roles), as for hunt."),
    ] = None,
) -> None:
    """Reconcile the inventory with the evidence: per asset its zone, role, vendor, first / last seen and
    which evidence sources cover it (Security log, Sysmon / EDR, PowerShell, System log, network flows,
    DNS, AMI audit, logons to it: ✓ rows, – none); then devices the inventory lacks (per zone), assets
    seen in another zone than the inventory's, and inventory items no evidence shows.

    A gap is a required source (assets.coverage_gap.required: Security log, Sysmon, flows) with no rows;
    Windows sources are not expected of non-Windows roles. Gaps of critical, OT-zone and vendor-managed
    assets (red) are what the assets.coverage_gap findings report.

    Example: gridhunt assets case.duckdb --gaps --csv coverage.csv
    """
    from datetime import datetime

    from gridhunt.case import Case
    from gridhunt.detect.assets import SOURCES, asset_report, write_csv
    from gridhunt.detect.settings import SettingsError, load_settings

    if not case.is_file():
        console.print(f"[red]error:[/] {case}: no such case file (write one with `gridhunt hunt --case {case}`)")
        raise typer.Exit(2)
    try:
        with Case.open(case, read_only=True) as c:
            rep = asset_report(c, load_settings(config))
    except (OSError, ValueError, SettingsError) as e:
        console.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from e
    show_assets, show_unknown = gaps or not unknown, unknown or not gaps
    if gaps:
        rep["assets"] = [a for a in rep["assets"] if a["gaps"]]
    if csv_path is not None:
        write_csv(rep["assets"], csv_path)
        console.print(f"{len(rep['assets'])} assets written to {csv_path}")
    if as_json:
        keep = {"summary", "notes"} | ({"assets"} if show_assets else set())
        keep |= {"unknown", "zone_mismatch"} if show_unknown else set()
        keep |= {"stale"} if not gaps and not unknown else set()
        out = {k: v for k, v in rep.items() if k in keep}
        iso = lambda o: o.isoformat().replace("+00:00", "Z") if isinstance(o, datetime) else str(o)  # noqa: E731
        print(json.dumps(out, default=iso))
        return
    for note in rep["notes"]:
        console.print(f"[yellow]![/] {note}", highlight=False)
    # the asset table is wide: piped into a file or pager it keeps its columns rather than 80 characters
    s, out_ = rep["summary"], Console() if Console().is_terminal else Console(width=220)
    day = lambda ts: ts.strftime("%Y-%m-%d") if ts else ""  # noqa: E731 - local formatter
    if show_assets:
        t = Table(
            title=f"assets: {s['assets']} in the inventory, {s['seen']} seen, {s['stale']} never seen; "
            f"{s['with_gaps']} with gaps ({s['judged_with_gaps']} of the {s['judged']} critical / OT / vendor)"
            + (" -- only assets with gaps" if gaps else ""),
            caption="✓ rows in that source, – none. sec: Security log, sysmon: Sysmon / EDR, ps: PowerShell, sys: "
            "System log, flows: conn, ami: AMI audit, auth: logons to it. gaps: required sources "
            f"({', '.join(s['required'])}) missing; red = critical / OT-zone / vendor-managed asset",
        )
        for col in ("id", "host", "zone", "role", "vendor", "first seen", "last seen", "sec", "sysmon", "ps", "sys",
                    "flows", "dns", "ami", "auth", "gaps"):  # fmt: skip
            t.add_column(col, overflow="fold", justify="center" if len(col) <= 6 and col not in ("id", "host",
                         "zone", "role", "gaps") else "left")  # fmt: skip
        for a in rep["assets"]:
            marks = ["[green]✓[/]" if a["coverage"][src] else "[dim]–[/]" for src in SOURCES]
            gap = ", ".join(a["gaps"])
            t.add_row(
                a["asset_id"], a["hostname"] or "", a["zone"] or "", a["role"] or "", a["vendor"] or "",
                day(a["first_seen"]), day(a["last_seen"]), *marks,
                (f"[red]{gap}[/]" if a["judged"] else f"[yellow]{gap}[/]") if gap else "",
            )  # fmt: skip
        out_.print(t)
    if show_unknown:
        u = Table(title=f"devices not in the inventory: {s['unknown_devices']} ("
                  + ", ".join(f"{z} {n}" for z, n in s["unknown_by_zone"].items()) + ")")  # fmt: skip
        for col in ("zone", "device", "addresses", "names", "seen in", "first seen", "last seen", "rows", "note"):
            u.add_column(col, overflow="fold")
        for d in rep["unknown"]:
            ips = ", ".join(d["ips"][:4]) + (f" (+{len(d['ips']) - 4})" if len(d["ips"]) > 4 else "")
            zone = f"[red]{d['zone']}[/] (OT)" if d["ot"] else d["zone"] or "(no zone)"
            u.add_row(zone, d["device"], ips, ", ".join(d["names"][:4]), ", ".join(d["logs"]), day(d["first_seen"]),
                      day(d["last_seen"]), f"{d['rows']:,}", "VPN client" if d["vpn_client"] else "")  # fmt: skip
        out_.print(u)
        if rep["zone_mismatch"]:
            m = Table(title=f"assets seen in another zone than the inventory's: {s['zone_mismatches']}")
            for col in ("id", "host", "inventory zone", "address", "zone seen", "how", "rows", "first seen",
                        "last seen"):  # fmt: skip
                m.add_column(col, overflow="fold")
            for r in rep["zone_mismatch"]:
                how = r["how"] + (f" ({r['workstation']})" if r["workstation"] else "")
                m.add_row(r["asset_id"], r["hostname"] or "", r["inventory_zone"], r["ip"], r["seen_zone"], how,
                          f"{r['rows']:,}", day(r["first_seen"]), day(r["last_seen"]))  # fmt: skip
            out_.print(m)
    if not gaps and not unknown:
        st = Table(title=f"inventory items never seen in the evidence: {len(rep['stale'])}")
        for col in ("id", "host", "zone", "role", "criticality", "addresses", "connections to it unanswered"):
            st.add_column(col, overflow="fold")
        for a in rep["stale"]:
            tried = a["unanswered_connections"]
            st.add_row(a["asset_id"], a["hostname"] or "", a["zone"] or "", a["role"] or "", a["criticality"] or "",
                       ", ".join(a["ips"]), f"{tried:,}" if tried else "")  # fmt: skip
        out_.print(st)


@app.command("verify-updates")
def verify_updates(
    case: Annotated[Path, typer.Argument(help="A case file written by `gridhunt hunt --case FILE`.")],
    window: Annotated[
        str | None,
        typer.Option("--window", help="START..END (ISO dates / times, UTC) instead of the vendors' incident windows."),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option("--manifest", help="Vendor SHA-256 manifest (sha256sum format) for every artifact."),
    ] = None,
    trusted_root: Annotated[
        Path | None,
        typer.Option("--trusted-root", help="Sigstore trusted_root.json for verifying Sigstore bundles offline."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print verdicts, errors and counts as JSON.")] = False,
) -> None:
    """Verify every update in the case's update log: artifact present, SHA-256 equal to the vendor
    manifest, signature valid and by a signer the vendor register names (raw Ed25519 / ECDSA / RSA,
    CMS / PKCS#7, OpenPGP, Sigstore bundle), certificate valid at signing time, and the download seen
    in http / files / tls from a registered update channel. One verdict per update: verified, mismatch,
    unsigned, unknown signer, no artifact, no custody evidence. Updates outside the window are
    checked too and marked. Exit 0 whatever the verdicts; 2 on bad input.

    Example: gridhunt verify-updates case.duckdb --window 2026-03-15..2026-04-28
    """
    from gridhunt.assess.updates import check_updates, parse_window
    from gridhunt.case import Case

    if not case.is_file():
        console.print(f"[red]error:[/] {case}: no such case file (write one with `gridhunt hunt --case {case}`)")
        raise typer.Exit(2)
    try:
        span = parse_window(window) if window else None
        with Case.open(case, read_only=True) as c:
            rep = check_updates(c, window=span, manifest=manifest, trusted_root=trusted_root)
    except (OSError, ValueError) as e:
        console.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from e
    s = rep.summary()
    if as_json:
        print(json.dumps({"summary": s, "verdicts": [v.to_dict() for v in rep.verdicts]}, default=str))
    else:
        style = {"verified": "green", "mismatch": "bold red", "unsigned": "yellow", "unknown signer": "red",
                 "no artifact": "magenta", "no custody evidence": "yellow"}  # fmt: skip
        by = ", ".join(f"{n} {k}" for k, n in s["by_verdict"].items() if n)
        t = Table(
            title=f"updates: {s['updates']} in the log, {s['in_window']} in the window ({by or 'none'}), "
            f"{s['outside_window']} outside",
            caption="outside the window: checked, dimmed, no findings. Reasons: hash, manifest, signature, custody.",
        )
        for col in ("target", "product", "version", "applied (UTC)", "verdict", "reasons"):
            t.add_column(col, overflow="fold")
        for v in rep.verdicts:
            verdict = f"[{style[v.verdict]}]{v.verdict}[/]" if v.in_window else f"[dim]{v.verdict} (outside window)[/]"
            t.add_row(v.target, v.product, v.version, v.ts_applied.strftime("%Y-%m-%d %H:%M"), verdict,
                      "\n".join(v.reasons), style=None if v.in_window else "dim")  # fmt: skip
        (Console() if Console().is_terminal else Console(width=200)).print(t)
    for note in rep.notes:
        console.print(f"[yellow]![/] {note}", highlight=False)
    for err in rep.errors:
        console.print(f"[red]error:[/] {err}", highlight=False)
    if rep.errors:
        raise typer.Exit(2)


# ---- gridhunt vendor exposure | secrets | ticket --------------------------------------------------

_CASE_ARG = typer.Argument(help="A case file written by `gridhunt hunt --case FILE`.")
_VENDOR_OPT = typer.Option("--vendor", help="Vendor name as in the register (vendors.yaml); case is ignored.")
_WINDOW_OPT = typer.Option(
    "--window", help="A..B (ISO dates / times, UTC; either side may be empty). Default: the vendor's incident window."
)


def _open_case(case: Path) -> object:
    from gridhunt.case import Case

    if not case.is_file():
        console.print(f"[red]error:[/] {case}: no such case file (write one with `gridhunt hunt --case {case}`)")
        raise typer.Exit(2)
    return Case.open(case, read_only=True)


def _day(ts: object) -> str:
    return ts.strftime("%Y-%m-%d %H:%M") if ts else "—"  # type: ignore[attr-defined]


@vendor_app.command("exposure")
def vendor_exposure(
    case: Annotated[Path, _CASE_ARG],
    vendor: Annotated[str, _VENDOR_OPT],
    window: Annotated[str | None, _WINDOW_OPT] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole report (paths, graph, findings) as JSON.")
    ] = False,
    graph: Annotated[
        Path | None, typer.Option("--graph", help="Also write the path -> host -> zone graph here (node-link JSON).")
    ] = None,
) -> None:
    """For every access path the register lists for VENDOR: what the evidence shows in the window --
    logins and VPN sessions, source addresses and countries, hosts reached and their zones (OT in red,
    flows outside any conduit marked), bytes, the findings touching it. A path with no evidence at all
    is a "no telemetry" gap, not a clean bill.

    Example: gridhunt vendor exposure case.duckdb --vendor MeterCo --graph meterco-graph.json
    """
    from gridhunt.assess import vendor as vx

    try:
        span = vx.parse_window(window)
        with _open_case(case) as c:  # type: ignore[attr-defined]
            rep = vx.vendor_exposure(c, vendor, span)
    except (OSError, ValueError) as e:
        console.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from e
    if graph is not None:
        graph.write_text(json.dumps(rep.graph_json(), indent=1) + "\n")
        g = rep.graph
        console.print(f"graph written to {graph} ({g.number_of_nodes()} nodes, {g.number_of_edges()} edges)")
    if as_json:
        print(json.dumps(rep.to_dict(), default=str))
        return
    out = Console() if Console().is_terminal else Console(width=160)
    for note in rep.notes:
        console.print(f"[yellow]![/] {note}", highlight=False)
    out.print(
        f"[bold]{rep.vendor}[/]: {len(rep.paths)} access paths, window {_day(rep.window_start)} .. "
        f"{_day(rep.window_end)}"
        f" (incident window {_day(rep.incident_start)} .. {_day(rep.incident_end)}); "
        f"{len(rep.paths) - len(rep.gaps)} with evidence, [yellow]{len(rep.gaps)} no telemetry[/]", highlight=False
    )
    for p in rep.paths:
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold", no_wrap=True)
        t.add_column(overflow="fold")
        head = f"[bold]{p.kind}[/] {p.identifier}"
        head += "  [yellow]NO TELEMETRY[/]" if p.no_telemetry else ("  [red]reaches OT[/]" if p.reaches_ot else "")
        t.add_row("path", head)
        t.add_row("register", f"owner {p.owner or '—'}, last rotated {_day(p.last_rotated)}, rotate by "
                  f"{_day(p.rotate_by)}, expires {_day(p.expires)} "
                  f"({Path(p.source_file or '?').name} {p.source_ref})")  # fmt: skip
        if p.no_telemetry:
            t.add_row("evidence", "[yellow]none in the window: a blind spot, not a clean bill[/]")
        else:
            counts = ", ".join(f"{k} {n:,}" for k, n in sorted(p.counts.items()))
            extra = []
            if p.logins:
                extra.append("logins " + ", ".join(f"{n} {k}" for k, n in sorted(p.logins.items())))
            if p.sessions:
                tun = ", ".join(p.tunnel_addresses[:4]) + (" …" if len(p.tunnel_addresses) > 4 else "")
                extra.append(f"{p.sessions} VPN sessions, {p.session_seconds / 3600:.1f} h, tunnel {tun}")
            t.add_row("evidence", f"{p.records:,} records ({counts}); first {_day(p.first_seen)}, last "
                      f"{_day(p.last_seen)}" + ("; " + "; ".join(extra) if extra else ""))  # fmt: skip
        srcs = []
        for s_ in p.sources[:8]:
            geo = "internal" if s_["internal"] else " ".join(x for x in (s_["country"], s_["org"]) if x) or "?"
            txt = f"{s_['ip']} ({geo}) {s_['rows']:,}"
            if not s_["internal"] and not s_["registered"]:
                txt = f"[red]{txt} NOT a registered vendor range[/]"
            srcs.append(txt)
        if srcs:
            t.add_row("from", " · ".join(srcs) + (f" · +{len(p.sources) - 8} more" if len(p.sources) > 8 else ""))
        hosts = []
        for h in p.hosts[:10]:
            zone = h["zone"] or "no zone"
            txt = f"{h['host']} → {zone}" + (" [OT]" if h["ot"] else "") + f" ({h['rows']:,}; {', '.join(h['how'])})"
            if h["outside_conduit"]:
                txt += f" ‼ {h['outside_conduit']} outside any conduit"
            if h["denied"]:
                txt += f", {h['denied']} denied"
            hosts.append(f"[red]{txt}[/]" if h["ot"] else txt)
        if hosts:
            t.add_row("reached", "\n".join(hosts) + (f"\n+{len(p.hosts) - 10} more" if len(p.hosts) > 10 else ""))
        if p.bytes_to_vendor or p.bytes_from_vendor:
            t.add_row("bytes", f"{_size(p.bytes_to_vendor)} toward the vendor side, "
                      f"{_size(p.bytes_from_vendor)} from it")  # fmt: skip
        if p.findings:
            fl = [f"[{SEV_STYLE.get(f['severity'], '')}]{f['severity']}[/] {f['title']} — {f['entity']}"
                  for f in p.findings[:8]]  # fmt: skip
            t.add_row("findings", "\n".join(fl) + (f"\n+{len(p.findings) - 8} more" if len(p.findings) > 8 else ""))
        for n in p.notes:
            t.add_row("note", f"[dim]{n}[/]")
        out.print(t)
        out.print()
    out.print("[bold]graph[/] (vendor → path → zone: hosts; ← sources)")
    for line in vx.graph_lines(rep.graph):
        out.print(f"[red]{line}[/]" if "[OT]" in line else line, highlight=False, markup=False)
    if rep.findings:
        out.print(f"[bold]assess findings[/] ({len(rep.findings)})")
        for f in rep.findings:
            out.print(f"  [{SEV_STYLE[f.severity]}]{f.severity}[/] {f.rule_id}: {f.title}", highlight=False)


@vendor_app.command("secrets")
def vendor_secrets(
    case: Annotated[Path, _CASE_ARG],
    vendor: Annotated[str | None, typer.Option("--vendor", help="Only this vendor's credentials.")] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Judge expiry at this date / time (default: the last evidence record)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the audit as JSON.")] = False,
) -> None:
    """Rotation audit of every credential the register says a vendor holds (secrets and the vpn_account,
    service_account, api_token and cert paths): rotated after the incident began? past its rotate-by /
    expiry / certificate notAfter? still used after that date (logons, AMI records, an API token's
    token_id, TLS)? Certificates are parsed: subject, issuer, validity, key, SHA-256. An unreadable PEM is
    an error naming its entry; the rest is still checked.

    Example: gridhunt vendor secrets case.duckdb --vendor MeterCo
    """
    from gridhunt.assess import vendor as vx
    from gridhunt.assess.secrets import audit_secrets

    try:
        when = vx._parse_time(as_of, "--as-of") if as_of else None
        with _open_case(case) as c:  # type: ignore[attr-defined]
            rep = audit_secrets(c, [vendor] if vendor else None, as_of=when)
    except (OSError, ValueError) as e:
        console.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from e
    if as_json:
        print(json.dumps(rep.to_dict(), default=str))
    else:
        t = Table(title=f"secrets: {len(rep.rows)} credentials, judged as of {_day(rep.as_of)}",
                  caption="rotated: last rotation on or after the vendor's incident start. deadline: the earliest "
                  "rotate-by / expiry / certificate notAfter after the last rotation")  # fmt: skip
        for col in ("vendor", "kind", "secret", "last rotated", "rotated?", "deadline", "expired?", "uses",
                    "after deadline", "certificate", "status"):  # fmt: skip
            t.add_column(col, overflow="fold")
        for r in rep.rows:
            rot = {True: "[green]yes[/]", False: "[red]no[/]", None: "?"}[r.rotated_after_incident]
            after = ""
            if r.uses_after_deadline:
                src = ", ".join(f"{x['ip']} ({x['country'] or '?'})" for x in r.sources_after[:3])
                after = f"[bold red]{r.uses_after_deadline} ({_day(r.first_after)} .. {_day(r.last_after)}) {src}[/]"
            cert = ""
            if r.cert:
                cert = (f"{r.cert.subject}\nissuer {r.cert.issuer}\n{_day(r.cert.not_before)} .. "
                        f"{_day(r.cert.not_after)}"
                        f"\n{r.cert.key_type} {r.cert.key_size or ''}\nSHA-256 {r.cert.sha256[:16]}…")  # fmt: skip
            status = "; ".join(r.status)
            sev = "red" if r.uses_after_deadline or "assess.secret_not_rotated" in r.rules else ""
            t.add_row(r.vendor or "", r.kind or "", r.secret_id, _day(r.last_rotated), rot,
                      f"{_day(r.deadline_given)} ({r.deadline_why})" if r.deadline else "—",
                      "[red]yes[/]" if r.expired else "no", f"{r.uses:,} ({r.uses_since_incident:,} since incident)",
                      after, cert, f"[{sev}]{status}[/]" if sev else status)  # fmt: skip
        (Console() if Console().is_terminal else Console(width=200)).print(t)
        for f in rep.findings:
            Console().print(f"  [{SEV_STYLE[f.severity]}]{f.severity}[/] {f.rule_id}: {f.title}", highlight=False)
    for err in rep.errors:
        console.print(f"[red]error:[/] {err}", highlight=False)


@vendor_app.command("ticket")
def vendor_ticket(
    case: Annotated[Path, _CASE_ARG],
    vendor: Annotated[str, _VENDOR_OPT],
    out: Annotated[Path, typer.Option("--out", help="Folder for ticket.md and ticket.json.")] = Path("."),
    window: Annotated[str | None, _WINDOW_OPT] = None,
) -> None:
    """Write the vendor risk ticket: the questions to send VENDOR (scope; source code, build and signing
    systems; update channels; support / remote-access systems; customer data; the accounts, tokens and
    certificates they hold; IOCs; timeline; containment), each pre-filled with what our evidence shows.

    Example: gridhunt vendor ticket case.duckdb --vendor MeterCo --out ./ticket
    """
    from gridhunt.assess import vendor as vx
    from gridhunt.assess.ticket import build_ticket, write_ticket

    try:
        span = vx.parse_window(window)
        with _open_case(case) as c:  # type: ignore[attr-defined]
            ticket = build_ticket(c, vendor, span)
        md, js = write_ticket(ticket, out)
    except (OSError, ValueError) as e:
        console.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from e
    s = ticket["summary"]
    Console().print(
        f"{ticket['vendor']}: {len(ticket['questions'])} questions, {s['active_paths']} of {s['paths']} paths active, "
        f"{len(s['no_telemetry'])} without telemetry, {len(s['credentials_to_rotate'])} credentials to rotate; "
        f"written: {md}, {js}", highlight=False
    )
    for n in ticket["notes"]:
        console.print(f"[yellow]![/] {n}", highlight=False)


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
