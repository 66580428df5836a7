"""Vendor risk ticket: the questions a utility sends its vendor after the vendor's breach, each
pre-filled with what our own evidence already says.

    ticket = build_ticket(case, "MeterCo")                 # dict, JSON-ready
    md, js = write_ticket(ticket, Path("out"))             # out/ticket.md, out/ticket.json

Questions (ids are stable, JSON `questions[].id`):
    scope            what was breached, when, and is our environment in it
    code_build_signing   source code, build / CI and code-signing systems, keys
    update_channels  update / firmware distribution and what we applied from it
    remote_access    support / remote-access systems and the sessions into our network
    customer_data    data about us: telemetry, exports, support data
    credentials      which of our accounts / tokens / certificates they hold
    iocs             their indicators, and ours for them to check
    timeline         their timeline, next to ours
    containment      what they did, what they need us to do
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from gridhunt.assess.secrets import SecretsReport, audit_secrets
from gridhunt.assess.vendor import ExposureReport, _plain, is_public, vendor_exposure
from gridhunt.report.findings import SEVERITY_RANK

TICKET_SCHEMA = 1
_IP = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_NAME = re.compile(r"\b(?:[a-z0-9-]+\.)+[a-z]{2,}\b", re.IGNORECASE)
TIMELINE_MAX = 40


def _d(ts: Any) -> str:
    if isinstance(ts, datetime):
        return ts.strftime("%Y-%m-%d %H:%M UTC")
    return str(ts) if ts else "?"


def _day(ts: Any) -> str:
    return ts.strftime("%Y-%m-%d") if isinstance(ts, datetime) else "?"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def _updates(case: Any, vendor: str, window: tuple[Any, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """Update-integrity verdicts of this vendor's updates, when gridhunt.assess.updates is there."""
    try:
        from gridhunt.assess.updates import verify_updates
    except ImportError:
        return [], "update verification is not available in this build"
    try:
        verdicts = verify_updates(case, window=window if window != (None, None) else None)
    except Exception as exc:  # noqa: BLE001 - the ticket still goes out without this part
        return [], f"update verification failed: {type(exc).__name__}: {exc}"
    out = []
    for v in verdicts:
        if (v.vendor or "").lower() != vendor.lower():
            continue
        out.append({"target": v.target, "product": v.product, "version": v.version, "applied": v.ts_applied,
                    "verdict": v.verdict, "in_window": v.in_window, "reasons": list(v.reasons)})  # fmt: skip
    return out, None


def _update_rows(case: Any, vendor: str, start: Any, end: Any) -> list[tuple[Any, ...]]:
    """The update log's rows for this vendor in the window (when verification is unavailable)."""
    rows = case.con.execute(
        "SELECT ts_applied, target, product, version, artifact_sha256, channel FROM updates "
        "WHERE lower(vendor) = lower(?) ORDER BY ts_applied, target",
        [vendor],
    ).fetchall()
    return [r for r in rows if (start is None or r[0] >= start) and (end is None or r[0] < end)]


def _own_domains(case: Any) -> set[str]:
    """Domains of our inventory's fully qualified host names (pc-dc01.corp.example -> corp.example)."""
    rows = case.con.execute(
        "SELECT DISTINCT lower(hostname) FROM assets WHERE contains(hostname, '.') UNION "
        "SELECT DISTINCT lower(dst_host) FROM auth WHERE contains(dst_host, '.') AND source = 'windows'"
    ).fetchall()
    return {h.split(".", 1)[1] for (h,) in rows if h and "." in h}


def _iocs(case: Any, rep: ExposureReport) -> dict[str, list[dict[str, Any]]]:
    """Addresses and names from our findings on the vendor's paths, and sources outside its ranges.
    Names count only when our hosts looked them up or connected to them, and are not our own."""
    own = _own_domains(case)
    seen_names = {
        r[0]
        for r in case.con.execute(
            "SELECT DISTINCT lower(rtrim(query, '.')) FROM dns UNION SELECT DISTINCT lower(split_part(host, ':', 1)) "
            "FROM http UNION SELECT DISTINCT lower(rtrim(server_name, '.')) FROM tls"
        ).fetchall()
        if r[0]
    }
    ips: dict[str, dict[str, Any]] = {}
    names: dict[str, dict[str, Any]] = {}
    for p in rep.paths:
        for s in p.sources:
            if not s["internal"] and not s["registered"]:
                e = ips.setdefault(s["ip"], {"value": s["ip"], "country": s["country"], "org": s["org"], "seen": []})
                e["seen"].append(f"{p.label}: {s['success']} ok / {s['failure']} failed")
        bad = [f for f in p.findings if SEVERITY_RANK.get(f["severity"], 0) >= SEVERITY_RANK["medium"]]
        for f in bad:
            text = f"{f['entity']} {f['title']}"
            for ip in _IP.findall(text):
                if is_public(ip) and not any(ip == s["ip"] and s["registered"] for s in p.sources):
                    e = ips.setdefault(ip, {"value": ip, "country": None, "org": None, "seen": []})
                    e["seen"].append(f"{f['title']} ({f['severity']})")
            for name in (n.lower() for n in _NAME.findall(f["entity"] or "")):
                if name not in seen_names or name == p.identifier.lower() or any(name.endswith("." + d) for d in own):
                    continue
                e = names.setdefault(name, {"value": name, "seen": []})
                e["seen"].append(f"{f['title']} ({f['severity']})")
    for d in (ips, names):
        for e in d.values():
            e["seen"] = sorted(set(e["seen"]))
    return {"ips": [ips[k] for k in sorted(ips)], "names": [names[k] for k in sorted(names)]}


def _lookalikes(case: Any, rep: ExposureReport) -> list[dict[str, Any]]:
    """Names in our DNS / HTTP / TLS that carry the vendor's name but are none of its registered
    channels: theirs, or the attacker's look-alike?"""
    slug = re.sub(r"[^a-z0-9]", "", rep.vendor.lower())
    if len(slug) < 4:
        return []
    own = set()
    for p in rep.paths:
        if p.kind in ("update_channel", "telemetry"):
            host = p.identifier.lower().split("://")[-1].split("/")[0]
            own.add(host)
            own.update(h.lower() for h in p.attrs.get("hosts", []))
    rows = case.con.execute(
        """SELECT name, count(*), min(ts), max(ts), count(DISTINCT src) FROM (
            SELECT lower(rtrim(query, '.')) AS name, ts, src_ip AS src FROM dns
            UNION ALL SELECT lower(split_part(host, ':', 1)), ts, src_ip FROM http
            UNION ALL SELECT lower(rtrim(server_name, '.')), ts, src_ip FROM tls)
        WHERE contains(regexp_replace(name, '[^a-z0-9]', '', 'g'), ?)
        GROUP BY name ORDER BY name""",
        [slug],
    ).fetchall()
    out = []
    for name, n, first, last, hosts in rows:
        if name in own or any(name.endswith("." + o) for o in own):
            continue
        out.append({"value": name, "records": int(n), "first_seen": first, "last_seen": last, "hosts": int(hosts)})
    return out


def build_ticket(
    case: Any,
    vendor: str,
    window: tuple[datetime | None, datetime | None] | None = None,
    exposure: ExposureReport | None = None,
    secrets: SecretsReport | None = None,
) -> dict[str, Any]:
    """The ticket as a JSON-ready dict: vendor, windows, summary and the pre-filled questions."""
    rep = exposure or vendor_exposure(case, vendor, window)
    sec = secrets or audit_secrets(case, [rep.vendor])
    start, end = rep.window_start, rep.window_end
    paths = rep.paths
    active = [p for p in paths if not p.no_telemetry]
    by_kind = Counter(p.kind for p in paths)
    attached: dict[str, dict[str, Any]] = {}
    for p in paths:
        for f in p.findings:
            attached.setdefault(f["finding_id"], {**f, "paths": []})["paths"].append(p.label)
    serious = [f for f in attached.values() if SEVERITY_RANK.get(f["severity"], 0) >= SEVERITY_RANK["medium"]]
    serious.sort(key=lambda f: (str(f["ts_first"]), -SEVERITY_RANK[f["severity"]], f["rule_id"]))
    iocs = _iocs(case, rep)
    lookalikes = _lookalikes(case, rep)
    updates, upd_note = _updates(case, rep.vendor, (start, end))
    questions: list[dict[str, Any]] = []

    def q(qid: str, topic: str, question: str, evidence: list[str], data: dict[str, Any] | None = None) -> None:
        none = ["Our evidence shows nothing on this."]
        questions.append({"id": qid, "topic": topic, "question": question, "our_evidence": evidence or none,
                          "data": data or {}})  # fmt: skip

    win = f"{_d(start)} – {_d(end)}"
    # 1. scope
    ev = [
        f"Incident window in our register: {_d(rep.incident_start)} – {_d(rep.incident_end)}; "
        f"evidence examined: {win}.",
        f"We hold {len(paths)} registered access paths for {rep.vendor} ("
        + ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items()))
        + f"); {len(active)} show activity in the window, "
        f"{len(rep.gaps)} without telemetry (we cannot tell whether they were used).",
        f"{len(serious)} findings of medium severity or above touch these paths"
        + (f", the first {_d(serious[0]['ts_first'])}, the last {_d(serious[-1]['ts_first'])}." if serious else "."),
    ]
    reach_ot = [p for p in paths if p.reaches_ot]
    if reach_ot:
        ot_zones = {p.label: ", ".join(sorted({h["zone"] for h in p.hosts if h["ot"]})) for p in reach_ot}
        ev.append("Paths that reached our OT zones: " + "; ".join(f"{k} → {v}" for k, v in ot_zones.items()) + ".")
    q("scope", "Scope of the breach",
      "Which of your systems, networks and customer tenants did the attacker access, and from when to when? "
      "Is our organisation (our tenant, our support cases, our remote-access entries) among the data or systems "
      "they reached?", ev,
      {"incident_window": {"start": start and _plain(rep.incident_start), "end": _plain(rep.incident_end)},
       "window": {"start": _plain(start), "end": _plain(end)}, "paths": len(paths), "active_paths": len(active),
       "no_telemetry": [p.label for p in rep.gaps], "findings_medium_plus": len(serious)})  # fmt: skip
    # 2. source code, build, signing
    channels = [p for p in paths if p.kind == "update_channel"]
    ev = []
    for p in channels:
        key = p.attrs.get("signing_key")
        ev.append(f"Update channel {p.identifier}: " + (f"signing key on file ({Path(key).name})" if key
                  else "no signing key in our register") + ".")  # fmt: skip
    bad = [u for u in updates if u["in_window"] and u["verdict"] != "verified"]
    if updates:
        ev.append(f"{sum(1 for u in updates if u['in_window'])} of your updates were applied in the window; "
                  f"{len(bad)} did not verify against your manifest and signature: "
                  + ("; ".join(f"{u['product']} {u['version']} on {u['target']}: {u['verdict']}" for u in bad[:10])
                     if bad else "none") + ".")  # fmt: skip
    elif upd_note:
        ev.append(f"({upd_note}.)")
    q("code_build_signing", "Source code, build and signing systems",
      "Were source code repositories, build / CI systems or code-signing keys and infrastructure accessed? Has any "
      "signing key or certificate been revoked or replaced, and which key ids / certificates sign the releases we "
      "receive today?", ev,
      {"update_channels": [p.identifier for p in channels],
       "updates_not_verified": [_plain(u) for u in bad]})  # fmt: skip
    # 3. update channels
    ev = []
    for p in [p for p in paths if p.kind in ("update_channel", "telemetry")]:
        if p.no_telemetry:
            ev.append(f"{p.kind} {p.identifier}: no record of it in our DNS / HTTP / TLS / flow logs (no telemetry).")
            continue
        clients = ", ".join(f"{h['host']} ({h['zone'] or 'no zone'}{', OT' if h['ot'] else ''})" for h in p.hosts[:5])
        ev.append(f"{p.kind} {p.identifier}: {p.records:,} records {_day(p.first_seen)} – {_day(p.last_seen)}, "
                  f"{_size(p.bytes_from_vendor)} received / {_size(p.bytes_to_vendor)} sent, "
                  f"clients: {clients or 'none'}.")  # fmt: skip
    if updates:
        # the ones that did not verify first
        for u in sorted([u for u in updates if u["in_window"]], key=lambda u: u["verdict"] == "verified")[:15]:
            ev.append(f"Applied {_d(u['applied'])}: {u['product']} {u['version']} on {u['target']} — {u['verdict']}"
                      + (f" ({'; '.join(u['reasons'][:2])})" if u["verdict"] != "verified" and u["reasons"] else "")
                      + ".")  # fmt: skip
    else:
        for r in _update_rows(case, rep.vendor, start, end)[:15]:
            ev.append(f"Applied {_d(r[0])}: {r[2]} {r[3]} on {r[1]} (SHA-256 {r[4] or 'not logged'}).")
    q("update_channels", "Update channels",
      "Were your update / firmware distribution channels (the hosts, CDNs and URLs below) or the artifacts they "
      "served altered during the window? Please send the SHA-256 of every release you published in the window and "
      "confirm the ones we applied are genuine.", ev,
      {"updates": [_plain(u) for u in updates]})  # fmt: skip
    # 4. remote access / support systems
    ev = []
    for p in [p for p in paths if p.kind in ("vpn_account", "jump_host", "service_account", "api_token", "ip_range")]:
        if p.no_telemetry:
            ev.append(f"{p.label}: no telemetry.")
            continue
        srcs = [s for s in p.sources if not s["internal"]]
        odd = [s for s in srcs if not s["registered"]]
        line = f"{p.label}: {p.records:,} records {_day(p.first_seen)} – {_day(p.last_seen)}"
        if p.sessions:
            line += f", {p.sessions} VPN sessions ({p.session_seconds / 3600:.1f} h)"
        if p.logins:
            line += ", logins " + ", ".join(f"{n} {k}" for k, n in sorted(p.logins.items()))
        if odd:
            line += "; from addresses outside your registered ranges: " + ", ".join(
                f"{s['ip']} ({s['country'] or '?'}, {s['success']} ok / {s['failure']} failed)" for s in odd
            )
        ot = sorted({h["zone"] for h in p.hosts if h["ot"]})
        if ot:
            line += "; reached OT zone(s) " + ", ".join(ot)
        outside = [h["host"] for h in p.hosts if h["outside_conduit"]]
        if outside:
            line += "; outside any permitted conduit: " + ", ".join(outside)
        ev.append(line + ".")
    q("remote_access", "Support and remote-access systems",
      "Were your support and remote-access systems (remote-support tools, VPN client configurations, the jump-host "
      "credentials and the accounts below) accessed by the attacker? Please list every session your staff or "
      "systems opened into our network during the window, with source addresses, so we can tell yours from theirs.",
      ev, {"paths": [p.to_dict() | {"hosts": len(p.hosts)} for p in paths
                     if p.kind in ("vpn_account", "jump_host", "service_account", "api_token")]})  # fmt: skip
    # 5. customer data
    ev = []
    for p in paths:
        if p.no_telemetry or not (p.bytes_to_vendor or p.bytes_from_vendor):
            continue
        ev.append(f"{p.label}: {_size(p.bytes_to_vendor)} toward your side, {_size(p.bytes_from_vendor)} from it.")
    exports = case.con.execute(
        """SELECT "user", json_extract_string(params, '$.job') AS job, count(*), sum(target_count), min(ts), max(ts)
        FROM ami_audit WHERE action = 'bulk_job'
            AND lower(json_extract_string(params, '$.job')) SIMILAR TO '.*(read|export).*'
            AND lower("user") IN (SELECT lower(identifier) FROM vendor_access WHERE vendor = ?)
        GROUP BY ALL ORDER BY 1, 2""",
        [rep.vendor],
    ).fetchall()
    for user, job, n, meters, first, last in exports:
        ev.append(f"AMI bulk {job} jobs by {user}: {n} ({int(meters or 0):,} meter reads/exports), "
                  f"{_day(first)} – {_day(last)}.")  # fmt: skip
    q("customer_data", "Customer and operational data",
      "Was data about us or our customers accessed or taken from your systems (meter data, asset lists, network "
      "diagrams, configuration backups, support tickets, credentials in tickets)? Which data of ours do your "
      "telemetry and support systems hold?", ev,
      {"bytes": {p.label: {"to_vendor": p.bytes_to_vendor, "from_vendor": p.bytes_from_vendor}
                 for p in paths if p.bytes_to_vendor or p.bytes_from_vendor},
       "ami_exports": [{"user": u, "job": j, "jobs": n, "meters": int(m or 0), "first": _plain(a), "last": _plain(b)}
                       for u, j, n, m, a, b in exports]})  # fmt: skip
    # 6. credentials they hold
    ev = []
    for s in sec.rows:
        line = f"{s.label}: last rotated {_day(s.last_rotated)}; " + "; ".join(s.status)
        if s.cert:
            c = s.cert
            line += (f"; certificate {c.subject}, issuer {c.issuer}, valid {_day(c.not_before)} – "
                     f"{_day(c.not_after)}, {c.key_type} {c.key_size or ''}, SHA-256 {c.sha256}")  # fmt: skip
        if s.uses_after_deadline:
            srcs = ", ".join(f"{x['ip']} ({x['country'] or '?'})" for x in s.sources_after)
            line += f"; used {s.uses_after_deadline}x after {_day(s.deadline_given)} from {srcs}"
        ev.append(line + ".")
    q("credentials", "Our accounts, tokens and certificates you hold",
      "Which of our accounts, API tokens, certificates and keys do you hold, and were any of them stored in or "
      "reachable from the compromised systems? Please confirm you have destroyed the old ones after we rotate them "
      "and tell us where the new ones will be kept.", ev,
      {"secrets": [s.to_dict() for s in sec.rows], "errors": sec.errors})  # fmt: skip
    # 7. IOCs
    ev = [f"{i['value']} ({i.get('country') or '?'}{', ' + i['org'] if i.get('org') else ''}): " + "; ".join(i["seen"])
          for i in iocs["ips"]]  # fmt: skip
    ev += [f"{n['value']}: " + "; ".join(n["seen"]) for n in iocs["names"]]
    ev += [f"{x['value']}: {x['records']} records from {x['hosts']} host(s), {_day(x['first_seen'])} – "
           f"{_day(x['last_seen'])}: carries your name but is none of your registered channels — yours?"
           for x in lookalikes]  # fmt: skip
    q(
        "iocs",
        "Indicators of compromise",
        "Please share the indicators from your investigation (attacker IP addresses, domains, file hashes, tools, user "
        "agents, the accounts they used). Are the addresses and names below yours or the attacker's?",
        ev,
        {"ips": iocs["ips"], "names": iocs["names"], "lookalike_names": [_plain(x) for x in lookalikes]},
    )
    # 8. timeline
    ev = [f"{_d(f['ts_first'])} [{f['severity']}] {f['title']} — {f['entity']} ({', '.join(f['paths'])})"
          for f in serious[:TIMELINE_MAX]]  # fmt: skip
    if len(serious) > TIMELINE_MAX:
        ev.append(f"… and {len(serious) - TIMELINE_MAX} more (ticket.json lists them all).")
    q(
        "timeline",
        "Timeline",
        "Please send your timeline: initial access, lateral movement, data access, when the attacker was contained, "
        "and when each of our credentials listed above was last used by you.",
        ev,
        {"findings": [_plain(f) for f in serious]},
    )
    # 9. containment
    todo = [
        s for s in sec.rows if "assess.secret_not_rotated" in s.rules or "assess.secret_used_after_expiry" in s.rules
    ]
    ev = ["Credentials we must rotate or revoke (not rotated since the incident began, or used after their "
          "deadline): " + ", ".join(s.label for s in todo) + "." if todo else
          "Every credential in our register was rotated after the incident began."]  # fmt: skip
    if rep.gaps:
        ev.append("Paths we cannot see in our logs (no telemetry): " + ", ".join(p.label for p in rep.gaps) + ".")
    q(
        "containment",
        "Containment and next steps",
        "What have you done to contain the breach (credentials reset, sessions revoked, signing keys rotated, systems "
        "rebuilt), and when? What do you need us to do, and who is our contact until this is closed?",
        ev,
        {"rotate": [s.label for s in todo], "no_telemetry": [p.label for p in rep.gaps]},
    )
    return {
        "schema_version": TICKET_SCHEMA,
        "vendor": rep.vendor,
        "contact": rep.contact,
        "incident_window": {"start": _plain(rep.incident_start), "end": _plain(rep.incident_end)},
        "window": {"start": _plain(start), "end": _plain(end)},
        "as_of": _plain(sec.as_of),
        "summary": {
            "paths": len(paths),
            "active_paths": len(active),
            "no_telemetry": [p.label for p in rep.gaps],
            "reach_ot": [p.label for p in reach_ot],
            "findings_medium_plus": len(serious),
            "credentials_to_rotate": [s.label for s in todo],
        },  # fmt: skip
        "questions": questions,
        "notes": rep.notes + sec.errors + ([upd_note] if upd_note else []),
    }


def render_markdown(t: dict[str, Any]) -> str:
    s = t["summary"]
    lines = [
        f"# Security questionnaire for {t['vendor']}",
        "",
        f"To: {t['contact'] or '(vendor security contact)'}  ",
        f"Incident window: {t['incident_window']['start'] or '?'} – {t['incident_window']['end'] or '?'}  ",
        f"Our evidence examined: {t['window']['start'] or 'start'} – {t['window']['end'] or 'end'} "
        f"(latest record {t['as_of']})",
        "",
        f"We hold {s['paths']} access paths for you; {s['active_paths']} show activity in the window"
        + (f", {len(s['no_telemetry'])} we cannot see (no telemetry)" if s["no_telemetry"] else "")
        + f"; {s['findings_medium_plus']} of our findings of medium severity or above touch them."
        + (f" Paths that reached our OT network: {', '.join(s['reach_ot'])}." if s["reach_ot"] else ""),
        "",
        "Please answer each question below. Under each, *What our evidence shows* is what we already see on "
        "our side; tell us where your records differ.",
        "",
    ]
    for i, q in enumerate(t["questions"], 1):
        lines += [f"## {i}. {q['topic']}", "", q["question"], "", "*What our evidence shows:*", ""]
        lines += [f"- {e}" for e in q["our_evidence"]]
        lines.append("")
    if t["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in t["notes"]] + [""]
    return "\n".join(lines)


def write_ticket(ticket: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "ticket.md", out_dir / "ticket.json"
    md.write_text(render_markdown(ticket), encoding="utf-8")
    js.write_text(json.dumps(ticket, indent=2, default=str) + "\n", encoding="utf-8")
    return md, js
