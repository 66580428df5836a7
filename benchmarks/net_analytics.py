"""Network analytics throughput: beacon / strobe / long-connection / rare-destination scoring (detect/beacon.py),
and the DNS and exfiltration analytics (detect/dns.py, detect/exfil.py) when they are there, over >= 1M `conn`
rows and >= 1M `dns` rows, against a scan of the same tables measured in the same run.

The synthetic case (built in a temp dir, deleted at the end; Arrow batches into DuckDB, no files parsed):
  - `--hosts` internal hosts talking to `--dests` external addresses over `--days` days: diurnal, bursty,
    heavy-tailed sizes, popular destinations shared by many hosts (Zipf);
  - ~15 % of the Zeek flows logged a second time by the firewall (source 'firewall'), which the
    analytics must count once; TLS rows (SNI) for a third of the port-443 flows; DNS queries whose
    answers name the destinations, plus NXDOMAIN noise;
  - planted: beacons (periods 1 min .. 1 h, jitter 0 .. 15 %, some named by SNI), one strobe (> 86,400
    connections in a day), long connections.

Each measurement runs in a fresh Python process (its peak RSS, ru_maxrss, is its own):
  count     SELECT count(*) FROM conn / dns, as the issue words it (DuckDB answers it from row-group
            metadata, so it measures almost nothing: printed, but not the ratio's denominator);
  scan      count(*) plus a sum over every value of the columns the analytics read, conn and dns
            (timestamps, addresses, names, bytes, durations) -- the baseline of the ratios;
  group     SELECT src_ip, dst_ip, count(*), sum(bytes_out) FROM conn GROUP BY ALL -- the least any
            per-pair analytic must do;
  net       run_analytics(case, only=["net"]) -- the four net.* analytics incl. building the pair tables;
  dns       run_analytics(case, only=["dns"])    if detect/dns.py is registered;
  exfil     run_analytics(case, only=["exfil"])  if detect/exfil.py is registered.
It prints seconds, ratio to the scan, peak RSS, findings, and how many planted beacons net.beacon found.
Target (from the issue): 1M connections scored in under 30 s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _child import peak_rss_mib, run_child  # benchmarks/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
MIB = 1024 * 1024
TARGET_S = 30.0
END = int(dt.datetime(2025, 3, 10, tzinfo=dt.UTC).timestamp())
# (period s, jitter share, size bytes, named by SNI) of the planted beacons
BEACONS = [
    (60, 0.0, 512, False),
    (60, 0.15, 700, True),
    (120, 0.05, 300, False),
    (300, 0.0, 1400, True),
    (300, 0.15, 900, False),
    (600, 0.10, 250, True),
    (900, 0.0, 4096, False),
    (900, 0.15, 640, True),
    (1800, 0.05, 333, False),
    (3600, 0.0, 2048, True),
    (3600, 0.15, 1024, False),
    (180, 0.10, 128, True),
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# synthetic case
# --------------------------------------------------------------------------------------------


def _insert(con: Any, table: str, tbl: Any, select: str) -> None:
    con.register("_bench", tbl)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT {select} FROM _bench")
    finally:
        con.unregister("_bench")


def generate(case_path: Path, n_conn: int, n_dns: int, days: int, hosts: int, dests: int, seed: int) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa

    from gridhunt.case import Case

    rng = np.random.default_rng(seed)
    start = END - days * 86_400
    truth: list[dict[str, Any]] = []
    # addresses by index in SQL: host h -> 10.(h/65536).(h/256%256).(h%256); dest d -> 23.x.y.z + d
    host_ip = "'10.' || (h // 65536) || '.' || (h // 256 % 256) || '.' || (h % 256)"
    dest_ip = "'23.' || (d // 65536 % 256) || '.' || (d // 256 % 256) || '.' || (d % 256)"
    dest_name = "'svc' || d || '.cdn' || (d % 997) || '.example.net'"
    conn_select = f"""to_timestamp(t) AS ts, {host_ip} AS src_ip, (1024 + h % 60000)::INTEGER AS src_port,
        {dest_ip} AS dst_ip, port::INTEGER AS dst_port, 'tcp' AS proto, CASE port WHEN 443 THEN 'ssl'
        WHEN 80 THEN 'http' END AS service, dur AS duration, bo AS bytes_out, bi AS bytes_in, NULL AS action,
        'C' || uid AS uid, src AS source, src || '.log' AS source_file, uid::VARCHAR AS source_ref"""
    with Case.open(case_path) as case:
        con = case.con
        uid0 = 0
        # planted beacons over every day, from hosts/dests outside the background ranges
        for i, (period, jitter, size, named) in enumerate(BEACONS):
            base = np.arange(start + rng.integers(0, period), END, period, dtype=float)
            t = base + rng.uniform(-jitter, jitter, len(base)) * period
            h, d = hosts + i, dests + i
            n = len(t)
            tbl = pa.table({
                "t": t, "h": np.full(n, h), "d": np.full(n, d), "port": np.full(n, 443),
                "dur": rng.uniform(0.1, 2, n), "bo": (size * rng.uniform(0.98, 1.02, n)).astype(np.int64),
                "bi": np.full(n, 4000, dtype=np.int64), "uid": np.arange(uid0, uid0 + n), "src": np.full(n, "zeek"),
            })  # fmt: skip
            _insert(con, "conn", tbl, conn_select)
            if named:
                _insert(con, "tls", tbl, f"to_timestamp(t) AS ts, 'C' || uid AS uid, {host_ip} AS src_ip, "
                        f"{dest_ip} AS dst_ip, 443 AS dst_port, 'beacon{i}.c2-example.org' AS server_name")  # fmt: skip
            truth.append({"src_ip": f"10.0.{h // 256 % 256}.{h % 256}", "period": period, "jitter": jitter,
                          "connections": n, "named": named, "dst": f"beacon{i}.c2-example.org" if named else
                          f"23.{d // 65536 % 256}.{d // 256 % 256}.{d % 256}"})  # fmt: skip
            uid0 += n
        # one strobe: > 86,400 connections inside the last day
        n = 90_000
        tbl = pa.table({
            "t": np.sort(rng.uniform(END - 86_000, END, n)), "h": np.full(n, hosts + 100), "d": np.full(n, dests + 100),
            "port": np.full(n, 8443), "dur": np.full(n, 0.01), "bo": np.full(n, 60, dtype=np.int64),
            "bi": np.zeros(n, dtype=np.int64), "uid": np.arange(uid0, uid0 + n), "src": np.full(n, "zeek"),
        })  # fmt: skip
        _insert(con, "conn", tbl, conn_select)
        uid0 += n
        planted = uid0
        # background, in batches: diurnal (office hours weigh 4x), Zipf hosts and destinations
        batch = 250_000
        left = max(n_conn - planted, 0)
        zeek_rows = int(left / 1.15)
        done = 0
        while done < zeek_rows:
            n = min(batch, zeek_rows - done)
            day = rng.integers(0, days, n)
            office = rng.random(n) < 0.8
            hour = np.where(office, rng.uniform(7, 18, n), rng.uniform(0, 24, n))
            t = start + day * 86_400 + hour * 3600
            h = (rng.zipf(1.3, n) - 1) % hosts  # the tail wraps round instead of piling on one host
            d = (rng.zipf(1.15, n) - 1) % dests
            port = rng.choice(np.array([443, 443, 443, 80, 22, 8080]), n)
            dur = np.where(rng.random(n) < 0.001, rng.uniform(3600, 30_000, n), rng.exponential(20, n))
            cols = {
                "t": t, "h": h, "d": d, "port": port, "dur": dur, "bo": rng.lognormal(7, 1.6, n).astype(np.int64),
                "bi": rng.lognormal(9, 2, n).astype(np.int64), "uid": np.arange(uid0, uid0 + n),
                "src": np.full(n, "zeek"),
            }  # fmt: skip
            tbl = pa.table(cols)
            _insert(con, "conn", tbl, conn_select)
            # the firewall logs ~15 % of the same flows again
            fw = rng.random(n) < 0.15
            fw_cols = {**{k: v[fw] for k, v in cols.items()}, "src": np.full(fw.sum(), "firewall")}
            _insert(con, "conn", pa.table(fw_cols), conn_select)
            # SNI for a third of the 443 flows
            sni = (port == 443) & (rng.random(n) < 0.33)
            _insert(con, "tls", pa.table({k: v[sni] for k, v in cols.items()}),
                    f"to_timestamp(t) AS ts, 'C' || uid AS uid, {host_ip} AS src_ip, {dest_ip} AS dst_ip, "
                    f"443 AS dst_port, {dest_name} AS server_name")  # fmt: skip
            uid0 += n
            done += n
        # DNS: hosts resolve destinations (answers = the destination's address), 5 % NXDOMAIN noise
        done = 0
        while done < n_dns:
            n = min(batch, n_dns - done)
            t = start + rng.uniform(0, days * 86_400, n)
            h = (rng.zipf(1.3, n) - 1) % (hosts + len(BEACONS))
            d = (rng.zipf(1.15, n) - 1) % dests
            nx = rng.random(n) < 0.05
            tbl = pa.table({"t": t, "h": h, "d": d, "nx": nx, "i": np.arange(done, done + n)})
            _insert(
                con,
                "dns",
                tbl,
                f"""to_timestamp(t) AS ts, {host_ip} AS src_ip,
                CASE WHEN nx THEN 'x' || hash(i) % 100000 || '.example.net' ELSE {dest_name} END AS query,
                'A' AS qtype, CASE WHEN nx THEN 'NXDOMAIN' ELSE 'NOERROR' END AS rcode,
                CASE WHEN nx THEN NULL ELSE {dest_ip} END AS answers, 'D' || i AS uid, 'zeek' AS source,
                'dns.log' AS source_file, i::VARCHAR AS source_ref""",
            )
            done += n
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("conn", "dns", "tls")}
    return {"counts": counts, "truth": truth}


# --------------------------------------------------------------------------------------------
# child side: one measurement per process
# --------------------------------------------------------------------------------------------


def child_main(kind: str, spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    out: dict[str, Any] = {"kind": kind}
    t = time.perf_counter()
    if kind == "generate":
        out.update(generate(Path(spec["case_path"]), spec["conn"], spec["dns"], spec["days"], spec["hosts"],
                            spec["dests"], spec["seed"]))  # fmt: skip
    else:
        from gridhunt.case import Case

        with Case.open(Path(spec["case_path"])) as case:
            con = case.con
            t = time.perf_counter()
            if kind == "count":
                sql = "SELECT (SELECT count(*) FROM conn), (SELECT count(*) FROM dns)"
                out["rows"] = con.execute(sql).fetchall()[0]
            elif kind == "scan":
                # every value of the columns the analytics read is touched (no statistics shortcut)
                out["sums"] = con.execute(
                    """SELECT (SELECT [count(*), sum(length(src_ip) + length(dst_ip) + length(uid)),
                                       sum(epoch(ts) + bytes_out + bytes_in + duration)] FROM conn),
                              (SELECT [count(*), sum(length(query) + length(src_ip) + coalesce(length(answers), 0)),
                                       sum(epoch(ts))] FROM dns)"""
                ).fetchall()[0]
            elif kind == "group":
                out["pairs"] = con.execute(
                    "SELECT count(*) FROM (SELECT src_ip, dst_ip, count(*), sum(bytes_out) FROM conn GROUP BY ALL)"
                ).fetchall()[0][0]
            else:
                from gridhunt.detect import run_analytics

                result = run_analytics(case, only=[kind])
                out["runs"] = [
                    {"name": r.name, "findings": r.findings, "seconds": r.seconds, "skipped": r.skipped_reason,
                     "error": r.error} for r in result.runs
                ]  # fmt: skip
                out["notes"] = result.notes
                if kind == "net":
                    found = [f for f in result.findings if f.rule_id == "net.beacon"]
                    out["beacons"] = [{"entity": f.entity, "score": f.details.get("score"),
                                       "severity": f.severity} for f in found]  # fmt: skip
                    out["strobes"] = [f.entity for f in result.findings if f.rule_id == "net.strobe"]
                    out["findings_by_rule"] = {}
                    for f in result.findings:
                        out["findings_by_rule"][f.rule_id] = out["findings_by_rule"].get(f.rule_id, 0) + 1
                out["findings"] = len(result.findings)
    out["seconds"] = time.perf_counter() - t
    out["peak_rss_mib"] = peak_rss_mib()
    Path(spec["result_path"]).write_text(json.dumps(out, default=str))


# --------------------------------------------------------------------------------------------
# parent side
# --------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.n = 0
        pythonpath = os.pathsep.join(x for x in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if x)
        self.env = {**os.environ, "PYTHONPATH": pythonpath}

    def child(self, kind: str, **spec: Any) -> dict[str, Any]:
        self.n += 1
        return run_child(Path(__file__), self.tmp, self.n, kind, self.env, spec)


def theme_registered(name: str) -> bool:
    try:
        from gridhunt.detect.registry import THEMES
    except Exception:  # noqa: BLE001 - a half-edited registry: report, do not crash
        return False
    return any(m.__name__.rsplit(".", 1)[-1] == name for m in THEMES)


def recall(truth: list[dict[str, Any]], beacons: list[dict[str, Any]]) -> tuple[int, int, list[str]]:
    found = {b["entity"] for b in beacons}
    hit = [t for t in truth if f"{t['src_ip']} -> {t['dst']}" in found]
    missed = [f"{t['src_ip']} -> {t['dst']} (every {t['period']} s, ±{t['jitter']:.0%})" for t in truth if t not in hit]
    return len(hit), len(truth), missed


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"

    return {"commit": git("rev-parse", "--short", "HEAD"), "src_dirty": bool(git("status", "--porcelain", "src"))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="net_analytics.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--conn", type=int, default=1_000_000, help="conn rows (default 1,000,000)")
    ap.add_argument("--dns", type=int, default=1_000_000, help="dns rows (default 1,000,000)")
    ap.add_argument("--days", type=int, default=3, help="days of traffic (default 3: three 24 h windows)")
    ap.add_argument("--hosts", type=int, default=2_000, help="internal hosts in the background (default 2,000)")
    ap.add_argument("--dests", type=int, default=30_000, help="external destinations (default 30,000)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smoke run: 300k conn and 100k dns rows")
    ap.add_argument("--save", action="store_true", help="also write benchmarks/results/net_analytics-<date>.json")
    ap.add_argument("--keep-tmp", action="store_true", help="do not delete the temp dir (for debugging)")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child_main(args.child[0], Path(args.child[1]))
        return 0
    if args.quick:
        args.conn, args.dns = 300_000, 100_000

    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="gridhunt-netbench-"))
    bench = Bench(tmp)
    case_path = tmp / "case.duckdb"
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    try:
        log(f"generating {args.conn:,} conn + {args.dns:,} dns rows in {tmp} ...")
        gen = bench.child("generate", case_path=str(case_path), conn=args.conn, dns=args.dns, days=args.days,
                          hosts=args.hosts, dests=args.dests, seed=args.seed)  # fmt: skip
        log(f"generated {gen['counts']} in {gen['seconds']:.1f} s; case file "
            f"{case_path.stat().st_size / MIB:,.0f} MiB")  # fmt: skip
        kinds = ["count", "scan", "group", "net"] + [k for k in ("dns", "exfil") if theme_registered(k)]
        for kind in kinds:
            log(f"{kind} ...")
            try:
                r = bench.child(kind, case_path=str(case_path))
            except RuntimeError as e:  # another theme's half-finished module must not sink the net numbers
                if kind in ("count", "scan", "group", "net"):
                    raise
                failed[kind] = str(e).strip().splitlines()[-1]
                log(f"{kind}: FAILED: {failed[kind]}")
                continue
            rows.append(r)
            log(f"{kind}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mib']:,.0f} MiB")
    finally:
        if args.keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    scan = next(r for r in rows if r["kind"] == "scan")
    print(f"\ncase: {gen['counts']['conn']:,} conn, {gen['counts']['dns']:,} dns, {gen['counts']['tls']:,} tls rows "
          f"over {args.days} days; {os.cpu_count()} CPUs; DuckDB memory_limit 512MB (the case default)")  # fmt: skip
    head = f"{'measurement':<12} {'seconds':>8} {'x scan':>8} {'peak RSS MiB':>13} {'findings':>9}"
    print(head + "\n" + "-" * len(head))
    for r in rows:
        ratio = r["seconds"] / scan["seconds"] if scan["seconds"] else float("inf")
        print(f"{r['kind']:<12} {r['seconds']:>8.2f} {ratio:>8.1f} {r['peak_rss_mib']:>13,.0f} "
              f"{r.get('findings', ''):>9}")  # fmt: skip
    for kind, why in failed.items():
        print(f"{kind:<12} failed: {why}")
    skipped = [k for k in ("dns", "exfil") if k not in failed and not any(r["kind"] == k for r in rows)]
    if skipped:
        print(f"not run (theme not registered in detect/registry.py): {', '.join(skipped)}")
    for r in rows:
        for run in r.get("runs", []):
            state = run["error"] or run["skipped"] or f"{run['findings']} findings"
            print(f"  {run['name']:<36} {run['seconds']:>7.2f} s  {state}")
    net = next(r for r in rows if r["kind"] == "net")
    hit, total, missed = recall(gen["truth"], net.get("beacons", []))
    others = len(net.get("beacons", [])) - hit
    print(f"\nplanted beacons found by net.beacon: {hit}/{total}; other pairs reported: {others}; strobes: "
          f"{net.get('strobes')}")  # fmt: skip
    for m in missed:
        print(f"  missed: {m}")
    for note in net.get("notes", []):
        if note.startswith("net"):
            print(f"  {note}")
    ok = net["seconds"] <= TARGET_S
    print(f"\ntarget: [{'ok' if ok else 'MISS'}] net analytics over {gen['counts']['conn']:,} conn rows in "
          f"{net['seconds']:.1f} s (<= {TARGET_S:g} s); peak RSS {net['peak_rss_mib']:,.0f} MiB")  # fmt: skip
    gs = git_state()
    print(f"gridhunt {gs['commit']}{' + uncommitted src changes' if gs['src_dirty'] else ''}; "
          f"total benchmark time {(time.perf_counter() - started) / 60:.1f} min")  # fmt: skip
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"net_analytics-{dt.date.today().isoformat()}.json"
        doc = {"benchmark": "net_analytics", "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
               "argv": sys.argv[1:], "git": gs, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
               "generated": gen, "rows": rows, "recall": {"found": hit, "planted": total, "missed": missed},
               "target_ok": ok}  # fmt: skip
        path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
