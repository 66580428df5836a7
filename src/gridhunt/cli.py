"""gridhunt command line: thin wrappers over the library (hunt.py, sigma/, demo/)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
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


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
