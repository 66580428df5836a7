"""Thresholds of the behavioural analytics: package defaults (detect/defaults.yaml and any
detect/<theme>.yaml, every key documented there) overridden by the user's `--config FILE` (same
shape, only the keys to change).

A key or analytic the defaults do not know, or a value of the wrong type, is an error naming the
file and key, so a typo never silently leaves a default in force.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml


class SettingsError(ValueError):
    pass


def default_files() -> list[tuple[str, str]]:
    """(file name, text) of every defaults file: defaults.yaml, then one `<theme>.yaml` per theme
    that keeps its own, in name order."""
    base = resources.files("gridhunt.detect")
    names = sorted(p.name for p in base.iterdir() if p.name.endswith(".yaml"))
    names.sort(key=lambda n: n != "defaults.yaml")
    return [(n, (base / n).read_text(encoding="utf-8")) for n in names]


def default_settings() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, text in default_files():
        for analytic, values in (yaml.safe_load(text) or {}).items():
            if analytic in out:  # a packaging mistake, caught by the tests
                raise SettingsError(f"{name}: {analytic} is already set in another defaults file")
            out[analytic] = values
    return out


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float)
    if isinstance(default, list):
        return isinstance(value, list)
    if default is None:
        return True
    return isinstance(value, type(default))


def load_settings(path: Path | None = None) -> dict[str, dict[str, Any]]:
    settings = default_settings()
    if path is None:
        return settings
    try:
        user = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: broken YAML: {exc}") from None
    if not isinstance(user, dict):
        raise SettingsError(f"{path}: expected a mapping of analytic name to its settings")
    for name, values in user.items():
        if name not in settings:
            known = ", ".join(sorted(settings))
            raise SettingsError(f"{path}: unknown analytic {name!r} (known: {known})")
        if not isinstance(values, dict):
            raise SettingsError(f"{path}: {name}: expected a mapping of setting to value")
        for key, value in values.items():
            if key not in settings[name]:
                known = ", ".join(sorted(settings[name]))
                raise SettingsError(f"{path}: {name}.{key}: unknown setting (known: {known})")
            if not _same_kind(settings[name][key], value):
                want = type(settings[name][key]).__name__
                raise SettingsError(f"{path}: {name}.{key}: expected {want}, got {value!r}")
            settings[name][key] = value
    return settings
