"""How a bulk verify reads its items: the fast path for a plain plate item gives what the
general parser gives, for every item shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ctplhub.services.verify_bulk import RejectedItem, _parse, _parse_any

NOW = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)

plates = st.sampled_from(["苏E12345", "粤BD12345", "京A0000学", "苏E·12345", " 苏e12345", "X", ""])
values: st.SearchStrategy[Any] = (
    st.none() | plates | st.integers() | st.lists(st.none(), max_size=1)
)
items = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "plate": values,
            "vin": st.none() | st.sampled_from(["LSVAU218XN2183294", "bad"]),
            "at": st.none() | st.sampled_from(["2026-01-01T00:00:00+08:00", "yesterday"]),
        },
    ),
    values,
)


def _shape(parsed: object) -> tuple[Any, ...]:
    if isinstance(parsed, RejectedItem):
        return ("rejected", parsed.key, parsed.given, parsed.at, parsed.error.code)
    return ("item", parsed)


@given(items)
def test_the_fast_path_parses_as_the_general_parser(item: Any) -> None:
    assert _shape(_parse(item, NOW)) == _shape(_parse_any(item, NOW))
