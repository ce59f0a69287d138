"""Answer and request ids: the formats promised, and no repeats."""

from __future__ import annotations

import uuid

from ctplhub.services.ids import new_answer_id, new_request_id


def test_answer_ids_are_version_4_uuids_and_differ() -> None:
    ids = [new_answer_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:2_000]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_request_ids_are_sixteen_hex_digits_and_differ() -> None:
    ids = [new_request_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
