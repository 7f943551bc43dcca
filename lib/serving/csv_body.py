"""`text/csv` bodies on /invocations, as `mlflow models serve` accepts them.

A header row names the columns, then one row per record. CSV carries no types, so the feature
definition gives them: numeric columns must hold integers (41 or 41.0), the rest are text. The parsed rows go
on as `{"dataframe_records": [...]}`, through the same validation as JSON. Anything malformed (not
UTF-8, broken quoting, a row with the wrong number of values, a non-integer number, too many rows)
is a 422 naming the line and column, never a 500.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from lib.features import NUMERIC, FeatureError

CSV_MEDIA_TYPE = "text/csv"
# an integer, or one written as a float ("41.0": pandas writes integer columns so after a NaN)
INTEGER = re.compile(r"([+-]?[0-9]+)(?:\.0*)?", re.ASCII)
MAX_DIGITS = 20


def is_csv(content_type: str | None) -> bool:
    """Whether a Content-Type header announces a CSV body (parameters such as charset ignored)."""
    return content_type is not None and content_type.partition(";")[0].strip().lower() == CSV_MEDIA_TYPE


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, values) of each non-blank CSV row."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for row in reader:
            if row:
                yield reader.line_num, row
    except csv.Error as exc:
        raise FeatureError(f"CSV line {reader.line_num + 1}: malformed CSV ({exc})") from exc


def _value(column: str, text: str, line: int) -> Any:
    if column not in NUMERIC:
        return text
    match = INTEGER.fullmatch(text.strip())
    shown = text if len(text) <= 40 else text[:40] + "..."
    if match is None:
        raise FeatureError(f"CSV line {line}, column {column}: {shown!r} is not an integer")
    if len(match[1]) > MAX_DIGITS:  # far outside every feature's range (and int() refuses ~4300+ digits)
        raise FeatureError(f"CSV line {line}, column {column}: {shown!r} is out of range")
    return int(match[1])


def _header(values: list[str]) -> list[str]:
    names = [v.strip() for v in values]
    if any(not n for n in names):
        raise FeatureError("CSV line 1: every column needs a name in the header row")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FeatureError(f"CSV line 1: duplicate column name(s): {', '.join(duplicates)}")
    return names


def parse_csv(body: bytes, max_rows: int) -> list[dict[str, Any]]:
    """Records from a CSV body with a header row; FeatureError naming the line on any problem."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeatureError(f"the CSV body is not UTF-8 text (byte {exc.start})") from None
    rows = _rows(text)
    first = next(rows, None)
    if first is None:
        raise FeatureError("the CSV body is empty: send a header row of column names, then one row per record")
    names = _header(first[1])
    records = []
    for line, values in rows:
        if len(records) == max_rows:
            raise FeatureError(f"the CSV body has more than {max_rows} rows, the limit per request")
        if len(values) != len(names):
            raise FeatureError(f"CSV line {line}: {len(values)} values for {len(names)} columns")
        records.append({n: _value(n, v, line) for n, v in zip(names, values, strict=True)})
    if not records:
        raise FeatureError("the CSV body has a header row but no records")
    return records


class _ParsedRequest(Request):
    """The request with its CSV body already turned into the JSON form the route validates."""

    def __init__(self, scope: Scope, receive: Receive, body: bytes, payload: dict[str, Any]) -> None:
        super().__init__(scope, receive)
        self._raw = body
        self._payload = payload

    async def body(self) -> bytes:
        return self._raw

    async def json(self) -> Any:
        return self._payload


class CsvRoute(APIRoute):
    """A route that also takes `text/csv` bodies (parsed here, validated like JSON `dataframe_records`)."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        """Wrap FastAPI's handler so a CSV body reaches it as parsed `dataframe_records` JSON."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            if is_csv(request.headers.get("content-type")):
                body = await request.body()
                records = parse_csv(body, request.app.state.settings.max_batch_records)
                headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
                scope = {**request.scope, "headers": [*headers, (b"content-type", b"application/json")]}
                request = _ParsedRequest(scope, request.receive, body, {"dataframe_records": records})
            return await handler(request)

        return handle
