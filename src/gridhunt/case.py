"""The case file: one DuckDB database holding every ingested record and every finding.

Tables follow ../shared/DESIGN.md. Every evidence row keeps `source_file` and `source_ref`
so a finding can point back to the exact record. Timestamps are TIMESTAMPTZ in UTC.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from gridhunt.sql import quote_ident, sql_literal

SCHEMA_VERSION = 2
# columns added after a table first shipped: (table, column, type); old case files gain them on open
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = tuple(
    ("auth", c, "INTEGER" if c == "event_id" else "VARCHAR")
    for c in (
        "event_id",
        "status",
        "sub_status",
        "service",
        "ticket_options",
        "ticket_encryption",
        "pre_auth_type",
        "subject_user",
    )
) + (("ingest_log", "records_ignored", "BIGINT"), ("ingest_log", "notes", "VARCHAR[]"))
# zones by asset tag / role as well as CIDR, and the zone's role (it, dmz, ot, vendor)
_ADDED_COLUMNS += (("zones", "kind", "VARCHAR"), ("zones", "assets", "VARCHAR[]"), ("zones", "roles", "VARCHAR[]"))
# vendor register: the ticket's contact, per-path deadlines, and per-kind extras as JSON text (cert
# fingerprint / PEM path, update-channel URLs and hosts, signing key)
_ADDED_COLUMNS += (
    ("vendors", "contact", "VARCHAR"),
    ("vendor_access", "rotate_by", "TIMESTAMPTZ"),
    ("vendor_access", "expires", "TIMESTAMPTZ"),
    ("vendor_access", "attrs", "VARCHAR"),
    ("secrets", "attrs", "VARCHAR"),
)

# Fixed columns of win_events; every EventData/UserData field seen becomes one more VARCHAR column.
WIN_EVENTS_BASE: tuple[tuple[str, str], ...] = (
    ("event_uid", "BIGINT"),  # our own row id, unique in the case; evidence joins use it
    ("ts", "TIMESTAMPTZ"),
    ("computer", "VARCHAR"),
    ("channel", "VARCHAR"),
    ("provider", "VARCHAR"),
    ("event_id", "INTEGER"),
    ("record_id", "BIGINT"),
    ("level", "INTEGER"),
    ("task", "INTEGER"),
    ("opcode", "INTEGER"),
    ("keywords", "VARCHAR"),
    ("user_sid", "VARCHAR"),  # System/Security/@UserID
    ("process_id", "BIGINT"),  # System/Execution/@ProcessID
    ("thread_id", "BIGINT"),
    ("source_file", "VARCHAR"),
    ("source_ref", "VARCHAR"),  # EventRecordID for EVTX, line number for line-based exports
    ("raw", "VARCHAR"),  # the record as evtx_dump-style JSON text
)
# EventData/UserData fields are stored in one MAP column of the table win_events_data (an insert
# then costs the same however many distinct fields the evidence has); win_events is a view over it
# with one VARCHAR column per field name seen, as DESIGN.md describes.
WIN_EVENTS_TABLE = "win_events_data"
MAX_FIELD_COLUMNS = 4000
WIN_EVENTS_BASE_NAMES = frozenset(name.lower() for name, _ in WIN_EVENTS_BASE)

_TABLES = """
CREATE TABLE IF NOT EXISTS case_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS auth (
    ts TIMESTAMPTZ, "user" VARCHAR, domain VARCHAR, src_ip VARCHAR, src_host VARCHAR, dst_host VARCHAR,
    outcome VARCHAR, logon_type VARCHAR, auth_package VARCHAR, failure_reason VARCHAR,
    source VARCHAR, source_file VARCHAR, source_ref VARCHAR,
    event_id INTEGER, status VARCHAR, sub_status VARCHAR, service VARCHAR, ticket_options VARCHAR,
    ticket_encryption VARCHAR, pre_auth_type VARCHAR, subject_user VARCHAR);
CREATE TABLE IF NOT EXISTS geo_networks (
    cidr VARCHAR, country VARCHAR, asn VARCHAR, org VARCHAR, lat DOUBLE, lon DOUBLE,
    source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS ip_geo (
    ip VARCHAR PRIMARY KEY, internal BOOLEAN, country VARCHAR, asn VARCHAR, org VARCHAR, lat DOUBLE, lon DOUBLE,
    geo_source VARCHAR);
CREATE TABLE IF NOT EXISTS conn (
    ts TIMESTAMPTZ, src_ip VARCHAR, src_port INTEGER, dst_ip VARCHAR, dst_port INTEGER, proto VARCHAR,
    service VARCHAR, duration DOUBLE, bytes_out BIGINT, bytes_in BIGINT, action VARCHAR, uid VARCHAR,
    source VARCHAR, source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS dns (
    ts TIMESTAMPTZ, src_ip VARCHAR, query VARCHAR, qtype VARCHAR, rcode VARCHAR, answers VARCHAR,
    uid VARCHAR, source VARCHAR, source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS http (
    ts TIMESTAMPTZ, uid VARCHAR, src_ip VARCHAR, dst_ip VARCHAR, dst_port INTEGER, method VARCHAR,
    host VARCHAR, uri VARCHAR, user_agent VARCHAR, status_code INTEGER, request_body_len BIGINT,
    response_body_len BIGINT, resp_mime_types VARCHAR, source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS tls (
    ts TIMESTAMPTZ, uid VARCHAR, src_ip VARCHAR, dst_ip VARCHAR, dst_port INTEGER, version VARCHAR,
    server_name VARCHAR, subject VARCHAR, issuer VARCHAR, ja3 VARCHAR, established BOOLEAN,
    source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS ami_audit (
    ts TIMESTAMPTZ, system VARCHAR, "user" VARCHAR, src_ip VARCHAR, action VARCHAR, target_type VARCHAR,
    target_id VARCHAR, target_count BIGINT, params VARCHAR, result VARCHAR,
    source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS assets (
    asset_id VARCHAR, hostname VARCHAR, ips VARCHAR[], zone VARCHAR, role VARCHAR, owner VARCHAR,
    vendor VARCHAR, criticality VARCHAR, source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS zones (
    name VARCHAR, cidrs VARCHAR[], level INTEGER, source_file VARCHAR, source_ref VARCHAR,
    kind VARCHAR, assets VARCHAR[], roles VARCHAR[]);
CREATE TABLE IF NOT EXISTS conduits (
    from_zone VARCHAR, to_zone VARCHAR, proto VARCHAR, ports VARCHAR, via_host VARCHAR,
    source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS vendors (
    vendor VARCHAR, incident_start TIMESTAMPTZ, incident_end TIMESTAMPTZ, source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS vendor_access (
    vendor VARCHAR, kind VARCHAR, identifier VARCHAR, owner VARCHAR, last_rotated TIMESTAMPTZ,
    source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS secrets (
    secret_id VARCHAR, kind VARCHAR, owner_vendor VARCHAR, last_rotated TIMESTAMPTZ, expires TIMESTAMPTZ,
    source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS updates (
    ts_applied TIMESTAMPTZ, target VARCHAR, product VARCHAR, version VARCHAR, vendor VARCHAR,
    artifact_sha256 VARCHAR, signature_ref VARCHAR, channel VARCHAR, artifact_path VARCHAR,
    source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS change_windows (
    window_start TIMESTAMPTZ, window_end TIMESTAMPTZ, ticket VARCHAR, system VARCHAR, description VARCHAR,
    source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS findings (
    finding_id VARCHAR, detector VARCHAR, rule_id VARCHAR, title VARCHAR, severity VARCHAR,
    attack VARCHAR[], entity VARCHAR, ts_first TIMESTAMPTZ, ts_last TIMESTAMPTZ, count BIGINT,
    evidence JSON, details JSON);
CREATE TABLE IF NOT EXISTS ingest_log (
    path VARCHAR, format VARCHAR, records_ok BIGINT, records_bad BIGINT, first_error VARCHAR,
    seconds DOUBLE, skipped_reason VARCHAR, records_ignored BIGINT, notes VARCHAR[]);
CREATE TABLE IF NOT EXISTS x509 (
    ts TIMESTAMPTZ, fingerprint VARCHAR, fuid VARCHAR, version INTEGER, serial VARCHAR, subject VARCHAR,
    issuer VARCHAR, not_valid_before TIMESTAMPTZ, not_valid_after TIMESTAMPTZ, key_alg VARCHAR, key_length INTEGER,
    san_dns VARCHAR, basic_constraints_ca BOOLEAN, host_cert BOOLEAN, client_cert BOOLEAN,
    source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS files (
    ts TIMESTAMPTZ, fuid VARCHAR, uid VARCHAR, tx_hosts VARCHAR, rx_hosts VARCHAR, source VARCHAR, analyzers VARCHAR,
    mime_type VARCHAR, filename VARCHAR, duration DOUBLE, is_orig BOOLEAN, seen_bytes BIGINT, total_bytes BIGINT,
    missing_bytes BIGINT, md5 VARCHAR, sha1 VARCHAR, sha256 VARCHAR, extracted VARCHAR,
    source_file VARCHAR, source_ref VARCHAR);
CREATE TABLE IF NOT EXISTS ics (
    ts TIMESTAMPTZ, uid VARCHAR, src_ip VARCHAR, src_port INTEGER, dst_ip VARCHAR, dst_port INTEGER,
    protocol VARCHAR, function VARCHAR, direction VARCHAR, is_write BOOLEAN, is_control BOOLEAN,
    unit_or_address VARCHAR, status VARCHAR, details VARCHAR, source_file VARCHAR, source_ref VARCHAR);
"""


@dataclass
class Case:
    """An open case file. Use `Case.open(path)`; `path=None` makes a temporary on-disk file
    (on disk, not in memory, so large hunts spill instead of growing RSS)."""

    con: duckdb.DuckDBPyConnection
    path: Path
    temporary: bool = False
    _tmpdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | Path | None = None, memory_limit: str | None = None, read_only: bool = False) -> Case:
        tmpdir = None
        if path is None:
            tmpdir = tempfile.TemporaryDirectory(prefix="gridhunt-")
            path = Path(tmpdir.name) / "case.duckdb"
        path = Path(path)
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)  # `--case new/dir/case.duckdb` just works
        # DuckDB's buffer pool; the rest of the process (Arrow batches, Python) comes on top.
        memory_limit = memory_limit or os.environ.get("GRIDHUNT_MEMORY_LIMIT", "512MB")
        config = {"memory_limit": memory_limit, "preserve_insertion_order": "true", "checkpoint_threshold": "256MB"}
        # Only disable autoloading: extensions must never be fetched at run time.
        config["autoinstall_known_extensions"] = "false"
        con = duckdb.connect(str(path), read_only=read_only, config=config)
        con.execute(f"SET temp_directory={sql_literal(str(path) + '.tmp')}")
        # DuckDB draws its own bar on stdout for queries over 2 s: it would corrupt `--json` output
        con.execute("SET enable_progress_bar = false")
        case = cls(con=con, path=path, temporary=tmpdir is not None, _tmpdir=tmpdir)
        if not read_only:
            case._create_schema()
        return case

    def _create_schema(self) -> None:
        # raw is long JSON text: zstd writes ~3x faster and far smaller than the default codec
        cols = ", ".join(f'"{n}" {t}' + (" USING COMPRESSION zstd" if n == "raw" else "") for n, t in WIN_EVENTS_BASE)
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {WIN_EVENTS_TABLE} ({cols}, fields MAP(VARCHAR, VARCHAR))")
        self.con.execute("CREATE TABLE IF NOT EXISTS win_fields (name VARCHAR PRIMARY KEY)")
        self.con.execute(_TABLES)
        for table, col, typ in _ADDED_COLUMNS:
            self.con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {col} {typ}")
        if not self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'win_events'"
        ).fetchone()[0]:
            self.refresh_win_events_view()
        self.con.execute("INSERT OR REPLACE INTO case_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])

    def columns(self, table: str) -> list[str]:
        """Column names of a table, in table order."""
        rows = self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        return [r[0] for r in rows]

    def next_event_uid(self) -> int:
        sql = f"SELECT coalesce(max(event_uid), 0) + 1 FROM {WIN_EVENTS_TABLE}"
        return int(self.con.execute(sql).fetchall()[0][0])  # fetchall: leaves no open result

    def register_win_fields(self, first_uid: int) -> None:
        """Record the field names of events from `first_uid` on and rebuild the win_events view."""
        self.con.execute(
            f"""INSERT INTO win_fields SELECT DISTINCT k FROM (
                SELECT unnest(map_keys(fields)) AS k FROM {WIN_EVENTS_TABLE} WHERE event_uid >= ?)
            WHERE k NOT IN (SELECT name FROM win_fields)""",
            [first_uid],
        )
        self.refresh_win_events_view()

    def field_variants(self) -> dict[str, list[str]]:
        """Normalised field name → the spellings seen. Case is ignored (DuckDB columns are
        case-insensitive) and so are spaces: Defender writes `Source Name` where Sigma says `SourceName`."""
        out: dict[str, list[str]] = {}
        for (name,) in self.con.execute("SELECT name FROM win_fields ORDER BY name").fetchall():
            out.setdefault(field_key(name), []).append(name)
        return out

    def refresh_win_events_view(self) -> None:
        cols = []
        for low, names in sorted(self.field_variants().items())[:MAX_FIELD_COLUMNS]:
            expr = ", ".join(f"fields[{sql_literal(n)}]" for n in names)
            expr = f"coalesce({expr})" if len(names) > 1 else expr
            # a field named like a base column (EventData.Channel) must not hide the System value
            alias = f"ed_{names[0]}" if low in WIN_EVENTS_BASE_NAMES or low == "fields" else names[0]
            cols.append(f"{expr} AS {quote_ident(alias)}")
        extra = (", " + ", ".join(cols)) if cols else ""
        self.con.execute(
            f"CREATE OR REPLACE VIEW win_events AS SELECT * EXCLUDE (fields){extra} FROM {WIN_EVENTS_TABLE}"
        )

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            if self._tmpdir is not None:
                self._tmpdir.cleanup()

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def field_key(name: str) -> str:
    return name.lower().replace(" ", "")


def default_threads() -> int:
    return max(1, os.cpu_count() or 1)


def map_field_sql(name: str, variants: dict[str, list[str]]) -> str:
    """SQL (over win_events_data) reading EventData field `name` in any spelling the case has
    seen (`variants` from Case.field_variants); NULL when it never appeared."""
    names = variants.get(field_key(name))
    if not names:
        return "NULL::VARCHAR"
    refs = [f"fields[{sql_literal(n)}]" for n in names]
    return refs[0] if len(refs) == 1 else f"coalesce({', '.join(refs)})"
