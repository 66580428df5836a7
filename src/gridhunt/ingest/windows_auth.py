"""Windows logon events -> the `auth` table (one row per authentication attempt).

Runs inside the case after the Windows events of an ingest run are stored (no file parsing):
4624 / 4625 logon, 4648 explicit credentials, 4768 / 4769 / 4771 Kerberos, 4776 NTLM validation,
4740 lockout. Status and sub-status codes are decoded to words (`failure_reason`), IPv4-mapped
IPv6 addresses (`::ffff:10.0.0.5`, as DCs write them) become plain IPv4, and `-` becomes NULL.
Each row keeps the event's source_file / source_ref so findings point at the original record.
"""

from __future__ import annotations

from typing import Any

from gridhunt.case import WIN_EVENTS_TABLE, map_field_sql
from gridhunt.sql import sql_literal

AUTH_EVENT_IDS = (4624, 4625, 4648, 4740, 4768, 4769, 4771, 4776)

# NTSTATUS values of 4625 / 4776 (Microsoft's 4625 event documentation).
NTSTATUS = {
    "0x0": "success",
    "0xc0000064": "unknown user name",
    "0xc000006a": "bad password",
    "0xc000006d": "bad user name or password",
    "0xc000006e": "account restriction",
    "0xc000006f": "logon outside allowed hours",
    "0xc0000070": "workstation not allowed",
    "0xc0000071": "password expired",
    "0xc0000072": "account disabled",
    "0xc00000dc": "server in wrong state",
    "0xc0000133": "clock skew",
    "0xc000015b": "logon type not granted",
    "0xc000018c": "trust relationship failed",
    "0xc0000192": "netlogon service not started",
    "0xc0000193": "account expired",
    "0xc0000224": "password must change",
    "0xc0000225": "windows bug (not a risk)",
    "0xc0000234": "account locked out",
    "0xc00002ee": "error during logon",
    "0xc0000413": "authentication firewall: not allowed",
}
# Kerberos result codes of 4768 / 4769 / 4771 (RFC 4120 section 7.5.9).
KERBEROS_STATUS = {
    "0x0": "success",
    "0x6": "client not found in Kerberos database",
    "0x7": "server not found in Kerberos database",
    "0xc": "policy rejects request (workstation / time restriction)",
    "0xd": "KDC cannot accommodate requested option",
    "0xe": "encryption type not supported",
    "0xf": "checksum type not supported",
    "0x10": "PKINIT not supported",
    "0x12": "client credentials revoked (disabled, expired or locked out)",
    "0x17": "password expired",
    "0x18": "pre-authentication failed (bad password)",
    "0x19": "additional pre-authentication required",
    "0x1b": "server principal valid for user-to-user only",
    "0x1f": "integrity check on decrypted field failed",
    "0x20": "ticket expired",
    "0x25": "clock skew too great",
    "0x29": "message stream modified",
    "0x3c": "generic error",
}
LOGON_TYPES = {
    "0": "System",
    "2": "Interactive",
    "3": "Network",
    "4": "Batch",
    "5": "Service",
    "7": "Unlock",
    "8": "NetworkCleartext",
    "9": "NewCredentials",
    "10": "RemoteInteractive",
    "11": "CachedInteractive",
    "12": "CachedRemoteInteractive",
    "13": "CachedUnlock",
}
# 4768/4769 TicketEncryptionType
TICKET_ENCRYPTION = {
    "0x1": "DES-CBC-CRC",
    "0x3": "DES-CBC-MD5",
    "0x11": "AES128-CTS-HMAC-SHA1-96",
    "0x12": "AES256-CTS-HMAC-SHA1-96",
    "0x17": "RC4-HMAC",
    "0x18": "RC4-HMAC-EXP",
    "0xffffffff": "failure (no ticket)",
}


def _values(name: str, mapping: dict[str, str]) -> str:
    rows = ", ".join(f"({sql_literal(k)}, {sql_literal(v)})" for k, v in mapping.items())
    return f"{name}(code, words) AS (VALUES {rows})"


def derive_windows_auth(case: Any, first_uid: int) -> int:
    """Add `auth` rows for the logon events with event_uid >= first_uid; returns rows added."""
    variants = case.field_variants()

    def f(name: str) -> str:
        # '-' and '' mean "not recorded" in Windows logon events
        return f"nullif(nullif(trim({map_field_sql(name, variants)}), '-'), '')"

    def ip(name: str) -> str:
        return f"regexp_replace({f(name)}, '^::ffff:', '')"

    def code(name: str) -> str:
        return f"lower({f(name)})"

    ids = ", ".join(str(i) for i in AUTH_EVENT_IDS)
    # 4769 / 4771 name accounts as user@REALM; keep user and realm apart as 4624 does
    target = f("TargetUserName")
    sql = f"""
    WITH {_values("nt", NTSTATUS)}, {_values("krb", KERBEROS_STATUS)},
    ev AS (
        SELECT ts, computer, event_id, source_file, source_ref,
            {target} AS target_user, {f("TargetDomainName")} AS target_domain,
            {f("SubjectUserName")} AS subject_user, {ip("IpAddress")} AS ip,
            coalesce({f("WorkstationName")}, ltrim({f("Workstation")}, '\\')) AS workstation,
            {f("TargetServerName")} AS target_server, {f("LogonType")} AS logon_type,
            coalesce({f("AuthenticationPackageName")}, {f("PackageName")}) AS package,
            {code("Status")} AS status, {code("SubStatus")} AS sub_status, {f("ServiceName")} AS service,
            {code("TicketOptions")} AS ticket_options, {code("TicketEncryptionType")} AS ticket_encryption,
            {f("PreAuthType")} AS pre_auth_type
        FROM {WIN_EVENTS_TABLE}
        WHERE event_uid >= ? AND event_id IN ({ids}) AND channel = 'Security'
    ),
    shaped AS (
        SELECT *,
            CASE WHEN event_id IN (4768, 4769, 4771) THEN 'kerberos'
                 WHEN event_id = 4776 THEN 'ntlm' ELSE 'ntstatus' END AS code_kind,
            -- 4625 puts the precise reason in SubStatus when Status is the generic 0xc000006d
            CASE WHEN event_id = 4625 AND sub_status IS NOT NULL AND sub_status NOT IN ('0x0', '0x00000000')
                 THEN sub_status ELSE status END AS reason_code
        FROM ev
    )
    SELECT ts,
        CASE WHEN event_id IN (4769, 4771, 4768) AND contains(target_user, '@')
             THEN split_part(target_user, '@', 1) ELSE target_user END AS "user",
        CASE WHEN event_id IN (4769, 4771, 4768) AND contains(target_user, '@')
             THEN coalesce(target_domain, split_part(target_user, '@', 2))
             WHEN event_id = 4740 THEN NULL ELSE target_domain END AS domain,
        ip AS src_ip,
        -- 4648 is logged where the explicit credentials were used: that machine is the source
        CASE WHEN event_id = 4740 THEN target_domain WHEN event_id = 4648 THEN computer
             ELSE workstation END AS src_host,
        CASE WHEN event_id = 4648 THEN coalesce(target_server, computer) ELSE computer END AS dst_host,
        CASE WHEN event_id IN (4624, 4648) THEN 'success'
             WHEN event_id = 4740 THEN 'lockout'
             WHEN event_id IN (4625, 4771) THEN 'failure'
             WHEN status IN ('0x0', '0x00000000') THEN 'success'
             WHEN status IS NULL THEN 'unknown'
             ELSE 'failure' END AS outcome,
        logon_type,
        CASE WHEN event_id IN (4768, 4769, 4771) THEN 'Kerberos' ELSE package END AS auth_package,
        CASE WHEN event_id = 4740 THEN 'account locked out'
             WHEN reason_code IS NULL OR reason_code IN ('0x0', '0x00000000') THEN NULL
             ELSE coalesce(
                CASE WHEN code_kind = 'kerberos' THEN (SELECT words FROM krb WHERE krb.code = reason_code)
                     ELSE (SELECT words FROM nt WHERE nt.code = reason_code) END,
                'status ' || reason_code) END AS failure_reason,
        'windows' AS source, source_file, source_ref, event_id, status, sub_status, service,
        ticket_options, ticket_encryption, pre_auth_type, subject_user
    FROM shaped
    ORDER BY ts, source_file, source_ref
    """
    before = case.con.execute("SELECT count(*) FROM auth").fetchall()[0][0]
    case.con.execute(f"INSERT INTO auth BY NAME ({sql})", [first_uid])
    return int(case.con.execute("SELECT count(*) FROM auth").fetchall()[0][0] - before)
