"""Schemathesis hooks for the API fuzzing test (loaded through SCHEMATHESIS_HOOKS).

/invocations also takes `text/csv` bodies (documented as a string); schemathesis has no CSV
serializer of its own, so a generated string is sent as it is, and anything else (the negative
cases) as its JSON text, which the server must refuse with a 4xx.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("text/csv")
def csv_body(_ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogatepass")
