"""Request bodies of the model server, generated from `lib.features` (responses: `responses`).

The record model is built from the feature definition (raw columns, numeric ranges, category
vocabularies), so OpenAPI documents exactly what `validate_record` checks and there is no second
list of fields to keep in sync. Models are built per app because the required fields depend on
the served model's feature set and the batch limit on settings.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    model_validator,
    with_config,
)
from pydantic_core import PydanticCustomError
from typing_extensions import NotRequired, Required, TypedDict  # pydantic needs TypedDict from here on Python < 3.12

from lib.features import (
    CATEGORIES,
    NUMERIC,
    NUMERIC_RANGES,
    RAW_COLUMNS,
    TARGET,
    TARGET_VALUES,
    FeatureError,
    FeatureSet,
    validate_record,
)

EVENT_TIME_MIN = datetime(2000, 1, 1, tzinfo=timezone.utc)
EVENT_TIME_MAX = datetime(2100, 1, 1, tzinfo=timezone.utc)
# Exactly the texts the server accepts as an event time (years 2000-2099, real calendar days, naive
# or with an offset), so clients and schema-driven tests can generate valid ones from OpenAPI.
_DAY = (
    "(20[0-9]{2}-(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
    "|20[0-9]{2}-(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    "|20[0-9]{2}-02-(0[1-9]|1[0-9]|2[0-8])"
    "|20(0[048]|[2468][048]|[13579][26])-02-29)"
)
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
EVENT_TIME_PATTERN = f"^{_DAY}{_TIME}$"
MAX_CATEGORY_LENGTH = 100
FORBID = ConfigDict(extra="forbid")


def _label(value: Any) -> Any:
    if isinstance(value, bool | float):
        raise ValueError("must be 0, 1, 'yes' or 'no'")
    return value


def _event_time_text(value: Any) -> Any:
    """ISO 8601 text only (as documented): no epoch numbers, which the schema does not admit."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    return value


def _event_time(value: datetime) -> datetime:
    """Validate an event time and make it timezone-aware.

    Naive times are UTC; the year range (as written, also in the schema's pattern) keeps the log
    readable as pandas timestamps.
    """
    if not EVENT_TIME_MIN.year <= value.year < EVENT_TIME_MAX.year:
        raise ValueError(f"must be between {EVENT_TIME_MIN:%Y-%m-%d} and {EVENT_TIME_MAX:%Y-%m-%d}")
    aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc)


EventTime = Annotated[
    datetime,
    BeforeValidator(_event_time_text),
    AfterValidator(_event_time),
    Field(
        description="When the event happened (ISO 8601, years 2000-2099; naive = UTC); default: when received",
        json_schema_extra={"type": "string", "format": None, "pattern": EVENT_TIME_PATTERN},
    ),
]


def _json_integer(value: Any) -> Any:
    """A JSON integer, which JSON Schema says 41.0 also is; not "41", true or 41.5."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


AccessKey = Annotated[str, Field(description="Access key, for clients that cannot send an Authorization header")]
Label = Annotated[Literal[0, 1, "yes", "no"], BeforeValidator(_label)]
Scalar = StrictInt | StrictFloat | StrictStr | StrictBool | None


def record_model(features: FeatureSet) -> Any:
    """One raw record as a TypedDict: the model's columns required, the other raw columns optional.

    It enforces what `validate_record` does (no unknown or missing fields, integers for numerics,
    strings for categories) plus the numeric ranges, and validates straight to a plain dict: the
    hot path scores it without a second pass.
    """
    fields: dict[str, Any] = {}
    for col in RAW_COLUMNS:
        if col == TARGET:
            typ: Any = Literal["yes", "no"]
            doc = "the outcome, if known; ignored by the model"
        elif col in NUMERIC:
            lo, hi = NUMERIC_RANGES[col]
            typ = Annotated[int, Field(ge=lo, le=hi), BeforeValidator(_json_integer)]
            doc = f"integer in [{lo}, {hi}]"
        else:
            typ = Annotated[str, Field(max_length=MAX_CATEGORY_LENGTH)]
            doc = f"one of {', '.join(CATEGORIES[col])} (other values are treated as missing)"
        field = Annotated[typ, Field(description=doc)]
        if col in features.columns:
            fields[col] = Required[field]
        else:
            doc += "; not used by the served model"
            fields[col] = NotRequired[Annotated[typ, Field(description=doc)]]
    return with_config(FORBID)(TypedDict("BankRecord", fields))  # type: ignore[operator]


def _request_kind(value: Any) -> str:
    return "records" if isinstance(value, list) else "record"


@functools.cache
def _ranges(features: FeatureSet) -> tuple[tuple[str, int, int], ...]:
    return tuple((col, *NUMERIC_RANGES[col]) for col in features.numeric)


def check_record(record: Any, features: FeatureSet) -> dict[str, Any]:
    """`validate_record` plus the numeric ranges, safe for any JSON value (huge ints, NaN, inf).

    For rows that arrive untyped (the MLflow protocol); /predict records are typed by `record_model`.
    """
    if isinstance(record, dict):
        for col, lo, hi in _ranges(features):
            value = record.get(col)
            if isinstance(value, int | float) and not isinstance(value, bool):
                if isinstance(value, float) and not math.isfinite(value):
                    raise FeatureError(f"field {col} must be a finite number")
                if not lo <= value <= hi:
                    raise FeatureError(f"field {col} must be between {lo} and {hi}")
    return validate_record(record, features)


@functools.cache
def record_checker(features: FeatureSet) -> Callable[[Any], dict[str, Any]]:
    """`check_record` for `features`, four times faster on the common case.

    The fast path takes a dict of known fields with strings for categories and in-range ints for
    numerics; anything else goes through `check_record`, which raises its own error or accepts what
    the fast path did not decide (41.0 for 41).
    """
    raw = frozenset(RAW_COLUMNS)
    spec = tuple((col, None if col in CATEGORIES else NUMERIC_RANGES[col]) for col in features.columns)

    def check(record: Any) -> dict[str, Any]:
        if type(record) is not dict or not raw.issuperset(record):
            return check_record(record, features)
        clean = {}
        for col, bounds in spec:
            value = record.get(col)
            if bounds is None:
                if type(value) is not str:
                    return check_record(record, features)
            elif type(value) is not int or not bounds[0] <= value <= bounds[1]:
                return check_record(record, features)
            clean[col] = value
        return clean

    return check


INVOCATION_INPUTS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _one_of_inputs(schema: dict[str, Any]) -> None:
    """The input forms are given as values, never null.

    That exactly one is given is said in the description only: a `oneOf` over them makes
    schema-driven generators (schemathesis) crawl.
    """
    props = schema["properties"]
    for name in INVOCATION_INPUTS:
        variants = [v for v in props[name].pop("anyOf") if v.get("type") != "null"]
        props[name].pop("default", None)
        props[name].update(variants[0] if len(variants) == 1 else {"anyOf": variants})


def _exactly_one(model: BaseModel, names: tuple[str, ...]) -> None:
    given = [n for n in names if getattr(model, n) is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(names)} (got {len(given)})")


def _columns_to_records(columns: dict[str, list[Any]], where: str, limit: int) -> list[dict[str, Any]]:
    if not columns:
        raise FeatureError(f"{where}: no columns")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise FeatureError(f"{where}: every column needs the same number of values")
    n = lengths.pop()
    if n == 0:
        raise FeatureError(f"{where}: no rows")
    if n > limit:
        raise FeatureError(f"{where}: {n} rows exceed the limit of {limit} per request")
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


@dataclass(frozen=True)
class Schemas:
    """The request models of one app."""

    predict: type[BaseModel]
    invocations: type[BaseModel]
    explain: type[BaseModel]
    feedback: Any


def _predict_body(record: type[BaseModel], max_batch: int) -> type[BaseModel]:
    """POST /predict: one typed record or a list of them under `request`."""
    record_list = Annotated[list[record], Field(min_length=1, max_length=max_batch)]  # type: ignore[valid-type]

    class PredictRequest(BaseModel):
        """CML-model style: one record or a list of records under `request`."""

        model_config = FORBID
        request: Annotated[
            Annotated[record, Tag("record")] | Annotated[record_list, Tag("records")],  # type: ignore[valid-type]
            Discriminator(_request_kind),
        ]
        event_time: EventTime | None = None
        accessKey: AccessKey | None = None  # CML's field name

        def records(self) -> list[dict[str, Any]]:
            return self.request if isinstance(self.request, list) else [self.request]

    return PredictRequest


def _invocations_body(max_batch: int) -> type[BaseModel]:
    """POST /invocations: the MLflow input forms, rows untyped (checked per record when scored)."""
    many_rows = Field(default=None, min_length=1, max_length=max_batch)

    class DataFrameSplit(BaseModel):
        model_config = FORBID
        columns: list[StrictStr] = Field(min_length=1, max_length=len(RAW_COLUMNS))
        data: list[list[Scalar]] = Field(min_length=1, max_length=max_batch)
        index: list[Scalar] | None = None

    RecordRows = list[dict[str, Scalar]]
    ColumnLists = dict[str, list[Scalar]]

    class InvocationsRequest(BaseModel):
        """MLflow scoring protocol: exactly one of dataframe_split, dataframe_records, instances, inputs."""

        model_config = ConfigDict(extra="forbid", json_schema_extra=_one_of_inputs)
        dataframe_split: DataFrameSplit | None = None
        dataframe_records: RecordRows | None = many_rows
        instances: RecordRows | ColumnLists | None = None
        inputs: RecordRows | ColumnLists | None = None
        params: dict[str, Any] | None = Field(
            default=None, description="not supported: must be empty", json_schema_extra={"maxProperties": 0}
        )
        accessKey: AccessKey | None = None

        @model_validator(mode="after")
        def _one_input(self) -> InvocationsRequest:
            _exactly_one(self, INVOCATION_INPUTS)
            if self.params:
                raise ValueError("this model takes no params")
            return self

        def records(self) -> list[dict[str, Any]]:
            if self.dataframe_split is not None:
                split = self.dataframe_split
                cols = split.columns
                if len(set(cols)) != len(cols):
                    raise FeatureError("dataframe_split.columns: duplicate column names")
                for i, row in enumerate(split.data):
                    if len(row) != len(cols):
                        raise FeatureError(f"dataframe_split.data[{i}]: {len(row)} values for {len(cols)} columns")
                return [dict(zip(cols, row, strict=True)) for row in split.data]
            if self.dataframe_records is not None:
                return list(self.dataframe_records)
            name = "instances" if self.instances is not None else "inputs"
            value = self.instances if self.instances is not None else self.inputs
            if isinstance(value, dict):
                return _columns_to_records(value, name, max_batch)
            if not value:
                raise FeatureError(f"{name}: no rows")
            if len(value) > max_batch:
                raise FeatureError(f"{name}: {len(value)} rows exceed the limit of {max_batch} per request")
            return list(value)

    return InvocationsRequest


def _feedback_body(max_batch: int) -> Any:
    """POST /feedback: one outcome, or a batch under `feedback` (told apart by that key)."""

    class FeedbackItem(BaseModel):
        model_config = FORBID
        uuid: UUID = Field(description="the uuid /predict returned")
        label: Label = Field(description="what really happened: 1/'yes' subscribed, 0/'no' did not")
        event_time: EventTime | None = None

        def item(self) -> dict[str, Any]:
            label = TARGET_VALUES[self.label] if isinstance(self.label, str) else int(self.label)
            return {"uuid": str(self.uuid), "label": label, "event_ts": self.event_time}

    class FeedbackOne(FeedbackItem):
        """Ground truth for one prediction."""

        accessKey: AccessKey | None = None

        def items(self) -> list[dict[str, Any]]:
            return [self.item()]

    class FeedbackBatch(BaseModel):
        """Ground truth for many predictions."""

        model_config = FORBID
        feedback: list[FeedbackItem] = Field(min_length=1, max_length=max_batch)
        accessKey: AccessKey | None = None

        def items(self) -> list[dict[str, Any]]:
            return [f.item() for f in self.feedback]

    def _feedback_kind(value: Any) -> str:
        return "batch" if isinstance(value, dict) and "feedback" in value else "one"

    feedback = Annotated[
        Annotated[FeedbackOne, Tag("one")] | Annotated[FeedbackBatch, Tag("batch")],
        Discriminator(_feedback_kind),
    ]
    return feedback


def build_schemas(features: FeatureSet, max_batch: int) -> Schemas:
    """All request models for a server scoring `features` with at most `max_batch` rows per call."""
    record = record_model(features)

    class ExplainRequest(BaseModel):
        """One record to explain."""

        model_config = FORBID
        request: record  # type: ignore[valid-type]
        accessKey: AccessKey | None = None

    return Schemas(
        predict=_predict_body(record, max_batch),
        invocations=_invocations_body(max_batch),
        explain=ExplainRequest,
        feedback=_feedback_body(max_batch),
    )
