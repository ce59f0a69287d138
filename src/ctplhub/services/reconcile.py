"""Reconciliation (DESIGN §10): an insurer checks that the platform holds its whole book,
first cheaply by digest, then, on a mismatch, line by line.

The platform's side is streamed from the policy heads in byte order of ``policy_no``
(``PolicyBook``), never held as objects; the insurer's view is read line by line and kept
as one sorted list of digest lines (``domain/reconciliation.py``), then merge-joined.
A bad line refuses the whole diff (``400`` naming the line): a diff computed without some
of the insurer's lines would report those policies as ``unknown_to_you`` and mislead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from ctplhub.domain.errors import DomainError, InsurerMismatch, ValidationFailed
from ctplhub.domain.policy import normalise_insurer_code
from ctplhub.domain.reconciliation import (
    BookDiff,
    BookDigest,
    diff_books,
    digest_line,
    digest_of_sorted,
    sorted_view,
    view_row,
)
from ctplhub.services.report_events import RawLine


class PolicyBook(Protocol):
    def versions(self, insurer_code: str) -> Iterator[tuple[str, int]]:
        """Each policy of the insurer with the version that rules it, in byte order of
        ``policy_no``, streamed (the connection closes when the iterator ends)."""
        ...


@dataclass(frozen=True, slots=True)
class DigestComparison:
    match: bool
    platform: BookDigest


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    insurer_code: str
    insurer: BookDigest  # of the export given
    platform: BookDigest
    diff: BookDiff

    @property
    def match(self) -> bool:
        return self.insurer == self.platform


class Reconcile:
    def __init__(self, book: PolicyBook) -> None:
        self._book = book

    def platform_digest(self, insurer_code: str) -> BookDigest:
        return digest_of_sorted(digest_line(p, v) for p, v in self._book.versions(insurer_code))

    def compare_digest(self, code: str, *, caller: str, given: BookDigest) -> DigestComparison:
        code = _own(code, caller)
        platform = self.platform_digest(code)
        return DigestComparison(platform == given, platform)

    def diff(self, code: str, *, caller: str, lines: Iterable[RawLine]) -> BookDiff:
        code = _own(code, caller)
        return diff_books(self._book.versions(code), insurer_view(lines))

    def operator_report(self, code: str, lines: Iterable[RawLine]) -> ReconcileReport:
        """``ctplhub reconcile``: both digests and the diff, for an operator holding an
        insurer's export (no signature: the operator runs on the platform's side)."""
        code = normalise_insurer_code(code)
        view = insurer_view(lines)
        sha, count = hashlib.sha256(), 0

        def hashed(rows: Iterator[tuple[str, int]]) -> Iterator[tuple[str, int]]:
            nonlocal count
            for policy_no, version in rows:  # one pass over the platform's book for both
                sha.update(digest_line(policy_no, version))
                count += 1
                yield policy_no, version

        diff = diff_books(hashed(self._book.versions(code)), view)
        ours = BookDigest(count, sha.hexdigest())
        return ReconcileReport(code, digest_of_sorted(view), ours, diff)


def insurer_view(lines: Iterable[RawLine]) -> list[bytes]:
    """The insurer's view as sorted digest lines; the first bad line, or a policy given
    twice, refuses the whole view."""
    view: list[bytes] = []
    for number, value in lines:
        if isinstance(value, DomainError):
            raise type(value)(
                f"line {number}: {value.message}",
                details={"line": number},
                code=value.code,
            )
        try:
            view.append(view_row(value))
        except ValidationFailed as problem:
            raise ValidationFailed(
                f"line {number}: {problem.message}", details={"line": number}
            ) from None
    return sorted_view(view)


def _own(code: str, caller: str) -> str:
    try:
        code = normalise_insurer_code(code)
    except ValidationFailed:
        raise InsurerMismatch(f"this key belongs to insurer {caller}") from None
    if code != caller:
        raise InsurerMismatch(f"this key belongs to insurer {caller}")
    return code
