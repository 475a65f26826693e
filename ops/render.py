"""Rows for people and programs: a text table, CSV or JSON.

Values are made printable in Spark before they are collected (`printable`): timestamps as
ISO-8601 UTC text (the session time zone, never the Python process'), binary values as text
(raw Kafka values are UTF-8 JSON; invalid bytes become U+FFFD), arrays, maps and structs as
JSON text, so the same row prints the same way in every format.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F, types as T

FORMATS = ("table", "csv", "json")
MAX_CELL = 48
ISO_UTC = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"


def printable_value(col: Column, dtype: T.DataType) -> Column:
    """`col` as a value that prints the same in every format (see the module docstring)."""
    if isinstance(dtype, T.TimestampType):
        return F.date_format(col, ISO_UTC)
    if isinstance(dtype, (T.BinaryType, T.DecimalType)):
        return col.cast(T.StringType())
    if isinstance(dtype, (T.ArrayType, T.MapType, T.StructType)):
        return F.to_json(col)
    return col


def printable_struct(col: Column, dtype: T.StructType) -> Column:
    """A struct column with each field made printable (null stays null)."""
    fields = [printable_value(col.getField(f.name), f.dataType).alias(f.name) for f in dtype.fields]
    return F.when(col.isNotNull(), F.struct(*fields))


def printable(frame: DataFrame) -> DataFrame:
    return frame.select(*[printable_value(F.col(f"`{f.name}`"), f.dataType).alias(f.name)
                          for f in frame.schema.fields])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _clip(text: str, width: int = MAX_CELL) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[:width - 1] + "…"


def text_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A fixed-width table; long cells are clipped except in the last column (use --format
    csv or json for whole values)."""
    last = len(columns) - 1
    cells = [[_cell(v) if i == last else _clip(_cell(v)) for i, v in enumerate(row)]
             for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    out = [line(columns), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    return buffer.getvalue().rstrip("\n")


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str,
           extra: dict[str, Any] | None = None) -> str:
    """`rows` as `fmt`; JSON is one object: `extra` fields plus `rows` (a list of objects)."""
    if fmt == "json":
        document = dict(extra or {})
        document["rows"] = [dict(zip(columns, row)) for row in rows]
        return json.dumps(document, indent=2, default=str)
    if fmt == "csv":
        return csv_text(columns, rows)
    return text_table(columns, rows)
