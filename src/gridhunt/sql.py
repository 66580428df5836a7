"""Quoting for the SQL we generate (DuckDB: single-quoted strings, double-quoted identifiers)."""

from __future__ import annotations


def sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
