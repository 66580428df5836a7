"""Windows event records in evtx_dump JSON, one record per line (JSONL).

Why JSON lines and not binary EVTX: no open-source EVTX *writer* exists (the `evtx`
crate, python-evtx and libevtx all only read), and faking the binary chunk format with
CRCs and BinXML templates would be a project of its own. `evtx_dump -o jsonl` output is
what responders already feed to tools, and gridhunt's ingest reads it into the same
`win_events` columns as binary EVTX.

The records copy what evtx_dump prints for real logs: `#attributes` for XML attributes,
GUIDs without braces, `EventID` with `Qualifiers` for Service Control Manager events,
`UserData.LogFileCleared` for 104/1102, and field names and value types as Windows
writes them (e.g. 4625 Status/SubStatus hex strings, LogonType a number, 4769
TicketEncryptionType `0x17` (RC4) vs `0x12` (AES256), Sysmon 10 GrantedAccess `0x1010`).
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import orjson

from gridhunt.demo.timeutil import iso_us, sysmon_time
from gridhunt.demo.world import Host, User, World

SEC = ("Microsoft-Windows-Security-Auditing", "54849625-5478-4994-A5BA-3E3B0328C30D", "Security")
SYSMON = (
    "Microsoft-Windows-Sysmon",
    "5770385F-C22A-43E0-BF4C-06F5698FFBD9",
    "Microsoft-Windows-Sysmon/Operational",
)
PWSH = (
    "Microsoft-Windows-PowerShell",
    "A0C1853B-5C40-4B15-8766-3CF1C58F985A",
    "Microsoft-Windows-PowerShell/Operational",
)
EVENTLOG = "Microsoft-Windows-Eventlog", "FC65DDD8-D6EF-4962-83D5-6E5CFE9CE148"

# (Task, Keywords, Version) for the Security events we write.
_SEC_META: dict[int, tuple[int, str, int]] = {
    4624: (12544, "0x8020000000000000", 2),
    4625: (12544, "0x8010000000000000", 0),
    4648: (12544, "0x8020000000000000", 0),
    4672: (12548, "0x8020000000000000", 0),
    4688: (13312, "0x8020000000000000", 2),
    4720: (13824, "0x8020000000000000", 0),
    4728: (13826, "0x8020000000000000", 0),
    4732: (13826, "0x8020000000000000", 0),
    4756: (13826, "0x8020000000000000", 0),
    4768: (14339, "0x8020000000000000", 0),
    4769: (14337, "0x8020000000000000", 0),
    4771: (14339, "0x8010000000000000", 0),
    4776: (14336, "0x8020000000000000", 0),
    5136: (14081, "0x8020000000000000", 0),
    5145: (12811, "0x8020000000000000", 0),
}
_INTERACTIVE = (2, 7, 10, 11)  # logon types Windows handles on the console / RDP session (7 = unlock)
_SYSMON_TASK = {1: 1, 3: 3, 10: 10, 11: 11, 13: 13, 22: 22}
_SYSMON_VERSION = {1: 5, 3: 5, 10: 3, 11: 2, 13: 2, 22: 5}

# Image metadata as Sysmon 1 reports it: (FileVersion, Description, Product, Company, OriginalFileName).
_MS = ("Microsoft® Windows® Operating System", "Microsoft Corporation")
_IMAGES: dict[str, tuple[str, str, str, str, str]] = {
    "powershell.exe": (
        "10.0.19041.3996 (WinBuild.160101.0800)",
        "Windows PowerShell",
        *_MS,
        "PowerShell.EXE",
    ),
    "cmd.exe": ("10.0.19041.3636 (WinBuild.160101.0800)", "Windows Command Processor", *_MS, "Cmd.Exe"),
    "net.exe": ("10.0.19041.1 (WinBuild.160101.0800)", "Net Command", *_MS, "net.exe"),
    "net1.exe": ("10.0.19041.1 (WinBuild.160101.0800)", "Net Command", *_MS, "net1.exe"),
    "whoami.exe": (
        "10.0.19041.1 (WinBuild.160101.0800)",
        "whoami - displays logged on user information",
        *_MS,
        "whoami.exe",
    ),
    "nltest.exe": (
        "10.0.19041.1 (WinBuild.160101.0800)",
        "Microsoft® Logon Server Test Utility",
        *_MS,
        "nltestrk.exe",
    ),
    "rundll32.exe": (
        "10.0.19041.3636 (WinBuild.160101.0800)",
        "Windows host process (Rundll32)",
        *_MS,
        "RUNDLL32.EXE",
    ),
    "winword.exe": (
        "16.0.17328.20162",
        "Microsoft Word",
        "Microsoft Office",
        "Microsoft Corporation",
        "WinWord.exe",
    ),
    "outlook.exe": (
        "16.0.17328.20162",
        "Microsoft Outlook",
        "Microsoft Office",
        "Microsoft Corporation",
        "Outlook.exe",
    ),
    "excel.exe": (
        "16.0.17328.20162",
        "Microsoft Excel",
        "Microsoft Office",
        "Microsoft Corporation",
        "Excel.exe",
    ),
    "chrome.exe": ("123.0.6312.86", "Google Chrome", "Google Chrome", "Google LLC", "chrome.exe"),
    "ms-teams.exe": (
        "24060.2623.2790.8046",
        "Microsoft Teams",
        "Microsoft Teams",
        "Microsoft Corporation",
        "ms-teams.exe",
    ),
    "psexec.exe": (
        "2.43",
        "Execute processes remotely",
        "Sysinternals PsExec",
        "Sysinternals - www.sysinternals.com",
        "psexec.c",
    ),
    "psexesvc.exe": (
        "2.43",
        "PsExec Service",
        "Sysinternals PsExec",
        "Sysinternals - www.sysinternals.com",
        "psexesvc.exe",
    ),
    "mstsc.exe": ("10.0.19041.3636 (WinBuild.160101.0800)", "Remote Desktop Connection", *_MS, "mstsc.exe"),
    "svchost.exe": (
        "10.0.19041.3636 (WinBuild.160101.0800)",
        "Host Process for Windows Services",
        *_MS,
        "svchost.exe",
    ),
    "taskhostw.exe": (
        "10.0.19041.3636 (WinBuild.160101.0800)",
        "Host Process for Windows Tasks",
        *_MS,
        "taskhostw.exe",
    ),
    "msiexec.exe": ("5.0.19041.3636 (WinBuild.160101.0800)", "Windows® installer", *_MS, "msiexec.exe"),
    "gpupdate.exe": (
        "10.0.19041.1 (WinBuild.160101.0800)",
        "Microsoft® Windows Group Policy Update Utility",
        *_MS,
        "GPUpdate.exe",
    ),
    "sqlcmd.exe": (
        "15.0.2000.5",
        "T-SQL execution utility",
        "Microsoft SQL Server",
        "Microsoft Corporation",
        "sqlcmd.exe",
    ),
}


def _meta(image: str) -> tuple[str, str, str, str, str]:
    base = image.rsplit("\\", 1)[-1].lower()
    return _IMAGES.get(base, ("-", "-", "-", "-", "-"))


def _hashes(image: str) -> str:
    # Stable per image path; real hashes are per binary, which this mimics well enough.
    h = hashlib.sha256(image.lower().encode()).hexdigest().upper()
    md5 = hashlib.md5(image.lower().encode()).hexdigest().upper()
    return f"SHA1={h[:40]},MD5={md5},SHA256={h},IMPHASH={md5[::-1]}"


class WinLog:
    """Renders Windows events. One instance per generate() run: it holds EventRecordID
    counters per (computer, channel) and a render-time RNG for cosmetic values
    (thread ids, logon ids, GUIDs) — deterministic because sinks render in file order."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = random.Random(world.seed * 7919 + 11)
        self._rid: dict[tuple[str, str], int] = {}
        self._lsass_pid: dict[str, int] = {}
        self._sysmon_pid: dict[str, int] = {}
        self._machine: dict[str, str] = {}

    # -- helpers -------------------------------------------------------------------
    def fqdn(self, host: Host) -> str:
        return f"{host.name}.{self.w.dns_domain}"

    def lsass_pid(self, host: Host) -> int:
        if host.name not in self._lsass_pid:
            r = random.Random(f"{self.w.seed}:lsass:{host.name}")
            self._lsass_pid[host.name] = 4 * r.randrange(140, 260)
            self._sysmon_pid[host.name] = 4 * r.randrange(700, 1400)
            self._machine[host.name] = f"{r.randrange(16**8):08X}-{r.randrange(16**4):04X}"
        return self._lsass_pid[host.name]

    def proc_guid(self, host: Host, pid: int) -> str:
        self.lsass_pid(host)
        r = self.rng
        tail = f"0000000{r.randrange(16):X}0{r.randrange(256):02X}"
        return f"{self._machine[host.name]}-{r.randrange(16**4):04X}-{pid:04X}-{tail}"

    def logon_id(self) -> str:
        return hex(self.rng.randrange(0x100000, 0x7FFFFFF))

    def _guid(self) -> str:
        r = self.rng.getrandbits(128)
        h = f"{r:032X}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _record(
        self,
        ts: int,
        host: Host,
        prov: tuple[str, str, str],
        eid: int | dict[str, Any],
        level: int,
        task: int,
        keywords: str,
        version: int,
        exec_pid: int,
        uid: str | None,
        data: dict[str, Any],
        kind: str = "EventData",
        correlation: bool = False,
        source_name: bool = False,
    ) -> str:
        comp = self.fqdn(host)
        key = (comp, prov[2])
        self._rid[key] = self._rid.get(key, 0) + 1
        pattrs: dict[str, str] = {"Name": prov[0], "Guid": prov[1]}
        if source_name:
            pattrs["EventSourceName"] = prov[0]
        system: dict[str, Any] = {
            "Provider": {"#attributes": pattrs},
            "EventID": eid,
            "Version": version,
            "Level": level,
            "Task": task,
            "Opcode": 0,
            "Keywords": keywords,
            "TimeCreated": {"#attributes": {"SystemTime": iso_us(ts)}},
            "EventRecordID": self._rid[key] + 1000 * (hash_host(comp + prov[2]) % 900),  # logs predate April
            "Correlation": {"#attributes": {"ActivityID": self._guid()}} if correlation else None,
            "Execution": {
                "#attributes": {"ProcessID": exec_pid, "ThreadID": 4 * self.rng.randrange(50, 3000)}
            },
            "Channel": prov[2],
            "Computer": comp,
            "Security": {"#attributes": {"UserID": uid}} if uid else None,
        }
        ev = {
            "Event": {
                "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
                "System": system,
                kind: data,
            }
        }
        return orjson.dumps(ev).decode()

    def _sec(self, ts: int, host: Host, eid: int, data: dict[str, Any]) -> str:
        task, kw, ver = _SEC_META[eid]
        return self._record(
            ts,
            host,
            SEC,
            eid,
            0,
            task,
            kw,
            ver,
            self.lsass_pid(host),
            None,
            data,
            correlation=eid in (4624, 4625, 4648),
        )

    def _subject(self, user: User | None, logon_id: str | None = None) -> dict[str, str]:
        if user is None:  # the machine account / SYSTEM
            return {
                "SubjectUserSid": "S-1-5-18",
                "SubjectUserName": "-",
                "SubjectDomainName": "-",
                "SubjectLogonId": "0x3e7",
            }
        return {
            "SubjectUserSid": user.sid,
            "SubjectUserName": user.sam,
            "SubjectDomainName": self.w.netbios,
            "SubjectLogonId": logon_id or self.logon_id(),
        }

    # -- Security ------------------------------------------------------------------
    def e4624(
        self,
        ts: int,
        host: Host,
        user: User,
        logon_type: int,
        ip: str,
        workstation: str,
        package: str = "Kerberos",
        process: str = "-",
    ) -> str:
        ntlm = package == "NTLM"
        d = {
            **self._subject(None),
            "TargetUserSid": user.sid,
            "TargetUserName": user.sam,
            "TargetDomainName": self.w.netbios,
            "TargetLogonId": self.logon_id(),
            "LogonType": logon_type,
            # Service (5) and network-cleartext (8, IIS basic auth) logons come through Advapi,
            # interactive ones (2, unlock 7, RDP 10, cached 11) through User32.
            "LogonProcessName": "NtLmSsp "
            if ntlm
            else {2: "User32 ", 7: "User32 ", 10: "User32 ", 11: "User32 ", 5: "Advapi  ", 8: "Advapi  "}.get(
                logon_type, "Kerberos"
            ),
            "AuthenticationPackageName": "Negotiate" if logon_type in _INTERACTIVE else package,
            "WorkstationName": workstation,
            "LogonGuid": "00000000-0000-0000-0000-000000000000" if ntlm else self._guid(),
            "TransmittedServices": "-",
            "LmPackageName": "NTLM V2" if ntlm else "-",
            "KeyLength": 128 if ntlm else 0,
            "ProcessId": hex(self.lsass_pid(host)) if logon_type in _INTERACTIVE else "0x0",
            "ProcessName": process
            if process != "-"
            else ("C:\\Windows\\System32\\svchost.exe" if logon_type in _INTERACTIVE else "-"),
            "IpAddress": ip,
            "IpPort": {"-": "-", "127.0.0.1": "0"}.get(ip) or str(self.rng.randrange(49152, 65535)),
            "ImpersonationLevel": "%%1833",
            "RestrictedAdminMode": "-" if logon_type != 10 else "%%1843",
            "TargetOutboundUserName": "-",
            "TargetOutboundDomainName": "-",
            "VirtualAccount": "%%1843",
            "TargetLinkedLogonId": "0x0",
            "ElevatedToken": "%%1842" if user.admin else "%%1843",
        }
        if logon_type in _INTERACTIVE:
            d["SubjectUserSid"], d["SubjectUserName"] = "S-1-5-18", f"{host.name.upper()}$"
            d["SubjectDomainName"] = self.w.netbios
        return self._sec(ts, host, 4624, d)

    def e4625(
        self,
        ts: int,
        host: Host,
        user_name: str,
        logon_type: int,
        ip: str,
        workstation: str,
        sub_status: str = "0xc000006a",
        package: str = "NTLM",
        process: str = "",
    ) -> str:
        """`process`: the process that asked (e.g. IIS's w3wp.exe for basic auth, logon type 8)."""
        known = sub_status != "0xc0000064"
        d = {
            **self._subject(None),
            "TargetUserSid": "S-1-0-0",
            "TargetUserName": user_name,
            "TargetDomainName": self.w.netbios if known else "",
            "Status": "0xc000006d",
            "FailureReason": "%%2313",
            "SubStatus": sub_status,
            "LogonType": logon_type,
            "LogonProcessName": "NtLmSsp " if package == "NTLM" else ("Advapi  " if logon_type == 8 else "User32 "),
            "AuthenticationPackageName": package if package == "NTLM" else "Negotiate",
            "WorkstationName": workstation,
            "TransmittedServices": "-",
            "LmPackageName": "-",
            "KeyLength": 0,
            "ProcessId": "0x0" if logon_type == 3 else hex(self.lsass_pid(host) + (1000 if process else 0)),
            "ProcessName": process or ("-" if logon_type == 3 else "C:\\Windows\\System32\\svchost.exe"),
            "IpAddress": ip,
            "IpPort": str(self.rng.randrange(49152, 65535)) if ip != "-" else "-",
        }
        return self._sec(ts, host, 4625, d)

    def e4648(
        self, ts: int, host: Host, subject: User, target: User, server: str, process: str, ip: str
    ) -> str:
        d = {
            **self._subject(subject),
            "LogonGuid": "00000000-0000-0000-0000-000000000000",
            "TargetUserName": target.sam,
            "TargetDomainName": self.w.netbios,
            "TargetLogonGuid": "00000000-0000-0000-0000-000000000000",
            "TargetServerName": server,
            "TargetInfo": server,
            "ProcessId": hex(4 * self.rng.randrange(300, 4000)),
            "ProcessName": process,
            "IpAddress": ip,
            "IpPort": "445" if ip != "-" else "-",
        }
        return self._sec(ts, host, 4648, d)

    def e4672(self, ts: int, host: Host, user: User) -> str:
        d = {
            **self._subject(user),
            "PrivilegeList": "SeSecurityPrivilege\n\t\t\tSeBackupPrivilege\n\t\t\t"
            "SeRestorePrivilege\n\t\t\tSeTakeOwnershipPrivilege\n\t\t\tSeDebugPrivilege\n\t\t\t"
            "SeSystemEnvironmentPrivilege\n\t\t\tSeLoadDriverPrivilege\n\t\t\tSeImpersonatePrivilege\n\t\t\t"
            "SeDelegateSessionUserImpersonatePrivilege\n\t\t\tSeEnableDelegationPrivilege",
        }
        return self._sec(ts, host, 4672, d)

    def e4688(
        self,
        ts: int,
        host: Host,
        user: User,
        image: str,
        cmdline: str,
        pid: int,
        parent: str,
        ppid: int,
        elevated: bool = False,
    ) -> str:
        d = {
            **self._subject(user),
            "NewProcessId": hex(pid),
            "NewProcessName": image,
            "TokenElevationType": "%%1937" if elevated else "%%1938",
            "ProcessId": hex(ppid),
            "CommandLine": cmdline,
            "TargetUserSid": "S-1-0-0",
            "TargetUserName": "-",
            "TargetDomainName": "-",
            "TargetLogonId": "0x0",
            "ParentProcessName": parent,
            "MandatoryLabel": "S-1-16-12288" if elevated else "S-1-16-8192",
        }
        return self._sec(ts, host, 4688, d)

    def e4720(self, ts: int, dc: Host, subject: User, new: User) -> str:
        d = {
            "TargetUserName": new.sam,
            "TargetDomainName": self.w.netbios,
            "TargetSid": new.sid,
            **self._subject(subject),
            "PrivilegeList": "-",
            "SamAccountName": new.sam,
            "DisplayName": new.display,
            "UserPrincipalName": f"{new.sam}@{self.w.dns_domain}",
            "HomeDirectory": "-",
            "HomePath": "-",
            "ScriptPath": "-",
            "ProfilePath": "-",
            "UserWorkstations": "-",
            "PasswordLastSet": "%%1794",
            "AccountExpires": "%%1794",
            "PrimaryGroupId": "513",
            "AllowedToDelegateTo": "-",
            "OldUacValue": "0x0",
            "NewUacValue": "0x15",
            "UserAccountControl": "\n\t\t%%2080\n\t\t%%2082\n\t\t%%2084",
            "UserParameters": "%%1793",
            "SidHistory": "-",
            "LogonHours": "%%1797",
        }
        return self._sec(ts, dc, 4720, d)

    def e_group_add(
        self, ts: int, dc: Host, eid: int, subject: User, member: User, group: str, group_sid: str
    ) -> str:
        member_dn = f"CN={member.display},OU=Users,OU={self.w.netbios},DC=" + ",DC=".join(
            self.w.dns_domain.split(".")
        )
        d = {
            "MemberName": member_dn,
            "MemberSid": member.sid,
            "TargetUserName": group,
            "TargetDomainName": "Builtin"
            if eid == 4732 and group_sid.startswith("S-1-5-32")
            else self.w.netbios,
            "TargetSid": group_sid,
            **self._subject(subject),
            "PrivilegeList": "-",
        }
        return self._sec(ts, dc, eid, d)

    def _kerberos_client(self, ip: str) -> dict[str, str]:
        return {"IpAddress": f"::ffff:{ip}", "IpPort": str(self.rng.randrange(49152, 65535))}

    def _preauth(self, ip: str, preauth: str = "2") -> dict[str, str]:
        """The tail of a Kerberos pre-authentication event (4768, 4771): client address, no certificate.
        PreAuthType 2 is encrypted timestamp; 0 means the account does not require pre-authentication."""
        return {
            "PreAuthType": preauth,
            **self._kerberos_client(ip),
            "CertIssuerName": "",
            "CertSerialNumber": "",
            "CertThumbprint": "",
        }

    def e4768(self, ts: int, dc: Host, user: User, ip: str, status: str = "0x0", preauth: str = "2") -> str:
        d = {
            "TargetUserName": user.sam,
            "TargetDomainName": self.w.netbios.upper(),
            "TargetSid": user.sid,
            "ServiceName": "krbtgt",
            "ServiceSid": f"{self.w.domain_sid}-502",
            "TicketOptions": "0x40810010",
            "Status": status,
            "TicketEncryptionType": "0x12",
            **self._preauth(ip, preauth),
        }
        return self._sec(ts, dc, 4768, d)

    def e4769(
        self,
        ts: int,
        dc: Host,
        user: User,
        service: str,
        service_sid: str,
        ip: str,
        etype: str = "0x12",
        options: str = "0x40810000",
    ) -> str:
        d = {
            "TargetUserName": f"{user.sam}@{self.w.dns_domain.upper()}",
            "TargetDomainName": self.w.dns_domain.upper(),
            "ServiceName": service,
            "ServiceSid": service_sid,
            "TicketOptions": options,
            "TicketEncryptionType": etype,
            **self._kerberos_client(ip),
            "Status": "0x0",
            "LogonGuid": self._guid(),
            "TransmittedServices": "-",
        }
        return self._sec(ts, dc, 4769, d)

    def e4771(self, ts: int, dc: Host, user: User, ip: str) -> str:
        d = {
            "TargetUserName": user.sam,
            "TargetSid": user.sid,
            "ServiceName": f"krbtgt/{self.w.dns_domain.upper()}",
            "TicketOptions": "0x40810010",
            "Status": "0x18",
            **self._preauth(ip),
        }
        return self._sec(ts, dc, 4771, d)

    def e4776(self, ts: int, dc: Host, user_name: str, workstation: str, status: str = "0x0") -> str:
        d = {
            "PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0",
            "TargetUserName": user_name,
            "Workstation": workstation,
            "Status": status,
        }
        return self._sec(ts, dc, 4776, d)

    def e5136(
        self,
        ts: int,
        dc: Host,
        subject: User,
        object_dn: str,
        object_class: str,
        attr: str,
        value: str,
        added: bool = True,
        corr: str | None = None,
    ) -> str:
        d = {
            "OpCorrelationID": corr or self._guid(),
            "AppCorrelationID": "-",
            **self._subject(subject),
            "DSName": self.w.dns_domain,
            "DSType": "%%14676",
            "ObjectDN": object_dn,
            "ObjectGUID": self._guid(),
            "ObjectClass": object_class,
            "AttributeLDAPDisplayName": attr,
            "AttributeSyntaxOID": "2.5.5.12" if attr != "versionNumber" else "2.5.5.9",
            "AttributeValue": value,
            "OperationType": "%%14674" if added else "%%14675",
        }
        return self._sec(ts, dc, 5136, d)

    def e5145(
        self,
        ts: int,
        host: Host,
        user: User,
        ip: str,
        share: str,
        local: str,
        target: str,
        access: str = "0x2",
    ) -> str:
        d = {
            **self._subject(user),
            "ObjectType": "File",
            "IpAddress": ip,
            "IpPort": str(self.rng.randrange(49152, 65535)),
            "ShareName": share,
            "ShareLocalPath": local,
            "RelativeTargetName": target,
            "AccessMask": access,
            "AccessList": "%%4417\n\t\t\t\t" if access == "0x2" else "%%4416\n\t\t\t\t",
            "AccessReason": "-",
        }
        return self._sec(ts, host, 5145, d)

    def e1102(self, ts: int, host: Host, user: User) -> str:
        data = {
            "LogFileCleared": {
                "#attributes": {"xmlns": "http://manifests.microsoft.com/win/2004/08/windows/eventlog"},
                "SubjectUserSid": user.sid,
                "SubjectUserName": user.sam,
                "SubjectDomainName": self.w.netbios,
                "SubjectLogonId": self.logon_id(),
            }
        }
        return self._record(
            ts,
            host,
            (*EVENTLOG, "Security"),
            1102,
            4,
            104,
            "0x4020000000000000",
            0,
            self.lsass_pid(host) + 400,
            None,
            data,
            kind="UserData",
        )

    # -- System --------------------------------------------------------------------
    def e7045(
        self,
        ts: int,
        host: Host,
        name: str,
        image: str,
        account: str = "LocalSystem",
        start: str = "demand start",
    ) -> str:
        data = {
            "ServiceName": name,
            "ImagePath": image,
            "ServiceType": "user mode service",
            "StartType": start,
            "AccountName": account,
        }
        return self._record(
            ts,
            host,
            ("Service Control Manager", "{555908d1-a6d7-4695-8e1e-26931d2012f4}", "System"),
            {"#attributes": {"Qualifiers": 16384}, "#text": 7045},
            4,
            0,
            "0x8080000000000000",
            0,
            self.lsass_pid(host) - 40,
            "S-1-5-18",
            data,
            source_name=True,
        )

    def e104(self, ts: int, host: Host, user: User, channel: str = "System") -> str:
        data = {
            "LogFileCleared": {
                "#attributes": {"xmlns": "http://manifests.microsoft.com/win/2004/08/windows/eventlog"},
                "SubjectUserName": user.sam,
                "SubjectDomainName": self.w.netbios,
                "Channel": channel,
                "BackupPath": "",
            }
        }
        return self._record(
            ts,
            host,
            (*EVENTLOG, "System"),
            104,
            4,
            104,
            "0x8000000000000000",
            0,
            self.lsass_pid(host) + 400,
            user.sid,
            data,
            kind="UserData",
        )

    # -- Sysmon --------------------------------------------------------------------
    def _sysmon(self, ts: int, host: Host, eid: int, data: dict[str, Any]) -> str:
        self.lsass_pid(host)
        return self._record(
            ts,
            host,
            SYSMON,
            eid,
            4,
            _SYSMON_TASK[eid],
            "0x8000000000000000",
            _SYSMON_VERSION[eid],
            self._sysmon_pid[host.name],
            "S-1-5-18",
            data,
        )

    def _uname(self, user: User | str) -> str:
        if isinstance(user, str):
            return user
        return f"{self.w.netbios}\\{user.sam}"

    def s1(
        self,
        ts: int,
        host: Host,
        user: User | str,
        image: str,
        cmdline: str,
        pid: int,
        parent: str,
        parent_cmd: str,
        ppid: int,
        integrity: str = "Medium",
        cwd: str = "C:\\Windows\\system32\\",
    ) -> str:
        ver, desc, prod, comp, orig = _meta(image)
        d = {
            "RuleName": "-",
            "UtcTime": sysmon_time(ts),
            "ProcessGuid": self.proc_guid(host, pid),
            "ProcessId": pid,
            "Image": image,
            "FileVersion": ver,
            "Description": desc,
            "Product": prod,
            "Company": comp,
            "OriginalFileName": orig,
            "CommandLine": cmdline,
            "CurrentDirectory": cwd,
            "User": self._uname(user),
            "LogonGuid": self.proc_guid(host, 0),
            "LogonId": self.logon_id(),
            "TerminalSessionId": 1,
            "IntegrityLevel": integrity,
            "Hashes": _hashes(image),
            "ParentProcessGuid": self.proc_guid(host, ppid),
            "ParentProcessId": ppid,
            "ParentImage": parent,
            "ParentCommandLine": parent_cmd,
            "ParentUser": self._uname(user),
        }
        return self._sysmon(ts, host, 1, d)

    def s3(
        self,
        ts: int,
        host: Host,
        user: User | str,
        image: str,
        pid: int,
        proto: str,
        dst_ip: str,
        dport: int,
        dst_name: str = "",
    ) -> str:
        d = {
            "RuleName": "-",
            "UtcTime": sysmon_time(ts),
            "ProcessGuid": self.proc_guid(host, pid),
            "ProcessId": pid,
            "Image": image,
            "User": self._uname(user),
            "Protocol": proto,
            "Initiated": True,
            "SourceIsIpv6": False,
            "SourceIp": host.ip,
            "SourceHostname": self.fqdn(host),
            "SourcePort": self.rng.randrange(49152, 65535),
            "SourcePortName": "-",
            "DestinationIsIpv6": False,
            "DestinationIp": dst_ip,
            "DestinationHostname": dst_name or "-",
            "DestinationPort": dport,
            "DestinationPortName": {443: "https", 80: "http", 445: "microsoft-ds", 53: "domain"}.get(
                dport, "-"
            ),
        }
        return self._sysmon(ts, host, 3, d)

    def s10(
        self,
        ts: int,
        host: Host,
        src_image: str,
        src_pid: int,
        target_image: str,
        target_pid: int,
        access: str,
        calltrace: str,
        src_user: str,
    ) -> str:
        d = {
            "RuleName": "-",
            "UtcTime": sysmon_time(ts),
            "SourceProcessGUID": self.proc_guid(host, src_pid),
            "SourceProcessId": src_pid,
            "SourceThreadId": 4 * self.rng.randrange(100, 3000),
            "SourceImage": src_image,
            "TargetProcessGUID": self.proc_guid(host, target_pid),
            "TargetProcessId": target_pid,
            "TargetImage": target_image,
            "GrantedAccess": access,
            "CallTrace": calltrace,
            "SourceUser": src_user,
            "TargetUser": "NT AUTHORITY\\SYSTEM",
        }
        return self._sysmon(ts, host, 10, d)

    def s11(self, ts: int, host: Host, user: User | str, image: str, pid: int, target: str) -> str:
        d = {
            "RuleName": "-",
            "UtcTime": sysmon_time(ts),
            "ProcessGuid": self.proc_guid(host, pid),
            "ProcessId": pid,
            "Image": image,
            "TargetFilename": target,
            "CreationUtcTime": sysmon_time(ts),
            "User": self._uname(user),
        }
        return self._sysmon(ts, host, 11, d)

    def s13(self, ts: int, host: Host, user: User | str, image: str, pid: int, key: str, details: str) -> str:
        d = {
            "RuleName": "-",
            "EventType": "SetValue",
            "UtcTime": sysmon_time(ts),
            "ProcessGuid": self.proc_guid(host, pid),
            "ProcessId": pid,
            "Image": image,
            "TargetObject": key,
            "Details": details,
            "User": self._uname(user),
        }
        return self._sysmon(ts, host, 13, d)

    def s22(
        self, ts: int, host: Host, user: User | str, image: str, pid: int, query: str, results: str
    ) -> str:
        d = {
            "RuleName": "-",
            "UtcTime": sysmon_time(ts),
            "ProcessGuid": self.proc_guid(host, pid),
            "ProcessId": pid,
            "QueryName": query,
            "QueryStatus": "0",
            "QueryResults": results,
            "Image": image,
            "User": self._uname(user),
        }
        return self._sysmon(ts, host, 22, d)

    # -- PowerShell ----------------------------------------------------------------
    def p4104(
        self,
        ts: int,
        host: Host,
        user: User,
        script: str,
        path: str = "",
        warning: bool = False,
        pid: int = 0,
    ) -> str:
        d = {
            "MessageNumber": 1,
            "MessageTotal": 1,
            "ScriptBlockText": script,
            "ScriptBlockId": self._guid().lower(),
            "Path": path,
        }
        return self._record(
            ts,
            host,
            PWSH,
            4104,
            3 if warning else 5,
            2,
            "0x0",
            1,
            pid or 4 * self.rng.randrange(300, 4000),
            user.sid,
            d,
        )


def hash_host(name: str) -> int:
    """Stable small integer per host (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big")
