"""The two parses of validation: fast `from_json` for every row, exact VARIANT for the rest.

`from_json` (no NaN/Infinity tokens, no single quotes, corrupt-record column) is exact for a row
when it reports no corrupt record, all required fields are there, every number is finite and no
string field holds text that a non-string token could have produced (`42`, `true`, `{...}`).
Only the other rows ("diagnosed") are parsed again with `try_parse_json`, whose VARIANT names
each field's JSON type (`schema_of_variant`): strict where `from_json` is lenient.

Internal columns added to the parsed frame: `_diag` (the row is diagnosed) and `_slow` (null
unless diagnosed): `is_object` (the value is a JSON object), `values` (the fields, null unless
OK; same struct type as `_p`), `status` (per field of rules.FIELDS: OK, ABSENT or WRONG_TYPE)
and `mismatch` (the sorted TYPE_MISMATCH codes).
"""
from __future__ import annotations

from functools import reduce
from operator import and_

from pyspark.sql import Column, DataFrame, functions as F, types as T

from silver import rules as R

CORRUPT = "_corrupt_record"
_SPARK_TYPE = {R.STRING: T.StringType(), R.STRING_OR_INTEGER: T.StringType(),
               R.NUMBER: T.DoubleType()}
PARSE_SCHEMA = T.StructType(
    [T.StructField(rule.name, _SPARK_TYPE[rule.json_type]) for rule in R.FIELDS]
    + [T.StructField(CORRUPT, T.StringType())])
JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT,
                "allowNonNumericNumbers": "false", "allowSingleQuotes": "false"}

# Field status.
OK, ABSENT, WRONG_TYPE = 0, 1, 2

# schema_of_variant names accepted per JSON type (VOID is JSON null; absent is NULL or null).
_VARIANT_TYPES = {
    R.STRING: r"^STRING$",
    R.NUMBER: r"^(TINYINT|SMALLINT|INT|BIGINT|FLOAT|DOUBLE|DECIMAL\([0-9]+,[0-9]+\))$",
    R.STRING_OR_INTEGER: r"^(STRING|TINYINT|SMALLINT|INT|BIGINT|DECIMAL\([0-9]+,0\))$",
}
# Text from_json writes into a StringType field for a number token the field's type does not
# allow (ids accept integers, whose text is the same either way).
_NUMBER_TEXT = {R.STRING: r"^[-+.0-9eE]+$",
                R.STRING_OR_INTEGER: r"^[-+.0-9eE]*[.eE+][-+.0-9eE]*$"}
_INF = float("inf")


def parsed_field(name: str) -> Column:
    return F.col("_p").getField(name)


def _could_be_non_string(text: Column, json_type: str) -> Column:
    """True when a StringType from_json result may stem from a token of a disallowed type."""
    first = F.substring(text, 1, 1)
    could_be_number = first.isin(*"-0123456789") & text.rlike(_NUMBER_TEXT[json_type])
    ambiguous = (could_be_number | text.isin("true", "false")
                 | text.startswith("{") | text.startswith("["))
    return F.coalesce(ambiguous, F.lit(False))


def needs_diagnosis() -> Column:
    """True for UTF-8 rows whose from_json result (`_p`) is not known to be exact."""
    is_parsed_object = F.col("_p").isNotNull() & parsed_field(CORRUPT).isNull()
    has_required = reduce(and_, [parsed_field(name).isNotNull() for name in R.REQUIRED_FIELDS])
    unambiguous = []
    for rule in R.FIELDS:
        value = parsed_field(rule.name)
        if rule.json_type == R.NUMBER:
            unambiguous.append(F.coalesce(F.abs(value) != F.lit(_INF), F.lit(True)))
        elif rule.name == R.TIMESTAMP_FIELD:
            # No number, boolean or JSON text has a timestamp's form: cheaper than the generic
            # test, and a well-formed timestamp is the common case.
            unambiguous.append(F.coalesce(value.rlike(R.TIMESTAMP_REGEX), F.lit(False)))
        else:
            unambiguous.append(~_could_be_non_string(value, rule.json_type))
    is_plainly_clean = is_parsed_object & has_required & reduce(and_, unambiguous)
    return F.col("_utf8") & ~is_plainly_clean


def _bind(value: Column, fn) -> Column:
    """`fn(value)` with `value` evaluated once (a one-element transform; SQL has no `let`)."""
    return F.element_at(F.transform(F.array(value), fn), 1)


def _exact_status(field: Column) -> Column:
    """OK, ABSENT or WRONG_TYPE from a field's JSON type (as named by schema_of_variant)."""
    json_type, kind = field["type"], field["kind"]
    # A number too large for a double (1e400) is still a number (DOUBLE, +-Infinity): the
    # range rules judge it (OUT_OF_RANGE), not the type check.
    is_allowed = (F.when(kind == R.STRING, json_type.rlike(_VARIANT_TYPES[R.STRING]))
                  .when(kind == R.NUMBER, json_type.rlike(_VARIANT_TYPES[R.NUMBER]))
                  .otherwise(json_type.rlike(_VARIANT_TYPES[R.STRING_OR_INTEGER])))
    is_absent = json_type.isNull() | json_type.isin("VOID", "NULL")
    return F.when(is_absent, ABSENT).when(is_allowed, OK).otherwise(WRONG_TYPE)


def _read_fields(v: Column) -> Column:
    """Per field of rules.FIELDS (in order): struct(name, status, number, text) from VARIANT v."""
    fields = []
    for rule in R.FIELDS:
        path = f"$.{rule.name}"  # literal paths are parsed once, at planning
        is_number = rule.json_type == R.NUMBER
        number = F.try_variant_get(v, path, "double") if is_number else F.lit(None)
        text = F.lit(None) if is_number else F.try_variant_get(v, path, "string")
        fields.append(F.struct(
            F.lit(rule.name).alias("name"), F.lit(rule.json_type).alias("kind"),
            F.schema_of_variant(F.variant_get(v, path, "variant")).alias("type"),
            number.cast(T.DoubleType()).alias("number"), text.cast(T.StringType()).alias("text")))

    def judge(field: Column) -> Column:
        return F.struct(field["name"].alias("name"), _exact_status(field).alias("status"),
                        field["number"].alias("number"), field["text"].alias("text"))

    return F.transform(F.array(*fields), judge)


def _summary(v: Column, fields: Column) -> Column:
    """struct(is_object, values like `_p` (null unless OK), status per field, mismatch codes)."""
    values = []
    for i, rule in enumerate(R.FIELDS):
        field = F.element_at(fields, i + 1)
        typed = field["number"] if rule.json_type == R.NUMBER else field["text"]
        values.append(F.when(field["status"] == OK, typed).alias(rule.name))
    values.append(F.lit(None).cast(T.StringType()).alias(CORRUPT))
    codes = F.transform(fields, lambda field: F.when(
        field["status"] == WRONG_TYPE, F.concat(F.lit(R.TYPE_MISMATCH_PREFIX), field["name"])))
    return F.struct(F.schema_of_variant(v).startswith("OBJECT").alias("is_object"),
                    F.struct(*values).alias("values"),
                    F.transform(fields, lambda field: field["status"]).alias("status"),
                    F.array_sort(F.array_compact(codes)).alias("mismatch"))


def diagnose(parsed: DataFrame) -> DataFrame:
    """Adds `_diag` and `_slow` (is_object, values, status, mismatch; null unless `_diag`).

    Input: the parsed frame with `_text`, `_utf8` and `_p`; `_text` is dropped. The VARIANT is
    parsed once per diagnosed row and bound with `_bind`. The higher-order functions also keep
    this projection out of whole-stage codegen on purpose, so the rarely-run diagnosis code does
    not grow the hot path's generated method past the JIT's 8000-byte limit (measured: one
    15 KB method, left interpreted, halved the throughput of validate).
    """
    def diagnosis(v: Column) -> Column:  # v is null when the value is not JSON
        return F.when(v.isNotNull(), _bind(_read_fields(v), lambda fields: _summary(v, fields)))

    # needs_diagnosis() appears twice in one projection: evaluated once (common subexpression)
    exact = F.when(needs_diagnosis(), _bind(F.try_parse_json("_text"), diagnosis))
    return (parsed.select("*", needs_diagnosis().alias("_diag"), exact.alias("_slow"))
            .drop("_text"))
