"""The synthetic utility: hosts, users, zones and conduits, the AMI vendor's register.

Everything is drawn from one `random.Random(seed)` in a fixed order, so the same seed gives
the same utility and a different seed gives different names, addresses and SIDs. Outside
addresses come only from the documentation blocks (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24), split by country and ASN in `context/geoip.csv` (see `context.GEOIP`), and
outside names end in `.example` — except the CDN / cloud names of the benign look-alikes
(`*.cloudfront.net`, `*.akamaiedge.net`, `*.elb.amazonaws.com`, `*.azurefd.net`), which keep
their real suffixes with random labels because that is what a DNS analytic meets in real logs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

UTILITIES = [
    ("Rivervale", "rv"),
    ("Northfield", "nf"),
    ("Stonebridge", "sb"),
    ("Clearwater", "cw"),
    ("Eastbrook", "eb"),
    ("Pinecrest", "pc"),
    ("Ashford", "af"),
    ("Millbrook", "mb"),
]
VENDORS = [
    ("MeterCo", "meterco", "mc"),
    ("Gridmetrics", "gridmetrics", "gm"),
    ("Voltstream", "voltstream", "vs"),
]
FIRST = [
    "james",
    "mary",
    "robert",
    "patricia",
    "john",
    "jennifer",
    "michael",
    "linda",
    "david",
    "elizabeth",
    "william",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "chris",
    "lisa",
    "daniel",
    "nancy",
    "matthew",
    "betty",
    "anthony",
    "sandra",
    "mark",
    "ashley",
    "paul",
    "emily",
    "steven",
    "donna",
    "andrew",
    "michelle",
    "joshua",
    "carol",
    "kevin",
    "amanda",
    "brian",
    "melissa",
    "george",
    "deborah",
    "timothy",
    "stephanie",
    "ronald",
    "rebecca",
    "jason",
    "laura",
    "edward",
    "sharon",
    "jeffrey",
    "cynthia",
    "ryan",
    "kathleen",
    "jacob",
    "amy",
    "gary",
    "angela",
    "nicholas",
    "helen",
    "eric",
    "anna",
    "jonathan",
    "brenda",
]
LAST = [
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "torres",
    "nguyen",
    "hill",
    "flores",
    "green",
    "adams",
    "nelson",
    "baker",
    "hall",
    "rivera",
    "campbell",
    "mitchell",
    "carter",
    "roberts",
    "gomez",
    "phillips",
    "evans",
    "turner",
    "diaz",
    "parker",
    "cruz",
    "edwards",
    "collins",
    "reyes",
    "stewart",
    "morris",
    "morales",
    "murphy",
    "cook",
    "rogers",
]
DEPTS = ["finance", "billing", "customer-service", "engineering", "operations", "hr", "it", "gis", "legal"]


@dataclass
class Host:
    name: str  # short hostname, e.g. rv-ws-0042
    ip: str
    zone: str
    role: str
    os: str  # windows | linux | appliance
    owner: str
    criticality: str
    vendor: str | None = None
    asset_id: str = ""

    def fqdn(self, dns_domain: str) -> str:
        return f"{self.name}.{dns_domain}"


@dataclass
class User:
    sam: str
    display: str
    sid: str
    dept: str
    workstation: Host | None = None
    admin: bool = False
    remote: bool = False  # uses the staff VPN
    home_ip: str = ""


@dataclass
class VendorStaff:
    vpn_user: str  # VPN account at the utility's concentrator
    ad_user: User  # AD account used on the jump host
    home_ip: str  # their usual egress address inside the vendor's range


@dataclass
class World:
    seed: int
    utility: str
    prefix: str
    netbios: str
    dns_domain: str
    domain_sid: str
    vendor: str
    vendor_slug: str
    vendor_domain: str
    hosts: dict[str, Host] = field(default_factory=dict)
    users: list[User] = field(default_factory=list)
    admins: list[User] = field(default_factory=list)
    service_accounts: dict[str, User] = field(default_factory=dict)
    spns: dict[str, str] = field(default_factory=dict)  # service account -> SPN
    vendor_staff: list[VendorStaff] = field(default_factory=list)
    vendor_svc: User | None = None
    ami_operators: list[str] = field(default_factory=list)
    dms_operators: list[str] = field(default_factory=list)
    meters: list[str] = field(default_factory=list)  # meter ids, index i sits on feeder i % n
    feeders: list[str] = field(default_factory=list)
    collectors: list[Host] = field(default_factory=list)
    rtus: list[Host] = field(default_factory=list)  # substation RTUs: DNP3 outstations of the SCADA masters
    plcs: list[Host] = field(default_factory=list)  # water PLCs: Modbus/TCP servers
    vendor_range: str = "203.0.113.0/24"
    utility_vpn_ip: str = "192.0.2.10"
    ticket_base: int = 1000
    # External services seen in benign traffic: name -> ip.
    external: dict[str, str] = field(default_factory=dict)
    cdn_names: list[str] = field(default_factory=list)
    # Outside services and peers of the benign look-alikes (demo/lookalikes.py) that users do not
    # browse: name (or a label, for peers without a DNS name) -> ip.
    infra: dict[str, str] = field(default_factory=dict)

    def h(self, key: str) -> Host:
        return self.hosts[key]

    @property
    def workstations(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.role == "workstation"]

    @property
    def windows_hosts(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.os == "windows"]

    def user(self, sam: str) -> User:
        for u in self.users + self.admins + list(self.service_accounts.values()):
            if u.sam == sam:
                return u
        for s in self.vendor_staff:
            if s.ad_user.sam == sam:
                return s.ad_user
        raise KeyError(sam)


def _rid_sid(domain_sid: str, rid: int) -> str:
    return f"{domain_sid}-{rid}"


def build_world(seed: int) -> World:
    rng = random.Random(seed)
    utility, prefix = rng.choice(UTILITIES)
    vendor, vslug, vpre = rng.choice(VENDORS)
    dns_domain = f"corp.{utility.lower()}.example"
    domain_sid = "S-1-5-21-" + "-".join(str(rng.randrange(10**9, 4 * 10**9)) for _ in range(3))
    w = World(
        seed=seed,
        utility=f"{utility} Power & Water",
        prefix=prefix,
        netbios=utility.upper()[:15],
        dns_domain=dns_domain,
        domain_sid=domain_sid,
        vendor=vendor,
        vendor_slug=vslug,
        vendor_domain=f"{vslug}.example",
        ticket_base=rng.randrange(1000, 8000),
    )
    n_asset = 0

    def add(
        key: str,
        name: str,
        ip: str,
        zone: str,
        role: str,
        os: str = "windows",
        owner: str = "it-ops",
        crit: str = "medium",
        vendor_name: str | None = None,
    ) -> Host:
        nonlocal n_asset
        n_asset += 1
        host = Host(name, ip, zone, role, os, owner, crit, vendor_name, f"A-{n_asset:04d}")
        w.hosts[key] = host
        return host

    p = prefix
    # IT core servers (10.10.0.0/24).
    add("dc01", f"{p}-dc01", "10.10.0.10", "it", "domain_controller", crit="high")
    add("dc02", f"{p}-dc02", "10.10.0.11", "it", "domain_controller", crit="high")
    for i, (key, role) in enumerate(
        [
            ("fs01", "file_server"),
            ("fs02", "file_server"),
            ("mail01", "mail_server"),
            ("sql01", "database_server"),
            ("web01", "intranet_server"),
            ("backup01", "backup_server"),
            ("av01", "antivirus_server"),
            ("wsus01", "update_server"),
            ("print01", "print_server"),
            ("sccm01", "config_manager"),
            ("lab01", "test_server"),
        ]
    ):
        add(
            key,
            f"{p}-{key}",
            f"10.10.0.{20 + i}",
            "it",
            role,
            crit="high" if role != "test_server" else "low",
        )
    for i in range(3):
        add(f"admws{i + 1}", f"{p}-adm-ws{i + 1:02d}", f"10.10.5.{11 + i}", "it", "admin_workstation")
    # ~275 user workstations with seed-dependent numbers.
    ws_numbers = sorted(rng.sample(range(1000, 9999), 275))
    for i, n in enumerate(ws_numbers):
        add(
            f"ws{i}",
            f"{p}-ws-{n:04d}",
            f"10.10.{20 + i // 200}.{10 + i % 200}",
            "it",
            "workstation",
            owner="desktop",
        )
    add("scanner", f"{p}-mfp-3f", "10.10.7.30", "it", "printer", os="appliance", crit="low")
    # DMZ.
    add("vpn01", f"{p}-vpn01", "10.20.0.5", "dmz", "vpn_concentrator", os="appliance", crit="high")
    add("mailgw", f"{p}-mailgw01", "10.20.0.6", "dmz", "mail_gateway", os="linux")
    add("proxy01", f"{p}-apigw01", "10.20.0.7", "dmz", "api_gateway", os="linux", crit="high")
    add("histmirror", f"{p}-hist-mirror", "10.20.0.20", "dmz", "historian_mirror", crit="medium")
    # Vendor access zone: the AMI vendor's jump host.
    add(
        "jump01",
        f"{p}-jump01",
        "10.30.0.10",
        "vendor-access",
        "jump_host",
        owner="ot-eng",
        crit="high",
        vendor_name=vendor,
    )
    # OT control.
    for key, ip, role in [
        ("dms01", "10.40.0.10", "dms_server"),
        ("dms02", "10.40.0.11", "dms_server"),
        ("scada01", "10.40.0.20", "scada_server"),
        ("scada02", "10.40.0.21", "scada_server"),
        ("hist01", "10.40.0.30", "historian"),
        ("otdc01", "10.40.0.5", "domain_controller"),
    ]:
        add(key, f"{p}-{key}", ip, "ot-control", role, owner="ot-ops", crit="critical")
    for i in range(6):
        add(
            f"hmi{i + 1}",
            f"{p}-hmi{i + 1:02d}",
            f"10.40.1.{11 + i}",
            "ot-control",
            "hmi",
            owner="ot-ops",
            crit="critical",
        )
    for i in range(3):
        add(
            f"ews{i + 1}",
            f"{p}-ews{i + 1:02d}",
            f"10.40.2.{11 + i}",
            "ot-control",
            "engineering_workstation",
            owner="ot-eng",
            crit="critical",
        )
    # AMI zone.
    add(
        "headend01",
        f"{p}-ami-he01",
        "10.50.0.10",
        "ami",
        "ami_headend",
        os="linux",
        owner="ami-ops",
        crit="critical",
        vendor_name=vendor,
    )
    add(
        "mdm01",
        f"{p}-mdm01",
        "10.50.0.20",
        "ami",
        "meter_data_management",
        os="linux",
        owner="ami-ops",
        crit="high",
        vendor_name=vendor,
    )
    for i in range(24):
        w.collectors.append(
            add(
                f"col{i + 1}",
                f"{p}-col-{i + 1:02d}",
                f"10.50.16.{11 + i}",
                "ami",
                "field_collector",
                os="appliance",
                owner="ami-ops",
                crit="high",
                vendor_name=vendor,
            )
        )

    # Users: one per workstation, unique sam names drawn from the seed.
    names: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(names) < 275:
        f, last = rng.choice(FIRST), rng.choice(LAST)
        sam = f"{f[0]}{last}"
        if sam in seen:
            sam = f"{sam}{rng.randrange(2, 9)}"
        if sam in seen:
            continue
        seen.add(sam)
        names.append((sam, f"{f.title()} {last.title()}"))
    rid = 1100 + rng.randrange(0, 400)
    home_blocks = [f"192.0.2.{i}" for i in range(20, 120)] + [f"198.51.100.{i}" for i in range(130, 190)]
    for i, (sam, disp) in enumerate(names):
        rid += 1
        u = User(sam, disp, _rid_sid(domain_sid, rid), rng.choice(DEPTS), w.hosts[f"ws{i}"])
        u.remote = rng.random() < 0.12
        u.home_ip = rng.choice(home_blocks)
        w.users.append(u)
    for i in range(4):
        base = w.users[rng.randrange(len(w.users))]
        rid += 1
        adm = User(
            f"adm-{base.sam}",
            f"{base.display} (admin)",
            _rid_sid(domain_sid, rid),
            "it",
            w.hosts[f"admws{i % 3 + 1}"],
            admin=True,
        )
        w.admins.append(adm)
    for sam, spn in [
        ("svc_sql", f"MSSQLSvc/{p}-sql01.{dns_domain}:1433"),
        ("svc_backup", f"backupagent/{p}-backup01.{dns_domain}"),
        ("svc_web", f"HTTP/{p}-web01.{dns_domain}"),
        ("svc_sccm", f"SMS/{p}-sccm01.{dns_domain}"),
        ("svc_historian", f"HistorianSvc/{p}-hist01.{dns_domain}"),
    ]:
        rid += 1
        w.service_accounts[sam] = User(sam, sam, _rid_sid(domain_sid, rid), "it")
        w.spns[sam] = spn
    # Vendor staff: VPN account + AD account on the jump host, each with a usual address.
    vendor_ips = rng.sample(range(10, 250), 5)
    for i in range(4):
        f, last = rng.choice(FIRST), rng.choice(LAST)
        rid += 1
        ad = User(
            f"v-{vpre}-{f[0]}{last}",
            f"{f.title()} {last.title()} ({vendor})",
            _rid_sid(domain_sid, rid),
            "vendor",
        )
        w.vendor_staff.append(VendorStaff(f"{vpre}.{f[0]}{last}", ad, f"203.0.113.{vendor_ips[i]}"))
    rid += 1
    w.vendor_svc = User(f"svc_{vslug}", f"{vendor} integration", _rid_sid(domain_sid, rid), "vendor")
    w.ami_operators = [f"ami.{u.sam}" for u in rng.sample(w.users, 4)]
    w.dms_operators = [f"dms.{u.sam}" for u in rng.sample(w.users, 5)]
    # 50,000 meters; ids carry a seed-dependent serial base, as a real fleet would.
    base = rng.randrange(10_000_000, 80_000_000)
    w.meters = [f"{vpre.upper()}{base + i:08d}" for i in range(50_000)]
    w.feeders = [f"FDR-{rng.randrange(100, 999)}-{i + 1:02d}" for i in range(40)]
    # Outside world (documentation addresses only).
    w.external = {
        "ntp.pool.example": "192.0.2.250",
        f"telemetry.{vslug}.example": f"203.0.113.{rng.randrange(2, 9)}",
        f"updates.{vslug}.example": f"203.0.113.{rng.randrange(251, 254)}",
        "telemetry.av-vendor.example": "198.51.100.201",
        "update.os-vendor.example": "198.51.100.202",
        "ocsp.ca-vendor.example": "198.51.100.203",
        "mail.saas-office.example": "198.51.100.204",
        "login.saas-office.example": "198.51.100.205",
        "teams.saas-office.example": "198.51.100.206",
        "news.example": "198.51.100.207",
        "weather.example": "198.51.100.208",
        "bank.example": "198.51.100.209",
        "www.example": "198.51.100.210",
        "gis-tiles.example": "198.51.100.211",
        "portal.regulator.example": "198.51.100.212",
    }
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    for i in range(12):
        label = "".join(rng.choice(alphabet) for _ in range(rng.randrange(10, 15)))
        host = f"{label}.{rng.choice(['cloudfront-cdn', 'edgecache', 'akam-edge'])}.example"
        w.cdn_names.append(host)
        w.external[host] = f"192.0.2.{130 + i}"
    # Added after every seed-driven draw above, so they change no name or address drawn before.
    w.external["files.cloudstore.example"] = "198.51.100.214"  # cloud file storage, browsed like any site
    w.infra = {
        "0.pool.ntp.example": "192.0.2.244",  # the mail gateway's chrony sources
        "1.pool.ntp.example": "192.0.2.247",
        "collector.monitor-saas.example": "198.51.100.213",  # monitoring SaaS heartbeat
        "definitionupdates.os-vendor.example": "198.51.100.215",  # Defender signature checks
        "vault.offsite-backup.example": "192.0.2.210",  # nightly offsite backup (GB)
        "s2s-peer": "192.0.2.226",  # site-to-site IPsec peer: the north water treatment works (GB)
        "hotel-wifi": "192.0.2.197",  # where the travelling employee stays (FR)
        "vendor-office-egress": "203.0.113.9",  # the vendor's office NAT, beside its staff's home lines
    }
    # OT field devices in the ot-control zone's field range (10.40.16.0/23), reached by the SCADA masters, the
    # historian, an HMI and the engineering workstations (demo/icsnet.py). Added last, so no earlier draw,
    # name, address or asset id moves.
    for i, n in enumerate(sorted(rng.sample(range(10, 90), 4))):
        w.rtus.append(
            add(
                f"rtu{i + 1}",
                f"{p}-rtu-ss{n:02d}",  # the substation's number
                f"10.40.16.{11 + i}",
                "ot-control",
                "rtu",
                os="appliance",
                owner="ot-eng",
                crit="critical",
            )
        )
    for i, site in enumerate(("wtp01", "wtp02", "pump01")):  # treatment works filters / dosing, a booster station
        w.plcs.append(
            add(
                f"plc{i + 1}",
                f"{p}-plc-{site}",
                f"10.40.17.{11 + i}",
                "ot-control",
                "plc",
                os="appliance",
                owner="ot-eng",
                crit="critical",
            )
        )
    return w
