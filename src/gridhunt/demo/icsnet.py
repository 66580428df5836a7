"""Benign ICS protocol traffic in the OT control zone, one day at a time: Zeek `modbus.log` / `dnp3.log`
records and the `conn.log` line of every TCP session that carries them.

- SCADA: scada01, the active master, polls every substation RTU over DNP3 (TCP 20000) every few seconds;
  scada02, the hot standby, keeps its own channels to the RTUs up with an integrity poll a minute. The
  RTUs report breaker and alarm changes by exception (UNSOLICITED_RESPONSE) to the active master. The
  front end re-opens its channels at midnight, so each (master, RTU) pair is one TCP session a day.
- Plant: the historian reads the water PLCs' input and holding registers over Modbus/TCP (502) all day;
  the treatment-works HMI reads the two treatment PLCs directly.
- Engineering: on some working days an engineer opens a short Modbus session from an engineering
  workstation to a PLC of their area, reads the holding registers, writes one or a few of them (setpoint,
  timer, alarm limit: WRITE_SINGLE_REGISTER / WRITE_MULTIPLE_REGISTERS) and reads them back, in working
  hours only. Nothing else writes.
- One DNP3 DIRECT_OPERATE: the protection engineer trips a breaker racked to its test position from an
  engineering workstation, inside change window `breaker_test` (context/change_windows.csv); the RTU
  reports the trip to the active master unsolicited a second later.

Zeek logs every poll; the demo keeps a sample of the polling (one READ per pair every 30 min for the active
master, fewer for the rest: SAMPLE), so the small demo grows by under 10 %, while the conn lines carry the
sessions' full bytes and packets. Engineering sessions are logged whole but for the tool's online reads
between its first read and the writes. The layouts are Zeek's base Modbus::Info (before Zeek 7: one record
per transaction, on the reply) and DNP3::Info (a request and its reply in one record), `netlog.ZEEK_FIELDS`.

All randomness comes from one `random.Random(f"{seed}:ics")`, connection uids included, so no other log's
records change; no record here carries a label. Every record of day d falls inside day d.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gridhunt.demo.background import pois
from gridhunt.demo.context import Change
from gridhunt.demo.netlog import r_conn, r_dnp3, r_modbus, zeek_uid
from gridhunt.demo.sinks import Sink
from gridhunt.demo.timeutil import DAY, HOUR, MINUTE, START, US, weekday
from gridhunt.demo.world import Host, World

DNP3_PORT = 20000
MODBUS_PORT = 502
# (real poll interval, one logged record per) for each kind of polling pair
ACTIVE = (5 * US, 30 * MINUTE)  # scada01 -> RTU: event polls every 5 s
STANDBY = (60 * US, 4 * HOUR)  # scada02 -> RTU: an integrity poll a minute
HISTORIAN = (10 * US, HOUR)  # hist01 -> PLC: register scan every 10 s
HMI = (2 * US, 2 * HOUR)  # the treatment-works HMI -> its PLCs: screen refresh every 2 s
UNSOLICITED_PER_DAY = 3.0  # per RTU: breaker / alarm changes reported by exception
HMI_KEY = "hmi6"  # the treatment-works HMI (world host key) and the PLCs it reads
HMI_PLCS = ("plc1", "plc2")
# The PLCs each engineering workstation's engineer looks after (world host keys).
AREAS: dict[str, tuple[str, ...]] = {"ews1": ("plc1", "plc2"), "ews2": ("plc3", "plc2"), "ews3": ("plc3",)}
ENGINEERING_DAY = 0.25  # chance an engineer changes something on a PLC on a given working day
BREAKER_EWS = "ews3"  # the protection engineer's workstation


@dataclass(frozen=True)
class Session:
    """One TCP session: the master / client is the originator, the outstation / server the responder."""

    uid: str
    src: Host
    sport: int
    dst: Host
    dport: int


class IcsTraffic:
    def __init__(self, w: World, sinks: dict[str, Sink], rng: random.Random, cal: dict[str, Change]) -> None:
        self.w, self.s, self.rng, self.cal = w, sinks, rng, cal
        self.active: dict[str, Session] = {}  # today's scada01 session per RTU name: where unsolicited goes

    # -- helpers -------------------------------------------------------------------
    def session(
        self, start: int, end: int, src: Host, dst: Host, dport: int, polls: int, req: int, resp: int
    ) -> Session:
        """Open a session and write its conn line: `polls` request / response exchanges of `req` and about
        `resp` bytes (a request, its response and the master's ACK each)."""
        ses = Session(zeek_uid(self.rng), src, self.rng.randrange(49152, 65535), dst, dport)
        resp_bytes = round(polls * resp * self.rng.uniform(0.9, 1.15))  # responses grow with the day's events
        service = "dnp3" if dport == DNP3_PORT else "modbus"
        self.s["conn"].add(
            start,
            r_conn,
            ses.uid,
            src.ip,
            ses.sport,
            dst.ip,
            dport,
            "tcp",
            service,
            (end - start) / US,
            polls * req,
            resp_bytes,
            "SF",
            "ShADadFf",
            2 * polls + 3,
            polls + 2,
        )
        return ses

    def dnp3(self, ts: int, ses: Session, fc_request: str, fc_reply: str, iin: int = 0) -> None:
        self.s["dnp3"].add(ts, r_dnp3, ses.uid, ses.src.ip, ses.sport, ses.dst.ip, ses.dport, fc_request, fc_reply, iin)

    def modbus(self, ts: int, ses: Session, func: str) -> None:
        self.s["modbus"].add(ts, r_modbus, ses.uid, ses.src.ip, ses.sport, ses.dst.ip, ses.dport, func, "")

    def polled(
        self, day0: int, k: int, src: Host, dst: Host, dport: int, rate: tuple[int, int], req: int, resp: int
    ) -> tuple[Session, list[int]]:
        """A pair's session for the day (the k-th channel the master re-opens at midnight) and the times of
        its logged sample of polls."""
        interval, sample = rate
        start = day0 + 2 * US + k * 350_000 + self.rng.randrange(200_000)
        end = day0 + DAY - 6 * US
        ses = self.session(start, end, src, dst, dport, (end - start) // interval, req, resp)
        # the first poll after each sample mark, a few seconds into the session
        times = [start + 3 * US + n * sample + self.rng.randrange(interval) for n in range((end - start) // sample)]
        return ses, [t for t in times if t < end]

    # -- one day -------------------------------------------------------------------
    def day(self, d: int) -> None:
        day0 = START + d * DAY
        self.scada(day0)
        self.plant(day0)
        if weekday(d) < 5:
            self.engineering(day0)
        ch = self.cal["breaker_test"]
        if ch.start // DAY == day0 // DAY:
            self.breaker_test(ch)

    def scada(self, day0: int) -> None:
        rng, w = self.rng, self.w
        primary, standby = w.h("scada01"), w.h("scada02")
        self.active = {}
        for i, rtu in enumerate(w.rtus):
            ses, times = self.polled(day0, i, primary, rtu, DNP3_PORT, ACTIVE, 24, 40)
            self.active[rtu.name] = ses
            for t in times:  # events pending after the poll, now and then (IIN1.1: class 1 events)
                self.dnp3(t, ses, "READ", "RESPONSE", 0x0200 if rng.random() < 0.04 else 0)
            changes = pois(rng, UNSOLICITED_PER_DAY)
            for t in sorted(day0 + rng.randrange(10 * US, DAY - 10 * US) for _ in range(changes)):
                self.dnp3(t, ses, "", "UNSOLICITED_RESPONSE")
        for i, rtu in enumerate(w.rtus):
            ses, times = self.polled(day0, len(w.rtus) + i, standby, rtu, DNP3_PORT, STANDBY, 24, 260)
            for t in times:
                self.dnp3(t, ses, "READ", "RESPONSE")

    def plant(self, day0: int) -> None:
        rng, w = self.rng, self.w
        hist, hmi = w.h("hist01"), w.h(HMI_KEY)
        for i, plc in enumerate(w.plcs):
            ses, times = self.polled(day0, i, hist, plc, MODBUS_PORT, HISTORIAN, 12, 90)
            for t in times:  # process values (input registers) mostly, setpoints (holding registers) too
                self.modbus(t, ses, "READ_INPUT_REGISTERS" if rng.random() < 0.65 else "READ_HOLDING_REGISTERS")
        for i, key in enumerate(HMI_PLCS):
            ses, times = self.polled(day0, len(w.plcs) + i, hmi, w.h(key), MODBUS_PORT, HMI, 12, 70)
            for t in times:
                self.modbus(t, ses, "READ_HOLDING_REGISTERS")

    def engineering(self, day0: int) -> None:
        """Working-day register changes: read, write one or a few registers, read back."""
        rng, w = self.rng, self.w
        for key, area in AREAS.items():
            if rng.random() >= ENGINEERING_DAY:
                continue
            ews, plc = w.h(key), w.h(rng.choice(area))
            start = day0 + int(rng.uniform(8.0, 15.5) * HOUR)
            t = start + rng.randrange(5, 30) * US
            steps: list[tuple[int, str]] = [(t, "READ_HOLDING_REGISTERS")]
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                t += rng.randrange(40, 300) * US
                func = "WRITE_SINGLE_REGISTER" if rng.random() < 0.6 else "WRITE_MULTIPLE_REGISTERS"
                steps += [(t, func), (t + rng.randrange(2, 6) * US, "READ_HOLDING_REGISTERS")]
                t = steps[-1][0]
            end = t + rng.randrange(60, 600) * US
            # the tool reads the register block every second while online
            ses = self.session(start, end, ews, plc, MODBUS_PORT, (end - start) // US, 12, 60)
            for ts, func in steps:
                self.modbus(ts, ses, func)

    def breaker_test(self, ch: Change) -> None:
        """One DIRECT_OPERATE inside its change window: trip the test-position breaker, confirm, done."""
        rng, w = self.rng, self.w
        ews, rtu = w.h(BREAKER_EWS), w.rtus[0]
        start = ch.start + 35 * MINUTE + rng.randrange(300 * US)
        end = start + 14 * MINUTE
        ses = self.session(start, end, ews, rtu, DNP3_PORT, 6, 26, 180)
        self.dnp3(start + 12 * US, ses, "READ", "RESPONSE")  # integrity poll: breaker status before
        op = start + 3 * MINUTE + 40 * US
        self.dnp3(op, ses, "DIRECT_OPERATE", "RESPONSE")  # CROB: trip
        self.dnp3(op + 1_200_000, self.active[rtu.name], "", "UNSOLICITED_RESPONSE")  # the trip, to the master
        self.dnp3(op + 80 * US, ses, "READ", "RESPONSE")  # breaker open: confirmed
