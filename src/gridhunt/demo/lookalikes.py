"""Benign look-alikes: for each behaviour the identity and network analytics hunt, the
ordinary activity that resembles it, at realistic volume and timing, over the whole window
(the two days before the intrusion starts included), so the demo does not flatter them.

Identity
- typos: admins mistype when unlocking after lunch and when RDPing to a server — 1-3 failures,
  then the good password from the same address within a minute (users' and VPN typos are in
  `background.py`);
- low and slow: a phone keeps an old password after a password change and fails once every
  30 min for a day and a half from the mail gateway's address; a GIS sync tool with a stale
  password fails every 2 h for a working week (the scanner's hourly failure is in background);
- a night-shift control-room operator pair who only ever log on at night (4 on, 4 off);
- a remote worker who travels to France: VPN from a new country 13 h after the last home
  login, plausible; back home days later;
- a monitoring service account asking for AES service tickets for 15 SPNs in a minute, every
  10 h ticket lifetime; two users asking once each for an RC4 ticket to the old historian SPN;
  a legacy app account whose TGTs come without pre-authentication (PreAuthType 0), daily;
- a new hire created in working hours and put in a plain department group;
- admins running `powershell.exe -NoProfile -File` on a script from their admin workstation.
Network
- NTP from the mail gateway to two pool servers; a monitoring SaaS heartbeat every 30 min with
  near-constant size; Defender signature checks every 2 h;
- long connections: a site-to-site IPsec tunnel to the water treatment works, Teams calls;
- large uploads: a nightly offsite backup (every night, weekly full) and one user's 1.4 GB
  upload to a cloud storage site the staff use every day;
- DNS: long random-looking CDN / cloud names (CloudFront, Akamai, AWS ELB, Azure Front Door),
  NXDOMAIN bursts from a mistyped internal server name, SPF/DKIM/DMARC TXT lookups by the
  mail server.

All randomness comes from one `random.Random(f"{seed}:lookalikes")`; who is who comes from
`cast.cast(world)`. Every record of day d has its timestamp at or after the start of day d,
so the day-by-day sink flush keeps files in time order.
"""

from __future__ import annotations

import base64
import random

from gridhunt.demo.background import EXPLORER, PS, Background
from gridhunt.demo.cast import (
    GIS_DAYS,
    NIGHT_ROTA,
    PHONE_FIXED,
    PHONE_FROM,
    TRIP_DAYS,
    UPLOAD_DAY,
    cast,
)
from gridhunt.demo.netlog import Net
from gridhunt.demo.sinks import Sink
from gridhunt.demo.timeutil import DAY, HOUR, MINUTE, START, US, weekday
from gridhunt.demo.winevents import WinLog
from gridhunt.demo.world import Host, User, World

W3WP = "C:\\Windows\\System32\\inetsrv\\w3wp.exe"
DISK_REPORT = "C:\\Scripts\\Get-DiskReport.ps1"
DISK_REPORT_TEXT = (
    "param([string[]]$Servers = (Get-Content C:\\Scripts\\servers.txt))\n"
    "Get-CimInstance -ClassName Win32_LogicalDisk -Filter 'DriveType=3' -ComputerName $Servers |\n"
    "  Select-Object PSComputerName,DeviceID,@{n='FreeGB';e={[math]::Round($_.FreeSpace/1GB,1)}} |\n"
    "  Export-Csv C:\\Scripts\\Reports\\disk-$(Get-Date -Format yyyyMMdd).csv -NoTypeInformation"
)
# The monitoring collector polls these services: (service account or host key of a machine account).
MONITORED = ["svc_sql", "svc_backup", "svc_web", "svc_sccm", "svc_historian"] + [
    "dc01",
    "dc02",
    "fs01",
    "fs02",
    "mail01",
    "sql01",
    "web01",
    "backup01",
    "print01",
    "wsus01",
]
TICKET_LIFETIME = 10 * HOUR
HEARTBEAT = 30 * MINUTE
MAIL_PARTNERS = [
    "saas-office.example",
    "bank.example",
    "portal.regulator.example",
    "contractor-civils.example",
    "county-council.example",
    "payroll-bureau.example",
    "insurer.example",
    "water-lab.example",
    "fleet-leasing.example",
    "pipe-supplies.example",
]
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


class Lookalikes:
    def __init__(
        self,
        w: World,
        sinks: dict[str, Sink],
        win: WinLog,
        net: Net,
        bg: Background,
        rng: random.Random,
    ) -> None:
        self.w, self.s, self.win, self.net, self.bg, self.rng = w, sinks, win, net, bg, rng
        self.c = cast(w)
        self.sec = sinks["sec"]
        self.cdn = self._cdn_names()

    # -- helpers -------------------------------------------------------------------
    @staticmethod
    def at(day: int, hh: int, mm: int = 0) -> int:
        """Day *index* (0 = April 1) and time of day."""
        return START + day * DAY + hh * HOUR + mm * MINUTE

    def jit(self, seconds: float) -> int:
        return round(self.rng.uniform(0, seconds) * US)

    def typos(self) -> int:
        """Bad passwords before the good one: 1 mostly, up to 3."""
        x = self.rng.random()
        return 1 if x < 0.7 else (2 if x < 0.92 else 3)

    def _cdn_names(self) -> dict[str, tuple[str, ...]]:
        """Random-looking names as CDNs and cloud load balancers really hand out, with their addresses."""
        r = self.rng
        names: list[str] = []
        names += [f"d{''.join(r.choice(ALNUM) for _ in range(13))}.cloudfront.net" for _ in range(16)]
        names += [
            f"e{r.randrange(1000, 99999)}.{r.choice(['a', 'b', 'dscb', 'dscx', 'g'])}.akamaiedge.net" for _ in range(10)
        ]
        apps = ["portal", "api", "gis-tiles", "billing-web", "status", "auth", "outage-map", "forms"]
        names += [
            f"{r.choice(apps)}-prod-{r.choice(['alb', 'elb'])}-{r.randrange(10**9, 10**10)}."
            f"{r.choice(['eu-west-1', 'eu-west-2', 'us-east-1'])}.elb.amazonaws.com"
            for _ in range(8)
        ]
        names += [
            f"{r.choice(apps)}-{''.join(r.choice('abcdefgh0123456789') for _ in range(16))}.z01.azurefd.net"
            for _ in range(6)
        ]
        # CloudFront / Akamai / ELB addresses sit in the demo's CDN block (192.0.2.142-190).
        return {n: tuple(f"192.0.2.{r.randrange(142, 191)}" for _ in range(r.randrange(2, 5))) for n in names}

    def logon(self, ts: int, u: User, host: Host, src_ip: str, logon_type: int = 2) -> None:
        """A domain logon at a console: TGT and host ticket on the DC, then the 4624."""
        dc = self.bg.dc_for(host)
        self.sec.add(ts, self.win.e4768, dc, u, src_ip)
        if host.zone == "it":
            m = self.bg.machine(host)
            self.sec.add(ts + 40_000, self.win.e4769, dc, u, m.sam, m.sid, src_ip)
        self.sec.add(ts + 90_000, self.win.e4624, host, u, logon_type, "127.0.0.1", host.name.upper())

    # -- one day -------------------------------------------------------------------
    def day(self, d: int) -> None:
        day0 = START + d * DAY
        workday = weekday(d) < 5
        # identity
        self.admin_typos(day0, workday)
        self.phone(day0)
        self.gis_tool(d, day0, workday)
        self.night_shift(d, day0)
        self.trip(d, day0)
        self.monitor_tickets(day0)
        self.legacy_tickets(d, day0)
        self.joiner(d)
        self.admin_scripts(d, day0, workday)
        # network
        self.ntp_pool(day0)
        self.heartbeat(day0)
        self.defender(day0)
        self.site_to_site(day0)
        self.calls(d, day0, workday)
        self.backup(d, day0)
        self.upload(d, day0)
        self.cdn_dns(d, day0, workday)
        self.dns_typos(d, day0)
        self.mail_txt(day0, workday)

    # -- identity ------------------------------------------------------------------
    def admin_typos(self, day0: int, workday: bool) -> None:
        """Unlock after lunch and RDP to a server, each with 1-3 bad passwords first."""
        if not workday:
            return
        rng, w, win, sec = self.rng, self.w, self.win, self.sec
        for adm in w.admins:
            ws = adm.workstation
            assert ws is not None
            dc = self.bg.dc_for(ws)
            if rng.random() < 0.15:
                t = day0 + int(rng.uniform(12.5, 14) * HOUR)
                for _ in range(self.typos()):
                    sec.add(t, win.e4771, dc, adm, ws.ip)
                    sec.add(
                        t + 2000, win.e4625, ws, adm.sam, 7, "127.0.0.1", ws.name.upper(), "0xc000006a", "Negotiate"
                    )
                    t += rng.randrange(6, 25) * US
                sec.add(t, win.e4768, dc, adm, ws.ip)
                sec.add(t + 90_000, win.e4624, ws, adm, 7, "127.0.0.1", ws.name.upper())
            if rng.random() < 0.1:
                srv = rng.choice(self.bg.servers)
                t = day0 + int(rng.uniform(9.5, 16.5) * HOUR)
                self.net.flow(t, ws.ip, srv.ip, 3389, "tcp", "rdp", rng.uniform(600, 3600), 2_000_000, 30_000_000)
                for _ in range(self.typos()):
                    sec.add(t + 400_000, win.e4776, dc, adm.sam, ws.name.upper(), "0xc000006a")
                    sec.add(t + 420_000, win.e4625, srv, adm.sam, 3, ws.ip, ws.name.upper(), "0xc000006a")
                    t += rng.randrange(5, 20) * US
                sec.add(t + 400_000, win.e4776, dc, adm.sam, ws.name.upper())
                sec.add(t + 420_000, win.e4624, srv, adm, 10, ws.ip, ws.name.upper())
                sec.add(t + 421_000, win.e4672, srv, adm)

    def phone(self, day0: int) -> None:
        """A phone's mail app with the old password: ActiveSync basic auth through the mail
        gateway fails every 30 min (no lockout: the bad-password counter resets first)."""
        u, w, win = self.c.phone_user, self.w, self.win
        mail, gw, dc = w.h("mail01"), w.h("mailgw"), w.h("dc01")
        start, fixed = self.at(*PHONE_FROM), self.at(*PHONE_FIXED)
        if fixed < day0 or start >= day0 + DAY:
            return
        t = start
        while t < fixed:
            if day0 <= t < day0 + DAY:
                ts = t + self.jit(20)
                self.sec.add(ts, win.e4776, dc, u.sam, mail.name.upper(), "0xc000006a")
                self.sec.add(
                    ts + 15_000, win.e4625, mail, u.sam, 8, gw.ip, mail.name.upper(), "0xc000006a", "Negotiate", W3WP
                )
            t += 30 * MINUTE
        if day0 <= fixed < day0 + DAY:
            self.sec.add(fixed, win.e4776, dc, u.sam, mail.name.upper())
            self.sec.add(fixed + 15_000, win.e4624, mail, u, 8, gw.ip, mail.name.upper(), "Negotiate", W3WP)

    def gis_tool(self, d: int, day0: int, workday: bool) -> None:
        """A desktop GIS sync tool stores the user's old password: a pre-auth failure every 2 h."""
        if d not in GIS_DAYS or not workday:
            return
        u = self.c.gis_user
        ws = u.workstation
        assert ws is not None
        for h in range(8, 17, 2):
            self.sec.add(day0 + h * HOUR + 10 * MINUTE + self.jit(90), self.win.e4771, self.bg.dc_for(ws), u, ws.ip)

    def night_shift(self, d: int, day0: int) -> None:
        """The night shift at the HMIs: on at ~22:00, console unlocks between 01:00 and 05:00."""
        rng, w = self.rng, self.w
        hmi = [w.h("hmi1"), w.h("hmi2")]
        # The small hours of day d belong to the night that began the evening before.
        prev = self.c.night_ops[((d - 1) // NIGHT_ROTA) % 2]
        for _ in range(1 + (rng.random() < 0.5)):
            console = rng.choice(hmi)
            self.logon(day0 + int(rng.uniform(1, 5) * HOUR), prev, console, console.ip, 7)
        op = self.c.night_ops[(d // NIGHT_ROTA) % 2]
        t = day0 + 21 * HOUR + 50 * MINUTE + self.jit(20 * 60)
        self.logon(t, op, hmi[d % 2], hmi[d % 2].ip)

    def trip(self, d: int, day0: int) -> None:
        """Home (GB) in the morning, hotel in France that evening, back home after the trip."""
        if d not in TRIP_DAYS:
            return
        u, w, rng = self.c.traveller, self.w, self.rng
        home, hotel = u.home_ip, w.infra["hotel-wifi"]
        if d == TRIP_DAYS[0]:
            sessions = [(home, 7.6, 3.8), (hotel, 21.2, 1.3)]  # leaves at lunch, hotel 13 h later
        elif d == TRIP_DAYS[-1]:
            sessions = [(home, 9.1, 7.0)]
        else:
            sessions = [(hotel, 7.9, 8.5)]
        ws = u.workstation
        assert ws is not None
        assigned = f"10.10.250.{10 + w.users.index(u) % 240}"
        for k, (src, start_h, hours) in enumerate(sessions):
            t = day0 + int(start_h * HOUR) + self.jit(600)
            dur = int(hours * HOUR)
            session = f"S{d:02d}T{k}{rng.randrange(1000, 9999)}"
            self.net.vpn_session(t, t + dur, u.sam, src, assigned, session, dur / US, rng)
            self.logon(t + 30 * US, u, ws, assigned)
            for _ in range(2):
                self.bg.web(t + int(rng.uniform(0.1, 0.9) * dur), ws, u, assigned)

    def monitor_tickets(self, day0: int) -> None:
        """Each time its tickets expire the monitoring collector gets a TGT, then an AES service
        ticket for every SPN it polls, all within a minute: Kerberoasting's shape, not its cipher."""
        w, win, mon = self.w, self.win, self.c.monitor
        host = w.h(self.c.monitor_host)
        dc = self.bg.dc_for(host)
        first = START + 37 * MINUTE
        k = max(0, -(-(day0 - first) // TICKET_LIFETIME))
        while (t := first + k * TICKET_LIFETIME) < day0 + DAY:
            t += self.jit(40)
            self.sec.add(t, win.e4768, dc, mon, host.ip)
            for name in MONITORED:
                t += self.rng.randrange(300, 4000) * 1000
                if name in w.service_accounts:
                    svc = w.service_accounts[name]
                    self.sec.add(t, win.e4769, dc, mon, svc.sam, svc.sid, host.ip)
                else:
                    m = self.bg.machine(w.h(name))
                    self.sec.add(t, win.e4769, dc, mon, m.sam, m.sid, host.ip)
            k += 1
        # The legacy Java reporting app's account never needed pre-authentication; it gets one
        # TGT a day (PreAuthType 0) from its server, then its SQL ticket (AES).
        app = w.h(self.c.asrep_host)
        t = day0 + 6 * HOUR + 2 * MINUTE + self.jit(60)
        self.sec.add(t, win.e4768, w.h("dc01"), self.c.asrep, app.ip, "0x0", "0")
        sql = w.service_accounts["svc_sql"]
        self.sec.add(t + 300_000, win.e4769, w.h("dc01"), self.c.asrep, sql.sam, sql.sid, app.ip)

    def legacy_tickets(self, d: int, day0: int) -> None:
        """Two users on an old historian client ask once each for an RC4 ticket: isolated, no burst."""
        for user, day, hh in ((self.c.rc4_users[0], 5, 10), (self.c.rc4_users[1], 19, 14)):
            if d != day:
                continue
            ws = user.workstation
            assert ws is not None
            svc = self.w.service_accounts["svc_historian"]
            ts = day0 + hh * HOUR + self.jit(3000)
            self.sec.add(ts, self.win.e4769, self.bg.dc_for(ws), user, svc.sam, svc.sid, ws.ip, "0x17")

    def joiner(self, d: int) -> None:
        """A new engineer's account, created in the baseline during working hours, plain groups."""
        if d != 1:
            return
        w, win, nu = self.w, self.win, self.c.joiner
        adm, dc = w.admins[0], w.h("dc01")
        ts = self.at(1, 10, 40) + self.jit(300)
        self.sec.add(ts, win.e4720, dc, adm, nu)
        self.sec.add(ts + 30 * US, win.e_group_add, dc, 4728, adm, nu, "GG-Engineering", f"{w.domain_sid}-1407")
        self.sec.add(ts + 36 * US, win.e_group_add, dc, 4756, adm, nu, "UG-AllStaff", f"{w.domain_sid}-1399")

    def admin_scripts(self, d: int, day0: int, workday: bool) -> None:
        """Each admin runs the weekly disk report by hand: powershell -NoProfile -File."""
        if not workday:
            return
        for i, adm in enumerate(self.w.admins):
            if weekday(d) != i % 5:
                continue
            ws = adm.workstation
            assert ws is not None
            ts = day0 + int(self.rng.uniform(10, 15) * HOUR)
            cmd = f'"{PS}" -NoProfile -File {DISK_REPORT}'
            pid = self.bg.proc(
                ts,
                ws,
                adm,
                PS,
                cmd,
                EXPLORER,
                "C:\\Windows\\Explorer.EXE",
                4 * self.rng.randrange(1000, 2000),
                sec_user=adm,
                integrity="High",
            )
            self.s["ps"].add(ts + 700_000, self.win.p4104, ws, adm, DISK_REPORT_TEXT, DISK_REPORT, False, pid)

    # -- network -------------------------------------------------------------------
    def ntp_pool(self, day0: int) -> None:
        """chrony on the mail gateway: two pool servers, maxpoll 12 (every 4096 s)."""
        gw = self.w.h("mailgw")
        for j, name in enumerate(("0.pool.ntp.example", "1.pool.ntp.example")):
            ip = self.w.infra[name]
            t = START + (300 + 1700 * j) * US
            t += -(-(day0 - t) // (4096 * US)) * 4096 * US
            while t < day0 + DAY:
                self.net.flow(t, gw.ip, ip, 123, "udp", "ntp", 0.02, 48, 48, fw="fw-edge", rule="NTP-OUT")
                t += 4096 * US

    def heartbeat(self, day0: int) -> None:
        """The monitoring agent checks in with its SaaS every 30 min; same few bytes each time."""
        w = self.w
        host = w.h(self.c.monitor_host)
        name = "collector.monitor-saas.example"
        ip = w.infra[name]
        for k in range(DAY // HEARTBEAT):
            ts = day0 + 95 * US + k * HEARTBEAT + self.jit(1.5)
            if k % 4 == 0:  # TTL 7200 s, so one lookup every two hours
                self.net.dns(ts - 15_000, host.ip, name, (ip,), ttl=7200)
            self.net.https(
                ts,
                host.ip,
                ip,
                name,
                dur=0.3 + self.rng.random() * 0.05,
                ob=1184 + self.rng.randrange(0, 12),
                rb=312 + self.rng.randrange(0, 4),
                rule="MONITORING-SAAS",
            )

    def defender(self, day0: int) -> None:
        """The update server checks for Defender signatures every 2 h; a delta most times."""
        w = self.w
        wsus = w.h("wsus01")
        name = "definitionupdates.os-vendor.example"
        ip = w.infra[name]
        for h in range(0, 24, 2):
            ts = day0 + h * HOUR + 20 * MINUTE + self.jit(6 * 60)
            self.net.dns(ts - 20_000, wsus.ip, name, (ip,), ttl=300)
            rb = self.rng.randrange(4_000, 60_000) if h % 8 else self.rng.randrange(3_000_000, 12_000_000)
            self.net.https(
                ts, wsus.ip, ip, name, dur=0.4 + rb / 4e6, ob=self.rng.randrange(1800, 2600), rb=rb, rule="UPDATE-OUT"
            )

    def site_to_site(self, day0: int) -> None:
        """IPsec to the water treatment works: one NAT-T flow all day (re-established after the
        nightly DPD reset), plus IKE rekeys every 8 h."""
        w, rng = self.w, self.rng
        vpn, peer = w.h("vpn01"), w.infra["s2s-peer"]
        start = day0 + 20 * US + self.jit(10)
        dur = (DAY - 40 * US - (start - day0)) / US
        self.net.flow(
            start,
            vpn.ip,
            peer,
            4500,
            "udp",
            "-",
            dur,
            rng.randrange(1_200_000_000, 2_000_000_000),
            rng.randrange(800_000_000, 1_500_000_000),
            fw="fw-edge",
            rule="S2S-WTW-NORTH",
            sport=4500,
        )
        for h in (0, 8, 16):
            self.net.flow(
                day0 + h * HOUR + 5 * US + self.jit(3),
                vpn.ip,
                peer,
                500,
                "udp",
                "-",
                0.08,
                1200,
                1100,
                fw="fw-edge",
                rule="S2S-WTW-NORTH",
                sport=500,
            )

    def calls(self, d: int, day0: int, workday: bool) -> None:
        """Teams calls: UDP media to the SaaS relay for 15-75 min, megabytes each way."""
        if not workday:
            return
        w, rng = self.w, self.rng
        ip = w.external["teams.saas-office.example"]
        present = [u for u in w.users if d not in self.bg.away.get(u.sam, ())]
        for _ in range(rng.randrange(2, 7)):
            u = rng.choice(present)
            assert u.workstation is not None
            dur = rng.uniform(15, 75) * 60
            self.net.flow(
                day0 + int(rng.uniform(8.5, 16) * HOUR),
                u.workstation.ip,
                ip,
                rng.randrange(3478, 3482),
                "udp",
                "-",
                dur,
                int(dur * rng.uniform(40_000, 190_000)),
                int(dur * rng.uniform(60_000, 250_000)),
                fw="fw-edge",
                rule="TEAMS-MEDIA",
            )

    def backup(self, d: int, day0: int) -> None:
        """Offsite backup every night at 01:00: incremental 15-40 GB, full on Saturday night."""
        w, rng = self.w, self.rng
        b = w.h("backup01")
        name = "vault.offsite-backup.example"
        ip = w.infra[name]
        ts = day0 + HOUR + self.jit(240)
        full = weekday(d) == 5
        size = rng.randrange(260, 300) * 10**9 if full else rng.randrange(15, 40) * 10**9
        dur = size / rng.uniform(9e6, 11e6)  # ~80 Mbit/s
        self.net.dns(ts - 30_000, b.ip, name, (ip,), ttl=300)
        self.net.https(ts, b.ip, ip, name, dur=dur, ob=size, rb=size // 2000, rule="BACKUP-OFFSITE")

    def upload(self, d: int, day0: int) -> None:
        """One user shares a 1.4 GB survey archive through cloud storage, once."""
        if d != UPLOAD_DAY:
            return
        u, w = self.c.uploader, self.w
        ws = u.workstation
        assert ws is not None
        name = "files.cloudstore.example"
        ts = day0 + 15 * HOUR + 10 * MINUTE + self.jit(300)
        self.net.dns(ts - 40_000, ws.ip, name, (w.external[name],), ttl=60)
        self.net.https(ts, ws.ip, w.external[name], name, dur=560.0, ob=1_412_000_000, rb=180_000)

    def cdn_dns(self, d: int, day0: int, workday: bool) -> None:
        """Pages pull assets straight from CDN and cloud load-balancer names."""
        rng, w = self.rng, self.w
        names = list(self.cdn)
        present = [u for u in w.users if d not in self.bg.away.get(u.sam, ())]
        for _ in range(rng.randrange(12, 19) if workday else rng.randrange(1, 4)):
            u = rng.choice(present)
            assert u.workstation is not None
            name = rng.choice(names)
            ips = self.cdn[name]
            ts = day0 + int(rng.uniform(8, 18) * HOUR)
            self.net.dns(ts, u.workstation.ip, name, ips, ttl=60)
            self.net.https(
                ts + 25_000,
                u.workstation.ip,
                ips[0],
                name,
                dur=rng.uniform(0.2, 8),
                ob=rng.randrange(700, 4000),
                rb=rng.randrange(20_000, 2_000_000),
            )

    def dns_typos(self, d: int, day0: int) -> None:
        """Someone types a file server's name wrong a few times (NXDOMAIN), then right."""
        typos = {5: ("fs1", "fs01"), 12: ("fileserver", "fs01"), 22: ("prnt01", "print01")}
        if d not in typos:
            return
        w, rng = self.w, self.rng
        wrong, right = typos[d]
        u = w.users[(d * 37) % len(w.users)]
        assert u.workstation is not None
        ts = day0 + int(rng.uniform(9, 16) * HOUR)
        for _ in range(rng.randrange(3, 6)):
            self.net.dns(ts, u.workstation.ip, f"{w.prefix}-{wrong}.{w.dns_domain}", (), rcode=3)
            ts += rng.randrange(2, 15) * US
        host = w.h(right)
        self.net.dns(ts + 20 * US, u.workstation.ip, host.fqdn(w.dns_domain), (host.ip,), ttl=1200)

    def mail_txt(self, day0: int, workday: bool) -> None:
        """The mail server checks SPF, DKIM and DMARC of senders it has not cached."""
        rng, w = self.rng, self.w
        mail = w.h("mail01")
        for _ in range(rng.randrange(1, 4) if workday else rng.randrange(0, 2)):
            dom = rng.choice(MAIL_PARTNERS)
            ts = day0 + int(rng.uniform(7, 19) * HOUR)
            spf = f"v=spf1 ip4:198.51.100.{rng.choice([192, 208, 224])}/28 include:_spf.saas-office.example -all"
            key = base64.b64encode(rng.randbytes(270)).decode()
            dkim = f"v=DKIM1; k=rsa; p={key}"
            dmarc = f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{dom}"
            for k, (q, txt) in enumerate([(dom, spf), (f"selector1._domainkey.{dom}", dkim), (f"_dmarc.{dom}", dmarc)]):
                self.net.dns(ts + k * 40_000, mail.ip, q, (f"TXT {len(txt)} {txt}",), "TXT", ttl=3600)
