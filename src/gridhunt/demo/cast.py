"""Who the benign look-alikes are about: fixed picks from the world, no random draws.

The background (which must keep these people away from their desks on some days), the
look-alike generator and the tests all call `cast(world)` and get the same accounts. Nobody
is picked from engineering, the department the intrusion phishes its victim from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gridhunt.demo.world import User, World

TRIP_DAYS = (13, 14, 15, 16)  # day indexes: the traveller's trip to France (Tue 14 – Fri 17 April)
PHONE_FROM = (15, 11, 2)  # (day index, hh, mm): password changed, the phone starts failing
PHONE_FIXED = (16, 16, 32)  # the user types the new password into the phone
GIS_DAYS = (20, 21, 22, 23, 24)  # the GIS sync tool's stale password (Tue 21 – Sat 25 April)
UPLOAD_DAY = 21  # the one large upload to cloud storage
NIGHT_ROTA = 4  # night operators work 4 nights on, 4 off, one always on duty


@dataclass(frozen=True)
class Cast:
    night_ops: tuple[User, User]  # control-room night shift, alternating blocks of NIGHT_ROTA nights
    day_ops: tuple[User, ...]  # control-room day crew: early (06:00) / late (14:00), swapping weekly
    traveller: User  # remote worker who goes to France for a few days
    phone_user: User  # changed password, the phone's mail client keeps the old one
    gis_user: User  # a desktop GIS sync tool with a stale stored password
    uploader: User  # uploads one large file to cloud storage
    rc4_users: tuple[User, User]  # each asks once for an RC4 ticket to the old historian service
    monitor: User  # monitoring service account: AES tickets for many SPNs, every ticket lifetime
    asrep: User  # legacy app account with "do not require Kerberos pre-authentication"
    joiner: User  # new hire created in the baseline, plain department group
    monitor_host: str = "sccm01"  # world host key the monitoring collector runs on
    asrep_host: str = "web01"


def cast(w: World) -> Cast:
    used: set[str] = set()

    def pick(pred: Callable[[User], bool], n: int) -> list[User]:
        out = [u for u in w.users if u.sam not in used and u.dept != "engineering" and pred(u)][:n]
        if len(out) < n:  # a seed short of a department: fall back to anyone outside engineering
            out += [u for u in w.users if u.sam not in used and u.dept != "engineering" and u not in out][
                : n - len(out)
            ]
        used.update(u.sam for u in out)
        return out

    night = pick(lambda u: u.dept == "operations" and not u.remote, 2)
    day = pick(lambda u: u.dept == "operations" and not u.remote, 12)
    traveller = pick(lambda u: u.remote, 1)[0]
    phone = pick(lambda u: u.dept in ("customer-service", "billing") and not u.remote, 1)[0]
    gis = pick(lambda u: u.dept == "gis" and not u.remote, 1)[0]
    uploader = pick(lambda u: u.dept in ("legal", "finance") and not u.remote, 1)[0]
    rc4 = pick(lambda u: u.dept == "finance", 2)
    d = w.domain_sid
    return Cast(
        night_ops=(night[0], night[1]),
        day_ops=tuple(day),
        traveller=traveller,
        phone_user=phone,
        gis_user=gis,
        uploader=uploader,
        rc4_users=(rc4[0], rc4[1]),
        monitor=User("svc_monitor", "Monitoring collector", f"{d}-1096", "it"),
        asrep=User("svc_javarpt", "Legacy Java reporting (no Kerberos pre-auth)", f"{d}-1097", "it"),
        joiner=User("nkowalski", "Nina Kowalski", f"{d}-5250", "engineering"),
    )
