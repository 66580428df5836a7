"""One account's, host's or address's authentication story, from a hunted case file.

    entries = auth_timeline(case, user="jsmith")      # or host="ws-042" / ip="198.51.100.7"

Entries come in time order (ties by source file and record), each an auth attempt with its geo
(from the hunt's ip_geo table), outcome and evidence pointer, plus the rule ids of findings whose
evidence holds that record; findings about the subject that hold none of these records (say a
Sigma hit on the host) are entries of their own, at their first timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gridhunt.ingest.windows_auth import LOGON_TYPES

_NO_TIME = datetime.min.replace(tzinfo=UTC)


@dataclass
class Subject:
    user: str | None = None
    host: str | None = None
    ip: str | None = None

    def __post_init__(self) -> None:
        given = [x for x in (self.user, self.host, self.ip) if x]
        if len(given) != 1:
            raise ValueError("give exactly one of --user, --host, --ip")

    @property
    def key(self) -> str:
        return (self.user or self.host or self.ip or "").lower()


def _auth_filter(subject: Subject) -> tuple[str, list[Any]]:
    if subject.user:
        return 'lower(a."user") = ?', [subject.key]
    if subject.ip:
        return "a.src_ip = ?", [subject.ip]
    # a host by short or full name, as source or destination, or by its inventory addresses
    short = subject.key.split(".", 1)[0]
    return (
        """(split_part(lower(a.src_host), '.', 1) = ? OR split_part(lower(a.dst_host), '.', 1) = ?
            OR a.src_ip IN (SELECT unnest(ips) FROM assets WHERE split_part(lower(hostname), '.', 1) = ?))""",
        [short, short, short],
    )


def auth_timeline(
    case: Any, user: str | None = None, host: str | None = None, ip: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    subject = Subject(user, host, ip)
    where, params = _auth_filter(subject)
    con = case.con
    # (finding, record) pairs, so each auth row can name the findings that cite it
    con.execute(
        """CREATE OR REPLACE TEMP VIEW gh_finding_refs AS
        SELECT f.finding_id, f.rule_id, f.severity, e ->> 'source_file' AS source_file, e ->> 'source_ref' AS source_ref
        FROM findings f, unnest(CAST(f.evidence AS JSON[])) AS t(e)"""
    )
    rows = con.execute(
        f"""
        SELECT a.ts, a."user", a.domain, a.src_ip, a.src_host, a.dst_host, a.outcome, a.logon_type,
            a.auth_package, a.failure_reason, a.source, a.event_id, a.service, a.ticket_encryption,
            g.internal, g.country, coalesce(g.asn, '') AS asn, g.org, a.source_file, a.source_ref,
            (SELECT list(DISTINCT r.rule_id ORDER BY r.rule_id) FROM gh_finding_refs r
             WHERE r.source_file = a.source_file AND r.source_ref = a.source_ref) AS findings,
            (SELECT list(DISTINCT r.finding_id) FROM gh_finding_refs r
             WHERE r.source_file = a.source_file AND r.source_ref = a.source_ref) AS finding_ids
        FROM auth a LEFT JOIN ip_geo g ON g.ip = a.src_ip
        WHERE {where}
        ORDER BY a.ts, a.source_file, a.source_ref
        """,
        params,
    )
    names = [d[0] for d in rows.description]
    entries: list[dict[str, Any]] = []
    cited: set[str] = set()
    for values in rows.fetchall():
        r = dict(zip(names, values, strict=True))
        r["kind"] = "auth"
        r["findings"] = r["findings"] or []
        r["logon_type_name"] = LOGON_TYPES.get(r["logon_type"] or "")
        cited.update(r.pop("finding_ids") or [])
        entries.append(r)
    # findings about the subject (entity or evidence fields name it) not already shown on a row
    like = f"%{subject.key}%"
    for fid, rule_id, title, severity, entity, ts_first, ts_last, count in con.execute(
        """SELECT finding_id, rule_id, title, severity, entity, ts_first, ts_last, count FROM findings
        WHERE lower(entity) LIKE ? OR lower(CAST(evidence AS VARCHAR)) LIKE ?
        ORDER BY ts_first, rule_id, finding_id""",
        [like, like],
    ).fetchall():
        if fid in cited:
            continue
        entries.append(
            {
                "kind": "finding",
                "ts": ts_first,
                "ts_last": ts_last,
                "finding_id": fid,
                "rule_id": rule_id,
                "title": title,
                "severity": severity,
                "entity": entity,
                "count": count,
            }
        )
    entries.sort(
        key=lambda e: (
            e["ts"] or _NO_TIME,
            e["kind"] != "auth",
            e.get("source_file") or "",
            e.get("source_ref") or e.get("rule_id") or "",
        )
    )
    return entries[:limit] if limit else entries
