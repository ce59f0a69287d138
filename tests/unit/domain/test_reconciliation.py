"""The §10 arithmetic (``domain/reconciliation.py``) pinned to a model written from the
design's words: a digest over byte-sorted lines, and a diff that is three set operations."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctplhub.domain.errors import ValidationFailed
from ctplhub.domain.reconciliation import (
    OutOfOrder,
    book_digest,
    checked_digest,
    diff_books,
    sorted_view,
    view_line,
    view_row,
)

# Numbers as §10 allows them (no control characters), ASCII and beyond, short so that
# prefixes and shared stems are common.
numbers = st.text(st.sampled_from('aAbB-_.09保单éΩｚ"\\'), min_size=1, max_size=4)
books = st.dictionaries(numbers, st.integers(1, 4), max_size=30)


def model_digest(book: dict[str, int]) -> str:
    ordered = sorted(book, key=lambda n: n.encode("utf-8"))
    return hashlib.sha256("".join(f"{n}\t{book[n]}\n" for n in ordered).encode()).hexdigest()


def byte_sorted(names: object) -> list[str]:
    return sorted(names, key=lambda n: n.encode("utf-8"))  # type: ignore[call-overload]


@given(books)
def test_digest_is_the_sha256_of_byte_sorted_lines(book: dict[str, int]) -> None:
    shuffled = list(book.items())
    random.Random(1).shuffle(shuffled)

    assert book_digest(shuffled).digest == model_digest(book)
    assert book_digest(shuffled).count == len(book)


@given(books, books)
def test_diff_is_the_set_difference_in_byte_order(
    ours: dict[str, int], yours: dict[str, int]
) -> None:
    platform = [(n, ours[n]) for n in byte_sorted(ours)]
    view = sorted_view([view_line(n, v) for n, v in yours.items()])

    diff = diff_books(platform, view)

    assert list(diff.missing_here) == byte_sorted(yours.keys() - ours.keys())
    assert list(diff.unknown_to_you) == byte_sorted(ours.keys() - yours.keys())
    differing = byte_sorted(n for n in ours.keys() & yours.keys() if ours[n] != yours[n])
    assert [(d.policy_no, d.yours, d.ours) for d in diff.version_differs] == [
        (n, yours[n], ours[n]) for n in differing
    ]
    assert diff.matches == (ours == yours)


def test_platform_rows_out_of_byte_order_are_a_bug_not_a_diff() -> None:
    with pytest.raises(OutOfOrder):
        diff_books([("b", 1), ("B", 1)], [])  # "B" (0x42) sorts before "b" (0x62)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"policy_no": "", "version": 1}, "1-40"),
        ({"policy_no": "x" * 41, "version": 1}, "1-40"),
        ({"policy_no": "a\tb", "version": 1}, "control"),
        ({"policy_no": "a\nb", "version": 1}, "control"),
        ({"policy_no": 7, "version": 1}, "string"),
        ({"policy_no": "a", "version": 0}, "≥ 1"),
        ({"policy_no": "a", "version": True}, "≥ 1"),
        ({"policy_no": "a", "version": 1.0}, "≥ 1"),
        ({"policy_no": "a", "version": 1, "extra": 2}, "unknown field"),
        (["a", 1], "JSON object"),
    ],
)
def test_bad_rows_say_what_is_wrong(row: object, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        view_row(row)


def test_a_csv_version_may_be_decimal_text() -> None:
    assert view_row({"policy_no": "a", "version": "12"}) == b"a\t12\n"


def test_a_policy_given_twice_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="more than once") as caught:
        sorted_view([b"a\t1\n", b"b\t1\n", b"a\t2\n"])
    assert caught.value.details == {"policy_no": "a"}


def test_the_digest_body_is_checked_and_lower_cased() -> None:
    assert checked_digest(3, "AB" * 32).digest == "ab" * 32
    for count, digest in ((-1, "0" * 64), (True, "0" * 64), (1, "0" * 63), (1, "g" * 64)):
        with pytest.raises(ValidationFailed):
            checked_digest(count, digest)
