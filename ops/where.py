"""`--where` of the audit commands: a boolean expression over a table's columns, nothing else.

The text is parsed by Spark's own SQL expression parser (exactly what `DataFrame.where` would
parse), then every node of the tree is checked against an allow-list: column references of the
table, literals, comparisons, AND/OR/NOT, IN with literal lists, LIKE, IS [NOT] NULL, CAST,
arithmetic and a few pure scalar functions. Subqueries, lambdas, `*`, parameters and every other
function (reflect, java_method, UDFs, ...) are refused, so the filter can only select rows.
"""
from __future__ import annotations

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from ops.errors import OpsError

MAX_CHARS = 2000
MAX_NODES = 200

_NODES = frozenset({
    "And", "Or", "Not", "EqualTo", "EqualNullSafe", "LessThan", "LessThanOrEqual",
    "GreaterThan", "GreaterThanOrEqual", "In", "InSet", "IsNull", "IsNotNull", "Like", "ILike",
    "Cast", "Literal", "Add", "Subtract", "Multiply", "Divide", "UnaryMinus", "UnaryPositive",
    "UnresolvedAttribute", "UnresolvedFunction",
})
# Pure scalar functions (no side effects, no access to anything but their arguments).
_FUNCTIONS = frozenset({
    "between", "lower", "upper", "trim", "length", "abs", "round", "coalesce", "isnull",
    "isnotnull", "date_trunc", "to_date", "to_timestamp", "date", "timestamp", "year", "month",
    "day", "hour", "minute", "array_contains", "size", "current_timestamp", "current_date", "now",
})


class WhereError(OpsError):
    """A `--where` text that is not an allowed filter; the message says what is wrong."""


def _seq(seq) -> list:
    """A Scala Seq (through py4j) as a Python list."""
    return [seq.apply(i) for i in range(seq.size())]


def _children(node) -> list:
    return _seq(node.children())


def _check_node(node, columns: dict[str, str]) -> None:
    kind = node.getClass().getSimpleName()
    if kind not in _NODES:
        raise WhereError(f"--where may not use {_describe(kind)}: only comparisons, AND/OR/NOT, "
                         f"IN (...), LIKE, IS [NOT] NULL, arithmetic and simple functions over "
                         f"the table's columns")
    if kind == "UnresolvedAttribute":
        parts = [str(p) for p in _seq(node.nameParts())]
        if len(parts) != 1 or parts[0].lower() not in columns:
            raise WhereError(f"--where: unknown column {'.'.join(parts)!r}; columns: "
                             f"{', '.join(columns.values())}")
    elif kind == "UnresolvedFunction":
        parts = [str(p) for p in _seq(node.nameParts())]
        name = ".".join(parts).lower()
        if len(parts) != 1 or name not in _FUNCTIONS or node.isDistinct():
            raise WhereError(f"--where may not call {name}(): allowed functions are "
                             f"{', '.join(sorted(_FUNCTIONS))}")
    elif kind == "In":
        values = _children(node)[1:]
        if any(v.getClass().getSimpleName() != "Literal" for v in values):
            raise WhereError("--where: IN (...) takes literal values only")


def _describe(kind: str) -> str:
    if "Subquery" in kind or kind in ("ListQuery", "Exists"):
        return "a subquery"
    if "Lambda" in kind:
        return "a lambda function"
    if "Star" in kind:
        return "*"
    if "Parameter" in kind:
        return "a query parameter"
    return f"{kind} expressions"


def checked_filter(spark: SparkSession, text: str, columns: list[str]) -> Column:
    """The filter column for `text` after checking it (WhereError names what is not allowed)."""
    text = text.strip()
    if not text:
        raise WhereError("--where is empty: give a condition such as \"car_id = 'car-01'\"")
    if len(text) > MAX_CHARS:
        raise WhereError(f"--where is longer than {MAX_CHARS} characters")
    parser = spark._jsparkSession.sessionState().sqlParser()
    try:
        tree = parser.parseExpression(text)
    except Exception as exc:  # noqa: BLE001 - py4j wraps Spark's ParseException
        raise WhereError(f"--where is not one SQL expression: {_first_line(exc)}") from None
    known = {name.lower(): name for name in columns}
    pending, seen = [tree], 0
    while pending:
        node = pending.pop()
        seen += 1
        if seen > MAX_NODES:
            raise WhereError(f"--where has more than {MAX_NODES} terms")
        _check_node(node, known)
        pending.extend(_children(node))
    return F.expr(text)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("py4j", "An error occurred", "at ", "Traceback")):
            return line[:300]
    return text[:300]
