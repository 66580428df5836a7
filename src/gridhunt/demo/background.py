"""Benign background activity, one day at a time, chosen to be hard on naive detectors:
admins using PowerShell and PsExec, SCCM running encoded PowerShell, users mistyping
passwords (1-3 times, then the good one from the same address), a scanner with a stale
password failing every hour, a legacy app asking for RC4 Kerberos tickets, periodic traffic
that looks like beacons (NTP, AV telemetry, update checks, the AMI vendor's real telemetry),
CDN hosts with random-looking names, vendor staff on the VPN from their usual country at
usual hours (every one of them in the two baseline days before the intrusion), a control-room
roster at the HMIs, approved off-hours AMI jobs and firmware pushes with change tickets, and
legitimate bulk meter reads. The targeted look-alikes of each detector are in `lookalikes.py`.
"""

from __future__ import annotations

import base64
import math
import random
from typing import Any

from gridhunt.demo.cast import TRIP_DAYS, cast
from gridhunt.demo.context import TOKEN_NEW, TOKEN_OLD, TOKEN_ROTATE_BY, Change
from gridhunt.demo.netlog import Net
from gridhunt.demo.sinks import Sink
from gridhunt.demo.timeutil import DAY, DAYS, HOUR, MINUTE, START, US, at, weekday
from gridhunt.demo.winevents import WinLog, hash_host
from gridhunt.demo.world import Host, User, World

APPS = [
    (
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
        '"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE"',
    ),
    (
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE",
        '"C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE" /dde',
    ),
    (
        "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
        '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"',
    ),
    (
        "C:\\Program Files\\WindowsApps\\MSTeams_24060.2623.2790.8046_x64__8wekyb3d8bbwe\\ms-teams.exe",
        "ms-teams.exe --system-initiated",
    ),
    (
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
        '"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE" /n',
    ),
]
EXPLORER = "C:\\Windows\\explorer.exe"
PS = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
ADMIN_SCRIPTS = [
    "Get-ADUser -Filter * -Properties LastLogonDate"
    " | Where-Object {$_.LastLogonDate -lt (Get-Date).AddDays(-90)}"
    " | Select Name,LastLogonDate",
    "Get-ADGroupMember -Identity 'Domain Admins' | Select-Object Name,SamAccountName",
    "Get-Service -ComputerName {srv} -Name Spooler,W32Time | Format-Table -AutoSize",
    "Invoke-Command -ComputerName {srv} -ScriptBlock { Get-HotFix | Sort-Object InstalledOn -Descending"
    " | Select -First 5 }",
    "Test-NetConnection -ComputerName {srv} -Port 445",
    "Get-WinEvent -ComputerName {srv} -LogName System -MaxEvents 50 | Where-Object Level -le 2",
    "Get-ADComputer -Filter 'OperatingSystem -like \"*Server*\"' -Properties OperatingSystem"
    " | Export-Csv C:\\Temp\\servers.csv -NoTypeInformation",
    "Restart-Service -Name Spooler -Force",
]
SCCM_SCRIPT = (
    "$ErrorActionPreference='SilentlyContinue'; Get-CimInstance -ClassName Win32_InstalledWin32Program | "
    "Select-Object Name,Version,Vendor | ConvertTo-Json -Compress | Out-File "
    "C:\\Windows\\CCM\\Inventory\\Temp\\apps.json"
)
AV_AGENT = "C:\\Program Files\\SecureAV\\avagent.exe"
DEFENDER = "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24030.9-0\\MsMpEng.exe"
LSASS = "C:\\Windows\\system32\\lsass.exe"


def pois(rng: random.Random, lam: float) -> int:
    """Poisson draw; normal approximation for large means keeps --size large fast."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def encode_ps(script: str) -> str:
    return base64.b64encode(script.encode("utf-16-le")).decode()



def firmware_push(
    net: Net,
    w: World,
    ch: Change,
    src: str,
    dur: float,
    ob: int,
    rb: int,
    target_type: str,
    target_id: str,
    count: int,
    params: dict[str, Any],
    tag: str | None = None,
) -> None:
    """The head-end fetches an image from the vendor's update channel, then pushes it under change `ch`."""
    assert w.vendor_svc is not None
    channel = f"updates.{w.vendor_domain}"
    net.https(
        ch.start + 10 * MINUTE, src, w.external[channel], channel, dur=dur, ob=ob, rb=rb, rule="AMI-VENDOR-UPDATES"
    )
    net.ami(
        ch.start + 20 * MINUTE,
        "headend",
        "headend",
        w.vendor_svc.sam,
        src,
        "firmware_push",
        target_type,
        target_id,
        count,
        {"ticket": ch.ticket, "channel": channel, **params},
        tag=tag,
    )

class Background:
    def __init__(
        self,
        w: World,
        sinks: dict[str, Sink],
        win: WinLog,
        net: Net,
        rng: random.Random,
        rate: float,
        agents: bool,
        cal: dict[str, Change],
    ) -> None:
        self.w, self.s, self.win, self.net, self.rng = w, sinks, win, net, rng
        self.rate, self.agents, self.cal = rate, agents, cal
        self._machine_users: dict[str, User] = {}
        self.scanner_user = User("scan2folder", "Scan to folder", f"{w.domain_sid}-1190", "it")
        self.sites = [
            n
            for n in w.external
            if n.endswith((".example",)) and "vendor" not in n and w.vendor_slug not in n and "pool" not in n
        ]
        self.servers = [
            w.h(k) for k in ("fs01", "fs02", "mail01", "sql01", "web01", "backup01", "print01", "wsus01")
        ]
        # Days someone is not at their desk: lookalikes.py writes their logons instead (the night
        # shift never uses its office PC; the traveller logs in from France).
        self.cast = cast(w)
        self.away: dict[str, set[int]] = {u.sam: set(range(DAYS)) for u in self.cast.night_ops}
        self.away[self.cast.traveller.sam] = set(TRIP_DAYS)

    # -- helpers -------------------------------------------------------------------
    def machine(self, host: Host) -> User:
        if host.name not in self._machine_users:
            self._machine_users[host.name] = User(
                f"{host.name.upper()}$",
                host.name.upper(),
                f"{self.w.domain_sid}-{3000 + hash_host(host.name) % 5000}",
                "it",
            )
        return self._machine_users[host.name]

    def pid(self) -> int:
        return 4 * self.rng.randrange(200, 16000)

    def typos(self) -> int:
        """How many times someone who mistypes a password gets it wrong: 1 mostly, up to 3."""
        x = self.rng.random()
        return 1 if x < 0.7 else (2 if x < 0.92 else 3)

    def dc_for(self, host: Host) -> Host:
        if host.zone == "ot-control":
            return self.w.h("otdc01")
        return self.w.h("dc01") if hash_host(host.name) % 2 == 0 else self.w.h("dc02")

    def proc(
        self,
        ts: int,
        host: Host,
        user: User | str,
        image: str,
        cmd: str,
        parent: str,
        parent_cmd: str,
        ppid: int,
        sec_user: User | None = None,
        integrity: str = "Medium",
        audit: bool = True,
    ) -> int:
        pid = self.pid()
        self.s["sysmon"].add(
            ts, self.win.s1, host, user, image, cmd, pid, parent, parent_cmd, ppid, integrity
        )
        if audit and sec_user is not None:
            self.s["sec"].add(
                ts + 300, self.win.e4688, host, sec_user, image, cmd, pid, parent, ppid, integrity != "Medium"
            )
        return pid

    def web(self, ts: int, host: Host, user: User | None, src_ip: str) -> None:
        site = self.rng.choice(self.sites)
        ip = self.w.external[site]
        self.net.dns(ts, src_ip, site, (ip,), ttl=60 if "cdn" in site or "edge" in site else 300)
        if user is not None and self.rng.random() < 0.4:
            self.s["sysmon"].add(ts, self.win.s22, host, user, APPS[2][0], self.pid(), site, f"::ffff:{ip};")
        self.net.https(
            ts + 30_000,
            src_ip,
            ip,
            site,
            dur=self.rng.uniform(0.2, 40),
            ob=self.rng.randrange(600, 9000),
            rb=self.rng.randrange(2000, 900_000),
        )

    # -- one day -------------------------------------------------------------------
    def day(self, d: int) -> None:
        day0 = START + d * DAY
        wd = weekday(d)
        workday = wd < 5
        self.users(d, day0, workday)
        self.admins(d, day0, workday)
        self.servers_day(d, day0, workday)
        self.periodic(day0)
        self.vendor(d, day0, workday)
        self.ami(d, day0, workday)
        self.dms(day0)

    def users(self, d: int, day0: int, workday: bool) -> None:
        rng, w, win, sec = self.rng, self.w, self.win, self.s["sec"]
        for i, u in enumerate(w.users):
            if d in self.away.get(u.sam, ()):
                continue
            if rng.random() > (0.88 if workday else 0.03):
                continue
            ws = u.workstation
            assert ws is not None
            t = day0 + int(rng.uniform(7, 9.5) * HOUR)
            src_ip = ws.ip
            if u.remote and rng.random() < 0.5:
                assigned = f"10.10.250.{10 + i % 240}"
                session = f"S{d:02d}{i:04d}{rng.randrange(1000, 9999)}"
                dur = int(rng.uniform(6, 9) * HOUR)
                # The tunnel comes up before the domain logon (and its typos) that travel inside it.
                up = t - 3 * MINUTE
                if rng.random() < 0.05:  # 1-3 typos, then the good password from the same address
                    for k in range(self.typos()):
                        ts = up - (30 + 35 * k) * US
                        self.net.vpn(ts, u.sam, u.home_ip, "", "login_failed", "bad password")
                self.net.vpn_session(up, t + dur, u.sam, u.home_ip, assigned, session, dur / US, rng)
                src_ip = assigned
            dc = self.dc_for(ws)
            if rng.random() < 0.07:  # 1-3 mistyped passwords before the good one, same machine
                for k in range(self.typos()):
                    ts = t - (25 + 20 * k) * US
                    sec.add(ts, win.e4771, dc, u, src_ip)
                    sec.add(
                        ts + US,
                        win.e4625,
                        ws,
                        u.sam,
                        2,
                        "127.0.0.1",
                        ws.name.upper(),
                        "0xc000006a",
                        "Negotiate",
                    )
            sec.add(t, win.e4768, dc, u, src_ip)
            sec.add(t + 40_000, win.e4769, dc, u, f"{ws.name.upper()}$", self.machine(ws).sid, src_ip)
            sec.add(t + 90_000, win.e4624, ws, u, 2, "127.0.0.1", ws.name.upper())
            fs = w.h("fs01") if i % 3 else w.h("fs02")
            sec.add(t + 5 * MINUTE, win.e4769, dc, u, f"{fs.name.upper()}$", self.machine(fs).sid, src_ip)
            for _ in range(max(1, pois(rng, 1.5 * self.rate))):
                image, cmd = rng.choice(APPS)
                self.proc(
                    t + int(rng.uniform(1, 8 * 60) * MINUTE),
                    ws,
                    u,
                    image,
                    cmd,
                    EXPLORER,
                    "C:\\Windows\\Explorer.EXE",
                    4 * rng.randrange(1000, 2000),
                    sec_user=u,
                    audit=rng.random() < 0.5,
                )
            for _ in range(pois(rng, 1.1 * self.rate)):
                self.web(t + int(rng.uniform(1, 9 * 60) * MINUTE), ws, u, src_ip)
            for _ in range(pois(rng, 0.2 * self.rate)):
                share = rng.choice(["Finance", "Engineering", "Shared", "GIS"])
                sec.add(
                    t + int(rng.uniform(10, 480) * MINUTE),
                    win.e5145,
                    fs,
                    u,
                    src_ip,
                    f"\\\\*\\{share}",
                    f"\\??\\D:\\Shares\\{share}",
                    f"Reports\\{rng.randrange(2024, 2027)}\\Q{rng.randrange(1, 5)}.xlsx",
                    "0x1",
                )
            if rng.random() < 0.12 * self.rate:
                att = (
                    f"C:\\Users\\{u.sam}\\AppData\\Local\\Microsoft\\Windows\\INetCache\\Content.Outlook\\"
                    f"{rng.choice(['K3J9', 'Q8ZP', 'M2XW'])}{rng.randrange(10, 99)}\\"
                    f"{rng.choice(['Invoice', 'Minutes', 'Rota', 'Outage_Report'])}_{rng.randrange(100, 999)}"
                    f".{rng.choice(['pdf', 'docx', 'xlsx'])}"
                )
                self.s["sysmon"].add(
                    t + int(rng.uniform(5, 400) * MINUTE), win.s11, ws, u, APPS[0][0], self.pid(), att
                )
            if rng.random() < 0.03:
                self.s["sysmon"].add(
                    t + 2 * MINUTE,
                    win.s13,
                    ws,
                    u,
                    "C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe",
                    self.pid(),
                    f"HKU\\{u.sid}\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\OneDrive",
                    '"C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe" /background',
                )
        # SCCM hardware/software inventory runs encoded PowerShell as SYSTEM on a slice of machines.
        enc = encode_ps(SCCM_SCRIPT)
        for ws in rng.sample(w.workstations, min(len(w.workstations), max(1, round(12 * self.rate)))):
            ts = day0 + int(rng.uniform(0, 24) * HOUR)
            ccm = "C:\\Windows\\CCM\\CcmExec.exe"
            cmd = f'"{PS}" -NoLogo -NonInteractive -ExecutionPolicy Bypass -EncodedCommand {enc}'
            pid = self.proc(
                ts,
                ws,
                "NT AUTHORITY\\SYSTEM",
                PS,
                cmd,
                ccm,
                ccm,
                4 * rng.randrange(900, 1200),
                sec_user=self.machine(ws),
                integrity="System",
            )
            self.s["ps"].add(ts + 800_000, win.p4104, ws, self.machine(ws), SCCM_SCRIPT, "", False, pid)

    def admins(self, d: int, day0: int, workday: bool) -> None:
        rng, w, win, sec = self.rng, self.w, self.win, self.s["sec"]
        if not workday:
            return
        for adm in w.admins:
            if rng.random() < 0.15:
                continue
            ws = adm.workstation
            assert ws is not None
            t = day0 + int(rng.uniform(7.5, 9.5) * HOUR)
            dc = self.dc_for(ws)
            sec.add(t, win.e4768, dc, adm, ws.ip)
            sec.add(t + 90_000, win.e4624, ws, adm, 2, "127.0.0.1", ws.name.upper())
            sec.add(t + 91_000, win.e4672, ws, adm)
            ps_pid = self.proc(
                t + 3 * MINUTE,
                ws,
                adm,
                PS,
                f'"{PS}"',
                EXPLORER,
                "C:\\Windows\\Explorer.EXE",
                4 * rng.randrange(1000, 2000),
                sec_user=adm,
                integrity="High",
            )
            for _ in range(max(1, pois(rng, 3 * self.rate))):
                srv = rng.choice(self.servers)
                script = rng.choice(ADMIN_SCRIPTS).replace("{srv}", srv.name)
                self.s["ps"].add(
                    t + int(rng.uniform(4, 480) * MINUTE), win.p4104, ws, adm, script, "", False, ps_pid
                )
            if rng.random() < 0.35:  # legitimate PsExec to a server, business hours
                self.psexec(
                    t + int(rng.uniform(30, 420) * MINUTE),
                    ws,
                    rng.choice(self.servers),
                    adm,
                    rng.choice(
                        [
                            "ipconfig /flushdns",
                            "gpupdate /force",
                            "net stop spooler && net start spooler",
                            "wuauclt /detectnow",
                        ]
                    ),
                )
            if rng.random() < 0.05:  # periodic privileged-group review
                ts = t + int(rng.uniform(60, 400) * MINUTE)
                self.proc(
                    ts,
                    ws,
                    adm,
                    "C:\\Windows\\System32\\net.exe",
                    'net group "Domain Admins" /domain',
                    PS,
                    f'"{PS}"',
                    ps_pid,
                    sec_user=adm,
                    integrity="High",
                )
        # Joiners: a new account and its department group, during business hours.
        if rng.random() < 0.2:
            adm = rng.choice(w.admins)
            f, last = (
                rng.choice(["alex", "sam", "jordan", "taylor", "casey", "morgan"]),
                rng.choice(["reed", "hale", "ford", "shaw"]),
            )
            nu = User(
                f"{f[0]}{last}{d:02d}", f"{f.title()} {last.title()}", f"{w.domain_sid}-{5200 + d}", "billing"
            )
            ts = day0 + int(rng.uniform(9, 16) * HOUR)
            dc = w.h("dc01")
            sec.add(ts, win.e4720, dc, adm, nu)
            sec.add(
                ts + 20 * US,
                win.e_group_add,
                dc,
                4728,
                adm,
                nu,
                "GG-Billing",
                f"{w.domain_sid}-{1400 + d % 7}",
            )
            sec.add(ts + 25 * US, win.e_group_add, dc, 4756, adm, nu, "UG-AllStaff", f"{w.domain_sid}-1399")
        if rng.random() < 0.15:  # helpdesk granted RDP on a server for a ticket
            adm = rng.choice(w.admins)
            ts = day0 + int(rng.uniform(9, 16) * HOUR)
            member = rng.choice(w.users)
            srv = rng.choice(self.servers)
            sec.add(ts, win.e_group_add, srv, 4732, adm, member, "Remote Desktop Users", "S-1-5-32-555")
        for _ in range(pois(rng, 2 * self.rate)):  # routine attribute edits by helpdesk
            adm = rng.choice(w.admins)
            u = rng.choice(w.users)
            ts = day0 + int(rng.uniform(8, 17) * HOUR)
            dn = f"CN={u.display},OU=Users,OU={w.netbios},DC=" + ",DC=".join(w.dns_domain.split("."))
            sec.add(
                ts,
                win.e5136,
                w.h("dc01"),
                adm,
                dn,
                "user",
                rng.choice(["telephoneNumber", "description", "title"]),
                rng.choice(["+44 20 7946 0958", "Billing team", "Analyst"]),
            )
        ch = self.cal["gpo_lock"]
        if ch.start // DAY == day0 // DAY:  # approved GPO edit inside its change window
            adm = w.admins[0]
            guid = "{6AC1786C-016F-11D2-945F-00C04FB984F9}"
            dn = f"CN={guid},CN=Policies,CN=System,DC=" + ",DC=".join(w.dns_domain.split("."))
            corr = "8F3A1C52-7D0E-4B8A-9C11-2D6E5F0A7B34"
            sec.add(
                ch.start + 15 * MINUTE,
                win.e5136,
                w.h("dc01"),
                adm,
                dn,
                "groupPolicyContainer",
                "versionNumber",
                "65538",
                False,
                corr,
            )
            sec.add(
                ch.start + 15 * MINUTE + 1000,
                win.e5136,
                w.h("dc01"),
                adm,
                dn,
                "groupPolicyContainer",
                "versionNumber",
                "65539",
                True,
                corr,
            )
        ch = self.cal["lab_rebuild"]
        if ch.start // DAY == day0 // DAY:  # an admin resets logs on the lab box, with a ticket
            lab, adm = w.h("lab01"), w.admins[1]
            sec.add(ch.start + 30 * MINUTE, win.e1102, lab, adm)
            self.s["sys"].add(ch.start + 31 * MINUTE, win.e104, lab, adm)

    def psexec(
        self,
        ts: int,
        src: Host,
        dst: Host,
        user: User,
        command: str,
        tag: str | None = None,
        remote_image: str = "C:\\Windows\\PSEXESVC.exe",
    ) -> None:
        """Everything one PsExec run leaves behind, on both ends and on the wire."""
        rng, win = self.rng, self.win

        def t(label: str, eid: int, **kv: Any) -> tuple[str, dict[str, Any]] | None:
            return None if tag is None else (label, {"EventID": eid, **kv})

        assert tag is None or isinstance(tag, str)
        lab = tag or ""
        src_pid = self.pid()
        cmd = f'PsExec.exe \\\\{dst.name} -accepteula -s cmd /c "{command}"'
        self.s["sysmon"].add(
            ts,
            win.s1,
            src,
            user,
            "C:\\Tools\\SysinternalsSuite\\PsExec.exe",
            cmd,
            src_pid,
            PS if tag is None else "C:\\Windows\\System32\\cmd.exe",
            f'"{PS}"' if tag is None else '"C:\\Windows\\system32\\cmd.exe"',
            4 * rng.randrange(900, 2000),
            "High",
            tag=t(lab, 1, Image="C:\\Tools\\SysinternalsSuite\\PsExec.exe"),
        )
        self.net.flow(
            ts + 200_000,
            src.ip,
            dst.ip,
            445,
            "tcp",
            "smb",
            6.5,
            240_000,
            30_000,
            fw="fw-ot" if src.zone != dst.zone else None,
            rule="TEMP-VENDOR-SUPPORT",
            tag=tag,
        )
        sec = self.s["sec"]
        sec.add(
            ts + 300_000,
            win.e4624,
            dst,
            user,
            3,
            src.ip,
            src.name.upper(),
            tag=t(lab, 4624, TargetUserName=user.sam, LogonType=3, IpAddress=src.ip),
        )
        sec.add(ts + 301_000, win.e4672, dst, user, tag=t(lab, 4672, SubjectUserName=user.sam))
        sec.add(
            ts + 500_000,
            win.e5145,
            dst,
            user,
            src.ip,
            "\\\\*\\ADMIN$",
            "\\??\\C:\\Windows",
            "PSEXESVC.exe",
            tag=t(lab, 5145, RelativeTargetName="PSEXESVC.exe", ShareName="\\\\*\\ADMIN$"),
        )
        self.s["sysmon"].add(
            ts + 600_000,
            win.s11,
            dst,
            "NT AUTHORITY\\SYSTEM",
            "System",
            4,
            remote_image,
            tag=t(lab, 11, TargetFilename=remote_image),
        )
        self.s["sys"].add(
            ts + 900_000,
            win.e7045,
            dst,
            "PSEXESVC",
            "%SystemRoot%\\PSEXESVC.exe",
            tag=t(lab, 7045, ServiceName="PSEXESVC"),
        )
        svc_pid = self.pid()
        self.s["sysmon"].add(
            ts + 1_100_000,
            win.s1,
            dst,
            "NT AUTHORITY\\SYSTEM",
            remote_image,
            remote_image,
            svc_pid,
            "C:\\Windows\\System32\\services.exe",
            "C:\\Windows\\system32\\services.exe",
            4 * 170,
            "System",
            tag=t(lab, 1, Image=remote_image),
        )
        self.s["sysmon"].add(
            ts + 1_400_000,
            win.s1,
            dst,
            "NT AUTHORITY\\SYSTEM",
            "C:\\Windows\\System32\\cmd.exe",
            f'"cmd" /c "{command}"',
            self.pid(),
            remote_image,
            remote_image,
            svc_pid,
            "System",
            tag=t(lab, 1, ParentImage=remote_image),
        )

    def servers_day(self, d: int, day0: int, workday: bool) -> None:
        rng, w, win, sec = self.rng, self.w, self.win, self.s["sec"]
        for acct, host_key in [
            ("svc_sql", "sql01"),
            ("svc_backup", "backup01"),
            ("svc_web", "web01"),
            ("svc_sccm", "sccm01"),
            ("svc_historian", "hist01"),
        ]:
            host = w.h(host_key)
            ts = day0 + int(rng.uniform(0, 1) * HOUR)
            sec.add(
                ts,
                win.e4624,
                host,
                w.service_accounts[acct],
                5,
                "-",
                "-",
                "Negotiate",
                "C:\\Windows\\System32\\services.exe",
            )
            sec.add(ts + 1000, win.e4672, host, w.service_accounts[acct])
        # The intranet app talks to SQL all day; its service tickets are normal AES ones.
        web, dc = w.h("web01"), w.h("dc01")
        for _ in range(max(2, pois(rng, 6 * self.rate))):
            ts = day0 + int(rng.uniform(0, 24) * HOUR)
            svc = w.service_accounts["svc_sql"]
            sec.add(ts, win.e4769, dc, self.machine(web), svc.sam, svc.sid, web.ip)
        # A legacy reporting box still negotiates RC4 for one SPN: looks like roasting, isn't.
        if workday:
            legacy = w.h("sccm01")
            svc = w.service_accounts["svc_web"]
            for h in range(8, 17, 2):
                sec.add(
                    day0 + h * HOUR + rng.randrange(0, 600) * US,
                    win.e4769,
                    dc,
                    self.machine(legacy),
                    svc.sam,
                    svc.sid,
                    legacy.ip,
                    "0x17",
                )
            # The third-floor scanner's stored password is stale: one NTLM failure an hour.
            scanner, fs = w.h("scanner"), w.h("fs01")
            for h in range(7, 19):
                ts = day0 + h * HOUR + (hash_host(scanner.name) % 600) * US + rng.randrange(0, 5_000_000)
                sec.add(ts, win.e4776, dc, self.scanner_user.sam, "MFP-3F", "0xc000006a")
                sec.add(
                    ts + 20_000, win.e4625, fs, self.scanner_user.sam, 3, scanner.ip, "MFP-3F", "0xc000006a"
                )
        # AV and WMI touch lsass on every server daily; the AV agent even asks for 0x1010.
        for host in [w.h("dc01"), w.h("dc02"), *self.servers]:
            ts = day0 + int(rng.uniform(1, 5) * HOUR)
            self.s["sysmon"].add(
                ts,
                win.s10,
                host,
                DEFENDER,
                4 * rng.randrange(700, 900),
                LSASS,
                win.lsass_pid(host),
                "0x1000",
                "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\Windows\\System32\\KERNELBASE.dll+2c13e",
                "NT AUTHORITY\\SYSTEM",
            )
            if rng.random() < 0.3:
                self.s["sysmon"].add(
                    ts + HOUR,
                    win.s10,
                    host,
                    AV_AGENT,
                    4 * rng.randrange(900, 1100),
                    LSASS,
                    win.lsass_pid(host),
                    "0x1010",
                    "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\Program Files\\SecureAV\\avscan.dll+4a1f2",
                    "NT AUTHORITY\\SYSTEM",
                )
        # Software updates install services now and then (Patch Tuesday-ish, and browsers).
        ch = self.cal["patching"]
        if ch.start // DAY == day0 // DAY:
            for i, host in enumerate(self.servers):
                self.s["sys"].add(
                    ch.start + (10 + 5 * i) * MINUTE,
                    win.e7045,
                    host,
                    "SecureAV Update Helper",
                    '"C:\\Program Files\\SecureAV\\avupdate.exe" -service',
                    "LocalSystem",
                    "auto start",
                )
        if d % 9 == 3:
            for ws in rng.sample(w.workstations, max(1, round(4 * self.rate))):
                self.s["sys"].add(
                    day0 + int(rng.uniform(8, 18) * HOUR),
                    win.e7045,
                    ws,
                    "Google Update Service (gupdate)",
                    '"C:\\Program Files (x86)\\Google\\Update\\GoogleUpdate.exe" /svc',
                    "LocalSystem",
                    "auto start",
                )
        # Control-room day crew at the HMIs: half on the early shift (06:00), half on the late one
        # (14:00), swapping weekly, two days off a week each. Nights belong to the night
        # operators (lookalikes.night_shift), so nobody else logs on to an HMI at night.
        crew = self.cast.day_ops
        half = len(crew) // 2
        early, late = (crew[:half], crew[half:]) if (d // 7) % 2 == 0 else (crew[half:], crew[:half])
        for shift, team in ((6, early), (14, late)):
            for k, u in enumerate(team):
                if (d + k) % 7 >= 5:
                    continue
                hmi = w.h(f"hmi{k % 6 + 1}")
                ts = day0 + shift * HOUR + rng.randrange(0, 900) * US
                sec.add(ts, win.e4768, self.dc_for(hmi), u, hmi.ip)
                sec.add(ts + 50_000, win.e4624, hmi, u, 2, "127.0.0.1", hmi.name.upper())
        # Inbound internet noise, dropped at the edge.
        for _ in range(pois(rng, 25 * self.rate)):
            ts = day0 + rng.randrange(0, DAY)
            self.net.flow(
                ts,
                f"198.51.100.{rng.randrange(30, 61)}",
                w.utility_vpn_ip,
                rng.choice([22, 23, 445, 3389, 8080]),
                fw="fw-edge",
                rule="DEFAULT-DENY",
                action="deny",
                zeek=False,
            )

    def periodic(self, day0: int) -> None:
        """Beacon-like but benign: fixed-interval checks by known services."""
        rng, w, ext = self.rng, self.w, self.w.external
        dc = w.h("dc01")
        t = day0 + 7 * US
        while t < day0 + DAY:  # NTP every 1024 s, exactly
            self.net.flow(
                t,
                dc.ip,
                ext["ntp.pool.example"],
                123,
                "udp",
                "ntp",
                0.03,
                48,
                48,
                fw="fw-edge",
                rule="NTP-OUT",
                sport=123,
            )
            t += 1024 * US
        av = w.h("av01")
        t = day0 + 41 * US
        while t < day0 + DAY:  # AV cloud telemetry every 15 min, ±2 s
            ts = t + rng.randrange(-2 * US, 2 * US)
            if (ts - day0) % HOUR < 15 * MINUTE:
                self.net.dns(
                    ts - 20_000, av.ip, "telemetry.av-vendor.example", (ext["telemetry.av-vendor.example"],)
                )
            self.net.https(
                ts,
                av.ip,
                ext["telemetry.av-vendor.example"],
                "telemetry.av-vendor.example",
                dur=0.8,
                ob=rng.randrange(1800, 2400),
                rb=rng.randrange(400, 700),
                rule="AV-CLOUD",
            )
            t += 15 * MINUTE
        wsus = w.h("wsus01")
        for h in range(24):  # hourly update check over plain HTTP
            ts = day0 + h * HOUR + 5 * MINUTE + rng.randrange(0, 30) * US
            self.net.http(
                ts,
                wsus.ip,
                ext["update.os-vendor.example"],
                "update.os-vendor.example",
                "/v6/ClientWebService/client.asmx",
                "POST",
                "Windows-Update-Agent/10.0.10011.16384 Client-Protocol/2.50",
                1900,
                4100,
                200,
                "text/xml",
                rule="UPDATE-OUT",
            )
        he = w.h("headend01")
        tel = f"telemetry.{w.vendor_domain}"
        t = day0 + 13 * US
        while t < day0 + DAY:  # the vendor's real telemetry, mTLS, every 10 min
            self.net.https(
                t + rng.randrange(0, 3 * US),
                he.ip,
                ext[tel],
                tel,
                dur=1.1,
                ob=rng.randrange(9000, 14000),
                rb=600,
                rule="AMI-VENDOR-TELEMETRY",
                client_subject=f"CN=telemetry-client.{w.vendor_domain},O={w.vendor}",
                issuer=f"CN={w.vendor} Device CA,O={w.vendor}",
                ja3="771,4865-4866-4867-49195,0-11-10-35-22-23-13-43-45-51,29-23-24,0",
            )
            t += 10 * MINUTE
        hist, mirror = w.h("hist01"), w.h("histmirror")
        t = day0 + 3 * US
        while t < day0 + DAY:  # historian → DMZ mirror every 15 min (allowed conduit)
            self.net.flow(
                t,
                hist.ip,
                mirror.ip,
                443,
                "tcp",
                "ssl",
                4.0,
                rng.randrange(200_000, 400_000),
                2000,
                fw="fw-ot",
                rule="OT-HIST-MIRROR",
            )
            t += 15 * MINUTE
        for i, col in enumerate(w.collectors):  # collectors upload register reads every 4 h
            for h in range(0, 24, 4):
                ts = day0 + h * HOUR + (i * 37 + rng.randrange(0, 60)) * US
                self.net.flow(
                    ts, col.ip, he.ip, 443, "tcp", "ssl", 12.0, rng.randrange(300_000, 900_000), 4000
                )
        if self.agents:  # --size large: every host's AV agent checks in every 10 min
            tgt = ext["telemetry.av-vendor.example"]
            for host in w.windows_hosts:
                if host.zone != "it":
                    continue
                off = hash_host(host.name) % 600
                for k in range(144):
                    self.net.flow(
                        day0 + (k * 600 + off) * US,
                        host.ip,
                        tgt,
                        443,
                        "tcp",
                        "ssl",
                        0.4,
                        900,
                        300,
                        fw="fw-edge",
                        rule="AV-CLOUD",
                    )

    def vendor(self, d: int, day0: int, workday: bool) -> None:
        """Vendor staff: VPN from their usual address, RDP to the jump host, then the head-end."""
        rng, w, win = self.rng, self.w, self.win
        jump, he = w.h("jump01"), w.h("headend01")
        in_window = [
            c for c in self.cal.values() if c.system.startswith("ami") and c.start // DAY == day0 // DAY
        ]
        office = w.infra["vendor-office-egress"]
        for k, st in enumerate(w.vendor_staff):
            planned = in_window and k == d % len(w.vendor_staff)
            # Every vendor account is seen in the baseline (days 0-1, before the intrusion starts).
            if not planned and not (workday and (d < 2 or rng.random() < 0.45)):
                continue
            start = in_window[0].start + 5 * MINUTE if planned else day0 + int(rng.uniform(8, 15) * HOUR)
            dur = int(rng.uniform(0.7, 2.5) * HOUR)
            assigned = f"10.30.8.{20 + k * 10 + rng.randrange(0, 9)}"
            session = f"V{d:02d}{k}{rng.randrange(10000, 99999)}"
            # Mostly from home, some days from the vendor's office: same country, same ASN.
            src = office if rng.random() < 0.2 else st.home_ip
            if rng.random() < 0.06:
                self.net.vpn(start - 60 * US, st.vpn_user, src, "", "login_failed", "bad password")
            self.net.vpn(start, st.vpn_user, src, assigned, "login", "", session)
            self.net.vpn(
                start + dur,
                st.vpn_user,
                src,
                assigned,
                "logout",
                "idle timeout",
                session,
                rng.randrange(10**6, 10**8),
                rng.randrange(10**6, 10**7),
                dur / US,
            )
            self.net.flow(
                start + MINUTE, assigned, jump.ip, 3389, "tcp", "rdp", dur / US - 120, 4_000_000, 40_000_000
            )
            self.s["sec"].add(
                start + MINUTE + 2 * US, win.e4624, jump, st.ad_user, 10, assigned, "VENDOR-LAPTOP"
            )
            self.s["sec"].add(start + MINUTE + 3 * US, win.e4768, self.dc_for(jump), st.ad_user, jump.ip)
            t2 = start + 4 * MINUTE
            self.net.flow(
                t2,
                jump.ip,
                he.ip,
                443,
                "tcp",
                "ssl",
                dur / US - 600,
                300_000,
                2_000_000,
                fw="fw-ot",
                rule="VENDOR-AMI-HTTPS",
            )
            self.net.ami(
                t2 + 2 * US,
                "headend",
                "headend",
                st.vpn_user,
                jump.ip,
                "login",
                "user",
                st.vpn_user,
                1,
                {"method": "password+otp"},
            )
            for j in range(pois(rng, 4)):
                m = rng.randrange(len(w.meters))
                self.net.ami(
                    t2 + (j + 1) * 3 * MINUTE,
                    "headend",
                    "headend",
                    st.vpn_user,
                    jump.ip,
                    "EndDeviceControl:ping",
                    "meter",
                    w.meters[m],
                    1,
                    {"reason": "diagnostics"},
                )
            if planned:
                ch = in_window[0]
                self.net.ami(
                    t2 + 20 * MINUTE,
                    "headend",
                    "headend",
                    st.vpn_user,
                    jump.ip,
                    "config_change",
                    "config",
                    "collector.upload_interval",
                    1,
                    {"ticket": ch.ticket, "old": "240", "new": "240"},
                )
            self.net.ami(
                start + dur - 2 * MINUTE,
                "headend",
                "headend",
                st.vpn_user,
                jump.ip,
                "logout",
                "user",
                st.vpn_user,
                1,
                {},
            )

    def ami(self, d: int, day0: int, workday: bool) -> None:
        rng, w = self.rng, self.w
        he, mdm = w.h("headend01"), w.h("mdm01")
        gw = w.h("proxy01")
        # Nightly billing read of the whole fleet: bulk, off-hours and entirely normal.
        for minute, job, schedule in [(30, "read", "daily-billing"), (95, "validate", "daily-vee")]:
            self.net.ami(
                day0 + minute * MINUTE,
                "headend",
                "mdm",
                "svc_mdm",
                mdm.ip,
                "bulk_job",
                "meter",
                "ALL",
                len(w.meters),
                {"job": job, "schedule": schedule},
            )
        # The vendor's analytics integration pulls reads every hour with its API token.
        rot = at(TOKEN_ROTATE_BY[0], TOKEN_ROTATE_BY[1])
        src = f"203.0.113.{40 + self.w.seed % 7}"
        for h in range(24):
            ts = day0 + h * HOUR + 7 * MINUTE + rng.randrange(0, 20) * US
            tok = TOKEN_OLD if ts < rot else TOKEN_NEW
            assert w.vendor_svc is not None
            self.net.ami(
                ts,
                "headend",
                "headend",
                w.vendor_svc.sam,
                src,
                "bulk_job",
                "meter",
                "ALL",
                len(w.meters),
                {"job": "export_reads", "auth": "api_token", "token_id": tok, "via": gw.name},
            )
        # Operators: logins, pings, and small non-payment disconnects / reconnects with work orders.
        if workday:
            for op in w.ami_operators:
                u = w.user(op.split(".", 1)[1])
                assert u.workstation is not None
                ip = u.workstation.ip
                ts = day0 + int(rng.uniform(8, 10) * HOUR)
                self.net.flow(
                    ts - 2 * US,
                    ip,
                    he.ip,
                    443,
                    "tcp",
                    "ssl",
                    3 * 3600.0,
                    200_000,
                    3_000_000,
                    fw="fw-ot",
                    rule="IT-AMI-HTTPS",
                )
                if rng.random() < 0.06:
                    self.net.ami(
                        ts - 30 * US,
                        "headend",
                        "headend",
                        op,
                        ip,
                        "login_failed",
                        "user",
                        op,
                        1,
                        {"reason": "bad password"},
                        "failed",
                    )
                self.net.ami(ts, "headend", "headend", op, ip, "login", "user", op, 1, {"method": "sso"})
                for _ in range(pois(rng, 3)):
                    self.net.ami(
                        ts + rng.randrange(0, 6 * 3600) * US,
                        "headend",
                        "headend",
                        op,
                        ip,
                        "EndDeviceControl:ping",
                        "meter",
                        w.meters[rng.randrange(len(w.meters))],
                        1,
                        {"reason": "customer call"},
                    )
                for _ in range(pois(rng, 3 * self.rate)):
                    action = rng.choice(["EndDeviceControl:disconnect", "EndDeviceControl:connect"])
                    self.net.ami(
                        ts + rng.randrange(0, 6 * 3600) * US,
                        "headend",
                        "headend",
                        op,
                        ip,
                        action,
                        "meter",
                        w.meters[rng.randrange(len(w.meters))],
                        1,
                        {
                            "reason": "non-payment" if action.endswith("disconnect") else "payment received",
                            "work_order": f"WO-{rng.randrange(100000, 999999)}",
                        },
                    )
                self.net.ami(ts + 7 * HOUR, "headend", "headend", op, ip, "logout", "user", op, 1, {})
        # Approved maintenance: vendor firmware pushes inside change windows, with tickets.
        for key, target_type, count in [
            ("collector_fw_420", "collector", len(w.collectors)),
            ("meter_fw", "meter", 5000),
            ("headend_upgrade", "config", 1),
        ]:
            ch = self.cal[key]
            if ch.start // DAY != day0 // DAY:
                continue
            firmware_push(
                self.net,
                w,
                ch,
                he.ip,
                30.0,
                4000,
                9_000_000,
                target_type,
                "ALL" if target_type != "meter" else ",".join(w.feeders[:5]),
                count,
                {"change": key},
            )
        ch = self.cal["mdm_reindex"]
        if ch.start // DAY == day0 // DAY:
            self.net.ami(
                ch.start + 5 * MINUTE,
                "headend",
                "mdm",
                w.admins[2].sam,
                mdm.ip,
                "config_change",
                "config",
                "mdm.db.maintenance",
                1,
                {"ticket": ch.ticket, "old": "off", "new": "reindex"},
            )

    def dms(self, day0: int) -> None:
        rng, w = self.rng, self.w
        for i, op in enumerate(w.dms_operators):
            hmi = w.h(f"hmi{i % 6 + 1}")
            ts = day0 + (6 + 8 * (i % 3)) * HOUR + rng.randrange(0, 1200) * US
            self.net.ami(ts, "dms", "dms", op, hmi.ip, "login", "user", op, 1, {"console": hmi.name})
            for _ in range(pois(rng, 2 * self.rate)):
                sw = f"SW-{rng.randrange(1000, 9999)}"
                self.net.ami(
                    ts + rng.randrange(0, 7 * 3600) * US,
                    "dms",
                    "dms",
                    op,
                    hmi.ip,
                    "config_change",
                    "switch",
                    sw,
                    1,
                    {
                        "operation": rng.choice(["open", "close"]),
                        "switching_order": f"SO-{rng.randrange(10000, 99999)}",
                    },
                )
            self.net.ami(ts + 8 * HOUR - 5 * MINUTE, "dms", "dms", op, hmi.ip, "logout", "user", op, 1, {})
