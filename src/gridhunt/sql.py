"""Quoting for the SQL we generate (DuckDB: single-quoted strings, double-quoted identifiers)."""

from __future__ import annotations

from typing import Any


def sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def temp_table(con: Any, name: str, data: Any, select: str = "*") -> None:
    """(Re)create TEMP TABLE `name` from an Arrow table (`select`: the columns / expressions to keep)."""
    source = f"_gh_src_{name}"
    con.register(source, data)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {select} FROM {source}")
    finally:
        con.unregister(source)
