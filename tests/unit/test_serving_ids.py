"""The prediction ids the server makes per row are RFC 4122 version-4 uuids, all different."""

from __future__ import annotations

import uuid

from lib.serving.scoring import uuid4_strings


def test_uuid4_strings_are_version_4_uuids() -> None:
    ids = uuid4_strings(2000)
    assert len(ids) == len(set(ids)) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert uuid4_strings(0) == []
