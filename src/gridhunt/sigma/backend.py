"""pySigma backend that turns one Sigma detection into one DuckDB boolean expression.

The expression is evaluated against a per-logsource view whose columns are named like the
Sigma fields (all VARCHAR, see `runner.py`), so the backend never needs the table layout.
Matching is case-insensitive unless the `cased` modifier is used (Sigma spec). Every atomic
predicate is wrapped in `coalesce(..., false)`: SQL's three-valued logic would otherwise make
`selection and not filter` false whenever the filter's field is missing.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import re2
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.modifiers import SigmaWideModifier, modifier_mapping
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)

from gridhunt.sql import quote_ident, sql_literal

# The view column that holds all of an event's field values, for keyword (unbound) searches.
FULLTEXT_COLUMN = "gh_fulltext"

# The Sigma 2 spec names UTF-16LE encoding `utf16le` (with `wide` as its alias); pySigma 2.0.1 only
# knows `wide`, so spec-conformant rules would be rejected as "Unknown modifier 'utf16le'".
modifier_mapping.setdefault("utf16le", SigmaWideModifier)
# A field name with this suffix is the lower-cased field: the runner's view computes lower() once per
# row and field, not once per predicate (a rule with 300 `contains` on CommandLine would pay 300x).
LOWER_SUFFIX = "#lower"


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_RE_SPECIAL = set("\\.^$|?*+()[]{}")
# An OR of at least this many plain string matches on one field becomes one RE2 alternation:
# one pass over the value instead of one `contains` per value (SigmaHQ has lists of 300 values).
REGEX_OR_MIN = 10


def _re_literal(s: str) -> str:
    return "".join("\\" + c if c in _RE_SPECIAL else c for c in s)


def _safe(expr: str) -> str:
    return f"coalesce({expr}, false)"


class DuckDBBackend(TextQueryBackend):
    """Sigma → DuckDB SQL boolean expression. Declarative tokens where pySigma's templates fit;
    string matching is our own because DuckDB has fast `contains` / `starts_with` / `suffix`
    and SQL needs NULL-safe predicates."""

    name: ClassVar[str] = "gridhunt DuckDB"
    formats: ClassVar[dict[str, str]] = {"default": "DuckDB boolean expression over a field-named view"}
    requires_pipeline: ClassVar[bool] = False

    group_expression: ClassVar[str] = "({expr})"
    token_separator: str = " "
    or_token: ClassVar[str] = "OR"
    and_token: ClassVar[str] = "AND"
    not_token: ClassVar[str] = "NOT"
    eq_token: ClassVar[str] = " = "

    str_quote: ClassVar[str] = "'"
    escape_char: ClassVar[str] = "\\"
    wildcard_multi: ClassVar[str] = "%"
    wildcard_single: ClassVar[str] = "_"
    bool_values: ClassVar[dict[bool, str | None]] = {True: "true", False: "false"}

    # pySigma expands CIDR values into prefix wildcards, which land in our string matcher.
    cidr_expression: ClassVar[str | None] = None

    compare_op_expression: ClassVar[str] = "coalesce(TRY_CAST({field} AS DOUBLE) {operator} {value}, false)"
    compare_operators: ClassVar[dict[CompareOperators, str]] = {
        CompareOperators.LT: "<",
        CompareOperators.LTE: "<=",
        CompareOperators.GT: ">",
        CompareOperators.GTE: ">=",
        CompareOperators.NEQ: "<>",
    }
    field_null_expression: ClassVar[str] = "coalesce({field}, '') = ''"
    field_exists_expression: ClassVar[str] = "({field} IS NOT NULL)"
    field_not_exists_expression: ClassVar[str] = "({field} IS NULL)"
    # minute|hour|day|week|month|year: pySigma appends " = N" (or the compare operator and N) itself.
    field_timestamp_part_expression: ClassVar[str] = "date_part('{timestamp_part}', TRY_CAST({field} AS TIMESTAMP))"
    timestamp_part_mapping: ClassVar[dict[TimestampPart, str]] = {
        TimestampPart.MINUTE: "minute",
        TimestampPart.HOUR: "hour",
        TimestampPart.DAY: "day",
        TimestampPart.WEEK: "week",
        TimestampPart.MONTH: "month",
        TimestampPart.YEAR: "year",
    }

    convert_or_as_in: ClassVar[bool] = True
    convert_and_as_in: ClassVar[bool] = False
    in_expressions_allow_wildcards: ClassVar[bool] = False
    field_in_list_expression: ClassVar[str] = "{field} {op} ({list})"
    or_in_operator: ClassVar[str] = "IN"
    list_separator: ClassVar[str] = ", "

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields_seen: set[str] = set()
        self.uses_python_regex = False

    # -- fields -------------------------------------------------------------------------
    def escape_and_quote_field(self, field_name: str) -> str:
        self.fields_seen.add(field_name)
        return quote_ident(field_name)

    def _lowered(self, quoted: str) -> str:
        name = quoted[1:-1].replace('""', '"') + LOWER_SUFFIX
        self.fields_seen.add(name)
        return quote_ident(name)

    # -- strings ------------------------------------------------------------------------
    def _string_match(self, field: str, value: SigmaString, cased: bool) -> str:
        parts = value.s
        if any(isinstance(p, Placeholder) for p in parts):
            # gh_placeholders holds lower-cased values (runner.prepare): `cased` cannot apply here.
            return self._placeholder_match(self._lowered(field), parts, str.lower)
        col = field if cased else self._lowered(field)
        norm = (lambda t: t) if cased else str.lower
        specials = [i for i, p in enumerate(parts) if isinstance(p, SpecialChars)]
        plain = "".join(norm(p) for p in parts if isinstance(p, str))
        n = len(parts)
        star = SpecialChars.WILDCARD_MULTI
        if not specials:
            return _safe(f"{col} = {sql_literal(plain)}")
        if all(parts[i] == star for i in specials):
            if specials == [0] and n > 1:
                return _safe(f"suffix({col}, {sql_literal(plain)})")
            if specials == [n - 1] and n > 1:
                return _safe(f"starts_with({col}, {sql_literal(plain)})")
            if specials == [0, n - 1] and n > 2:
                return _safe(f"contains({col}, {sql_literal(plain)})")
            if n == 1:  # a lone '*' matches any present value
                return f"({field} IS NOT NULL)"
        pattern = "".join(_like_escape(norm(p)) if isinstance(p, str) else ("%" if p == star else "_") for p in parts)
        return _safe(f"{col} LIKE {sql_literal(pattern)} ESCAPE '\\'")

    def _placeholder_match(self, col: str, parts: tuple[Any, ...], norm: Any) -> str:
        # `%name%` (expand modifier) stands for any value listed for `name` in gh_placeholders.
        names = [p.name for p in parts if isinstance(p, Placeholder)]
        if len(names) != 1:
            raise ValueError("only one placeholder per value is supported")
        pieces = []
        for p in parts:
            if isinstance(p, Placeholder):
                pieces.append("gh_like_escape(p.v)")
            elif isinstance(p, SpecialChars):
                pieces.append("'%'" if p == SpecialChars.WILDCARD_MULTI else "'_'")
            else:
                pieces.append(sql_literal(_like_escape(norm(p))))
        pattern = " || ".join(pieces)
        return (
            f"EXISTS (SELECT 1 FROM gh_placeholders p WHERE p.name = {sql_literal(names[0])} "
            f"AND coalesce({col} LIKE {pattern} ESCAPE '\\', false))"
        )

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        value = cond.value
        assert isinstance(value, SigmaString)
        field = self.escape_and_quote_field(cond.field)
        return self._string_match(field, value, isinstance(value, SigmaCasedString))

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        value = cond.value
        assert isinstance(value, SigmaString)
        return self._string_match(self.escape_and_quote_field(cond.field), value, True)

    def decide_convert_condition_as_in_expression(
        self, cond: ConditionOR | ConditionAND, state: ConversionState
    ) -> bool:
        if not super().decide_convert_condition_as_in_expression(cond, state):
            return False
        # pySigma lets placeholders (`%name%`) and cased strings through: keep those out of IN,
        # except for a list that is cased throughout, which becomes a case-sensitive IN.
        values = [arg.value for arg in cond.args if isinstance(arg, ConditionFieldEqualsValueExpression)]
        if any(isinstance(v, SigmaString) and v.contains_placeholder() for v in values):
            return False
        return len({isinstance(v, SigmaCasedString) for v in values}) == 1

    def convert_condition_or(self, cond: ConditionOR, state: ConversionState) -> Any:
        merged = self._or_as_regex(cond)
        return merged if merged is not None else super().convert_condition_or(cond, state)

    def _or_as_regex(self, cond: ConditionOR) -> str | None:
        args = cond.args
        if len(args) < REGEX_OR_MIN:
            return None
        if not all(isinstance(a, ConditionFieldEqualsValueExpression) and type(a.value) is SigmaString for a in args):
            return None
        fields = {a.field for a in args}  # type: ignore[union-attr]
        if len(fields) != 1:
            return None
        alts = []
        star = SpecialChars.WILDCARD_MULTI
        for a in args:
            parts = a.value.s  # type: ignore[union-attr]
            # only `*literal*` values: an unanchored alternation of literals is what RE2 scans fast
            if len(parts) != 3 or parts[0] != star or parts[2] != star or not isinstance(parts[1], str):
                return None
            alts.append(_re_literal(parts[1].lower()))
        pattern = "(?s)" + "|".join(sorted(set(alts)))
        col = self._lowered(self.escape_and_quote_field(fields.pop()))
        return _safe(f"regexp_matches({col}, {sql_literal(pattern)})")

    def convert_condition_as_in_expression(self, cond: ConditionOR | ConditionAND, state: ConversionState) -> str:
        first = cond.args[0]
        assert isinstance(first, ConditionFieldEqualsValueExpression)
        field = self.escape_and_quote_field(first.field)
        cased = isinstance(first.value, SigmaCasedString)
        values = []
        for arg in cond.args:
            assert isinstance(arg, ConditionFieldEqualsValueExpression)
            v = arg.value
            # The literal text: str(SigmaString) re-escapes a literal `*` or `?` as `\*` / `\?`.
            text = "".join(p for p in v.s if isinstance(p, str)) if isinstance(v, SigmaString) else str(v)
            values.append(sql_literal(text if cased else text.lower()))
        # Numbers and strings both compare as text: every view column is VARCHAR.
        col = field if cased else self._lowered(field)
        return _safe(f"{col} IN ({', '.join(values)})")

    def convert_condition_field_eq_val_num(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        value = cond.value
        assert isinstance(value, SigmaNumber)
        return _safe(f"{self.escape_and_quote_field(cond.field)} = {sql_literal(str(value))}")

    def convert_condition_field_eq_val_bool(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        text = "true" if cond.value.boolean else "false"
        return _safe(f"{self._lowered(self.escape_and_quote_field(cond.field))} = '{text}'")

    # -- values that become an OR of predicates ------------------------------------------------
    # windash, base64offset and a CIDR that spans several prefixes turn one value into an OR. pySigma
    # parenthesizes that OR below an AND but neither below a NOT (`not filter` gave `NOT a OR b OR c`)
    # nor for CIDR at all (`x AND a OR b`): emit each such OR as one group instead.
    def convert_condition_field_eq_expansion(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return self.group_expression.format(expr=super().convert_condition_field_eq_expansion(cond, state))

    def convert_condition_field_eq_val_cidr(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return self.group_expression.format(expr=super().convert_condition_field_eq_val_cidr(cond, state))

    def compare_precedence(self, outer: Any, inner: Any) -> bool:
        expands = isinstance(inner, (ConditionFieldEqualsValueExpression, ConditionValueExpression)) and isinstance(
            inner.value, (SigmaExpansion, SigmaCIDRExpression)
        )
        return True if expands else super().compare_precedence(outer, inner)

    # -- regular expressions ----------------------------------------------------------------
    def _regex(self, field: str, regex: SigmaRegularExpression) -> str:
        flags = "".join(
            {
                SigmaRegularExpressionFlag.IGNORECASE: "i",
                SigmaRegularExpressionFlag.MULTILINE: "m",
                SigmaRegularExpressionFlag.DOTALL: "s",
            }[f]
            for f in sorted(regex.flags, key=lambda f: f.name)
        )
        pattern = (f"(?{flags})" if flags else "") + str(regex.regexp)
        try:
            re2.compile(pattern)
        except re2.error:
            # RE2 (DuckDB's engine) lacks look-around and back-references: fall back to Python's re.
            re.compile(pattern)
            self.uses_python_regex = True
            return _safe(f"gh_pyregex({field}, {sql_literal(pattern)})")
        return _safe(f"regexp_matches({field}, {sql_literal(pattern)})")

    def convert_condition_field_eq_val_re(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        assert isinstance(cond.value, SigmaRegularExpression)
        return self._regex(self.escape_and_quote_field(cond.field), cond.value)

    # -- timestamp parts (minute, hour, day, week, month, year) --------------------------------
    def convert_condition_field_eq_val_timestamp_part(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        expr = super().convert_condition_field_eq_val_timestamp_part(cond, state)
        assert isinstance(expr, str)
        return _safe(expr)

    # -- field references -------------------------------------------------------------------
    def convert_condition_field_eq_field(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        ref = cond.value
        assert isinstance(ref, SigmaFieldReference)
        a = self._lowered(self.escape_and_quote_field(cond.field))
        b = self._lowered(self.escape_and_quote_field(ref.field))
        if ref.starts_with and ref.ends_with:
            return _safe(f"contains({a}, {b})")
        if ref.starts_with:
            return _safe(f"starts_with({a}, {b})")
        if ref.ends_with:
            return _safe(f"suffix({a}, {b})")
        return _safe(f"{a} = {b}")

    def convert_condition_field_compare_op_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        value = cond.value
        assert isinstance(value, SigmaCompareExpression)
        if isinstance(value.number, SigmaTimestampPart):  # e.g. `hour|gte`
            expr = self.field_timestamp_part_expression.format(
                field=self.escape_and_quote_field(cond.field),
                timestamp_part=self.timestamp_part_mapping[value.number.timestamp_part],
            )
            return _safe(f"{expr} {self.compare_operators[value.op]} {value.number.number}")
        return self.compare_op_expression.format(
            field=self.escape_and_quote_field(cond.field),
            operator=self.compare_operators[value.op],
            value=value.number.number,
        )

    # -- keywords (no field): full-text over all of the event's values ------------------------
    def convert_condition_val_str(self, cond: Any, state: ConversionState) -> str:
        value = cond.value
        assert isinstance(value, SigmaString)
        cased = isinstance(value, SigmaCasedString)
        # A bare keyword matches anywhere in the text (the common reading of the spec).
        parts = list(value.s)
        if not parts or parts[0] != SpecialChars.WILDCARD_MULTI:
            parts.insert(0, SpecialChars.WILDCARD_MULTI)
        if parts[-1] != SpecialChars.WILDCARD_MULTI:
            parts.append(SpecialChars.WILDCARD_MULTI)
        wrapped = SigmaString("")
        wrapped.s = tuple(parts)
        self.fields_seen.add(FULLTEXT_COLUMN)
        return self._string_match(quote_ident(FULLTEXT_COLUMN), wrapped, cased)

    def convert_condition_val_num(self, cond: Any, state: ConversionState) -> str:
        self.fields_seen.add(FULLTEXT_COLUMN)
        return _safe(f"contains({quote_ident(FULLTEXT_COLUMN)}, {sql_literal(str(cond.value))})")

    def convert_condition_val_re(self, cond: Any, state: ConversionState) -> str:
        self.fields_seen.add(FULLTEXT_COLUMN)
        return self._regex(quote_ident(FULLTEXT_COLUMN), cond.value)

    # -- one rule -----------------------------------------------------------------------------
    def rule_expression(self, rule: SigmaRule) -> tuple[str, frozenset[str], bool]:
        """Convert one detection rule to (boolean SQL, fields it reads, needs Python regex)."""
        self.fields_seen = set()
        self.uses_python_regex = False
        queries = self.convert_rule(rule)
        if not queries:
            raise ValueError("rule produced no query")
        expr = queries[0] if len(queries) == 1 else " OR ".join(f"({q})" for q in queries)
        return expr, frozenset(self.fields_seen), self.uses_python_regex


def required_event_ids(rule: SigmaRule) -> list[int] | None:
    """The EventIDs an event must have for `rule` to match it, or None when not bounded.

    Sound by construction: AND intersects what its parts bound, OR bounds only when every branch
    does, NOT and anything else bound nothing. The runner uses it to skip rows before evaluating."""

    def walk(c: Any) -> set[int] | None:
        if isinstance(c, ConditionFieldEqualsValueExpression):
            if (c.field or "").lower() != "eventid" or not isinstance(c.value, SigmaNumber | SigmaString):
                return None
            try:
                return {int(str(c.value))}
            except ValueError:
                return None
        if isinstance(c, ConditionAND):
            bounds = [b for b in (walk(a) for a in c.args) if b is not None]
            return set.intersection(*bounds) if bounds else None
        if isinstance(c, ConditionOR):
            parts = [walk(a) for a in c.args]
            return None if any(p is None for p in parts) else set().union(*parts)
        return None

    out: set[int] = set()
    for cond in rule.detection.parsed_condition:
        ids = walk(cond.parsed)
        if ids is None:
            return None
        out |= ids
    return sorted(out)
