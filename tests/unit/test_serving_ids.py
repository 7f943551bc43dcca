"""The prediction ids the server makes per row are RFC 9562 version-7 uuids: all different, time-ordered."""

from __future__ import annotations

import uuid

from lib.serving.scoring import uuid7_strings

NOW_NS = 1_795_449_600_123_456_789  # 2026-11-23 (a fixed clock: the test does not depend on the time)


def test_uuid7_strings_are_version_7_uuids() -> None:
    ids = uuid7_strings(2000, NOW_NS)
    assert len(ids) == len(set(ids)) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert parsed.int >> 80 == NOW_NS // 1_000_000  # the 48-bit millisecond timestamp
    assert uuid7_strings(0) == []


def test_later_ids_sort_after_earlier_ones() -> None:
    """What keeps the prediction log's key inserts at the end of its index."""
    first, later = uuid7_strings(50, NOW_NS), uuid7_strings(50, NOW_NS + 1_000_000)
    assert max(first) < min(later)
