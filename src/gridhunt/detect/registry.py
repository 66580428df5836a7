"""The analytics registry: theme modules, in run order. Adding a theme is one line here plus
its module (exposing ANALYTICS and, optionally, prepare(ctx)) and its tests."""

from __future__ import annotations

from types import ModuleType

from gridhunt.detect import ami, assets, auth, beacon, dns, exfil, ics, segmentation

THEMES: tuple[ModuleType, ...] = (
    auth,
    beacon,
    dns,
    exfil,
    ami,
    segmentation,
    ics,
    assets,
)
