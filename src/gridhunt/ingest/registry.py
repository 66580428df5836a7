"""The format registry: reader name -> reader module (see base.py for the contract).

Order matters: `detect` asks readers in this order and the first that names a format wins, so
cheap exact checks (EVTX magic) come first and readers of generic text (CSV, YAML) last.
Adding a format is one line here plus its module and tests.
"""

from __future__ import annotations

from gridhunt.ingest import ami, context, evtx, jsonlog, netlog, syslog, zeek
from gridhunt.ingest.base import Reader

READERS: dict[str, Reader] = {
    "evtx": evtx,
    "winjson": jsonlog,
    "zeek": zeek,
    "ami": ami,
    "syslog": syslog,  # before the CSV / YAML readers: vendor syslog text can look like either
    "netlog": netlog,
    "context": context,
}
