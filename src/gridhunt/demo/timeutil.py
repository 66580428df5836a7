"""Fixed clock for the demo: no wall-clock anywhere, every time derives from these epochs."""

from __future__ import annotations

import calendar
import time

US = 1_000_000  # all timestamps inside the generator are integer microseconds since the epoch
MINUTE = 60 * US
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# Activity covers 30 days of April 2026; the vendor's incident window starts before it.
START = calendar.timegm((2026, 4, 1, 0, 0, 0)) * US
DAYS = 30
END = START + DAYS * DAY
INCIDENT_START = "2026-03-15T00:00:00Z"
INCIDENT_END = "2026-04-28T00:00:00Z"


def at(day: int, hh: int = 0, mm: int = 0, ss: float = 0.0) -> int:
    """Microseconds for April `day` 2026 at hh:mm:ss UTC (the utility keeps its clocks on UTC)."""
    return START + (day - 1) * DAY + hh * HOUR + mm * MINUTE + round(ss * US)


def weekday(day_index: int) -> int:
    """0=Monday for day_index 0..29 (April 1 2026 is a Wednesday)."""
    return (2 + day_index) % 7


def iso_ms(us: int) -> str:
    """ISO 8601 UTC with milliseconds, as FORMATS.md asks for CSV / JSON lines."""
    s, frac = divmod(us, US)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{frac // 1000:03d}Z"


def iso_us(us: int) -> str:
    """ISO 8601 UTC with microseconds, as evtx_dump writes SystemTime."""
    s, frac = divmod(us, US)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{frac:06d}Z"


def sysmon_time(us: int) -> str:
    """Sysmon's UtcTime: `2026-04-01 08:00:00.123`."""
    s, frac = divmod(us, US)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s)) + f".{frac // 1000:03d}"


def zeek_time(us: int) -> str:
    s, frac = divmod(us, US)
    return f"{s}.{frac:06d}"


def zeek_stamp(us: int) -> str:
    """Zeek's #open / #close stamp."""
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(us // US))
