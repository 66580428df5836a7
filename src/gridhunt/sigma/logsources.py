"""Sigma logsource → the Windows events it covers (channel, event ids, field renames).

Agrees with SigmaHQ's regression-test mapping (tests/thor.yml): categories are Sysmon event ids,
`process_creation` is Sysmon 1 *and* Security 4688 (with Image→NewProcessName,
ParentImage→ParentProcessName), services are channels from pySigma's common Windows mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sigma.pipelines.common import windows_logsource_mapping

SYSMON = "Microsoft-Windows-Sysmon/Operational"


@dataclass(frozen=True)
class EventSource:
    """A slice of win_events: rows of these channels (and event ids), seen with these renames."""

    channels: tuple[str, ...]  # empty: any channel
    event_ids: tuple[int, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()  # (field, value) equality conditions, e.g. EventType
    renames: tuple[tuple[str, str], ...] = field(default=())  # Sigma field → win_events column

    @property
    def key(self) -> str:
        ids = ",".join(map(str, self.event_ids))
        extra = ",".join(f"{k}={v}" for k, v in self.extra)
        return f"{'|'.join(self.channels)}[{ids}]{extra}"


# No channel restriction: every Windows event in the case.
ALL_WINDOWS_EVENTS = EventSource(())


def _sysmon(*ids: int, **extra: str) -> EventSource:
    return EventSource((SYSMON,), ids, tuple(sorted(extra.items())))


# category → sources (thor.yml)
CATEGORY_SOURCES: dict[str, tuple[EventSource, ...]] = {
    "process_creation": (
        _sysmon(1),
        EventSource(("Security",), (4688,), (), (("Image", "NewProcessName"), ("ParentImage", "ParentProcessName"))),
    ),
    "file_change": (_sysmon(2),),
    "network_connection": (_sysmon(3),),
    "sysmon_status": (_sysmon(4, 16),),
    "process_termination": (_sysmon(5),),
    "driver_load": (_sysmon(6),),
    "image_load": (_sysmon(7),),
    "create_remote_thread": (_sysmon(8),),
    "raw_access_thread": (_sysmon(9),),
    "process_access": (_sysmon(10),),
    "file_event": (_sysmon(11),),
    "registry_event": (_sysmon(12, 13, 14),),
    "registry_add": (_sysmon(12, EventType="CreateKey"),),
    "registry_delete": (_sysmon(12, EventType="DeleteKey"), _sysmon(12, EventType="DeleteValue")),
    "registry_set": (_sysmon(13),),
    "registry_rename": (_sysmon(14),),
    "create_stream_hash": (_sysmon(15),),
    "pipe_created": (_sysmon(17, 18),),
    "wmi_event": (_sysmon(19, 20, 21),),
    "dns_query": (_sysmon(22),),
    "file_delete": (_sysmon(23),),
    "clipboard_change": (_sysmon(24),),
    "process_tampering": (_sysmon(25),),
    "file_delete_detected": (_sysmon(26),),
    "file_block_executable": (_sysmon(27),),
    "file_block_shredding": (_sysmon(28),),
    "file_executable_detected": (_sysmon(29),),
    "sysmon_error": (_sysmon(255),),
    "ps_module": (EventSource(("Microsoft-Windows-PowerShell/Operational", "PowerShellCore/Operational"), (4103,)),),
    "ps_script": (EventSource(("Microsoft-Windows-PowerShell/Operational", "PowerShellCore/Operational"), (4104,)),),
    "ps_classic_start": (EventSource(("Windows PowerShell",), (400,)),),
    "ps_classic_provider_start": (EventSource(("Windows PowerShell",), (600,)),),
    "ps_classic_script": (EventSource(("Windows PowerShell",), (800,)),),
    "antivirus": (
        EventSource(
            ("Microsoft-Windows-Windows Defender/Operational",),
            (1006, 1007, 1008, 1009, 1010, 1011, 1012, 1017, 1018, 1019, 1115, 1116),
            (),
            (("Signature", "ThreatName"), ("Filename", "Path")),
        ),
    ),
}

# Services thor.yml knows that pySigma's common mapping lacks.
EXTRA_SERVICES: dict[str, str | list[str]] = {
    "smbclient-connectivity": "Microsoft-Windows-SmbClient/Connectivity",
    "smbserver-connectivity": "Microsoft-Windows-SMBServer/Connectivity",
}


def service_channels(service: str) -> tuple[str, ...] | None:
    chans = windows_logsource_mapping.get(service) or EXTRA_SERVICES.get(service)
    if chans is None:
        return None
    return (chans,) if isinstance(chans, str) else tuple(chans)


def sources_for(product: str | None, category: str | None, service: str | None) -> tuple[EventSource, ...]:
    """The event sources a Windows rule's logsource covers; () when we cannot map it."""
    if product not in (None, "windows"):
        return ()
    if category:
        return CATEGORY_SOURCES.get(category, ())
    if service:
        chans = service_channels(service)
        return (EventSource(chans),) if chans else ()
    if product == "windows":
        return (ALL_WINDOWS_EVENTS,)  # e.g. keyword rules over every Windows log
    return ()
