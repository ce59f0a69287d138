"""Reconciliation's arithmetic (DESIGN §10), shared by the platform and the client SDK so
that the two can never compute a different digest for the same book.

A book is the set of ``(policy_no, version)`` pairs an insurer holds, one per policy.
Both sides order it by ``policy_no`` as UTF-8 bytes and hash the lines
``policy_no + "\\t" + version + "\\n"``. A policy number carries no control character
(checked by :func:`view_row`), so ``policy_no + "\\t"`` sorts exactly as ``policy_no``
does: the tab is below every character a number may hold, and a number that is a prefix
of another sorts first either way. That lets a whole book be held as one sorted list of
``bytes`` digest lines: ~60 bytes a policy, 60 MB for a million.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ctplhub.domain.errors import ValidationFailed

MAX_POLICY_NO = 40
HEX_DIGEST_LEN = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def digest_line(policy_no: str, version: int) -> bytes:
    """One line of the digest: ``policy_no TAB version LF`` in UTF-8."""
    return f"{policy_no}\t{version}\n".encode()


def split_line(line: bytes) -> tuple[str, int]:
    policy_no, _, version = line.rstrip(b"\n").rpartition(b"\t")
    return policy_no.decode(), int(version)


def book_lines(rows: Iterable[tuple[str, int]]) -> list[bytes]:
    """The digest lines of a book in any order, sorted by ``policy_no`` as UTF-8 bytes."""
    lines = [digest_line(policy_no, version) for policy_no, version in rows]
    lines.sort()
    return lines


@dataclass(frozen=True, slots=True)
class BookDigest:
    count: int
    digest: str  # lowercase hex SHA-256


def digest_of_sorted(lines: Iterable[bytes]) -> BookDigest:
    """The §10 digest of lines already in byte order (e.g. from :func:`book_lines`)."""
    sha = hashlib.sha256()
    count = 0
    for line in lines:
        sha.update(line)
        count += 1
    return BookDigest(count, sha.hexdigest())


def book_digest(rows: Iterable[tuple[str, int]]) -> BookDigest:
    """The §10 digest of ``(policy_no, version)`` pairs given in any order."""
    return digest_of_sorted(book_lines(rows))


@dataclass(frozen=True, slots=True)
class VersionDiffers:
    policy_no: str
    yours: int  # the insurer's
    ours: int  # the platform's


@dataclass(frozen=True, slots=True)
class BookDiff:
    """What differs between an insurer's book and the platform's (§10), each list in byte
    order of ``policy_no``: ``missing_here`` to resend, ``version_differs`` to resend or
    investigate, ``unknown_to_you`` to investigate."""

    missing_here: tuple[str, ...]
    version_differs: tuple[VersionDiffers, ...]
    unknown_to_you: tuple[str, ...]

    @property
    def matches(self) -> bool:
        return not (self.missing_here or self.version_differs or self.unknown_to_you)


class OutOfOrder(RuntimeError):
    """The platform's rows did not come in byte order: a collation bug, never input."""


def diff_books(ours: Iterable[tuple[str, int]], yours: Sequence[bytes]) -> BookDiff:
    """Merge-join the platform's book (pairs in byte order, e.g. streamed from the
    database) with the insurer's (digest lines from :func:`sorted_view`). Keys are
    compared as bytes and versions as their decimal text, so a policy costs no decoding
    unless it differs (a million take about a second)."""
    missing: list[str] = []
    differs: list[VersionDiffers] = []
    unknown: list[str] = []
    theirs = iter(yours)
    line = next(theirs, None)
    their_key, _, their_version = line.rpartition(b"\t") if line is not None else (b"", b"", b"")
    previous: bytes | None = None
    for policy_no, version in ours:
        key = policy_no.encode()
        if previous is not None and key <= previous:
            raise OutOfOrder(f"policy numbers out of byte order near {policy_no!r}")
        previous = key
        while line is not None and their_key < key:
            missing.append(their_key.decode())
            line = next(theirs, None)
            if line is not None:
                their_key, _, their_version = line.rpartition(b"\t")
        if line is not None and their_key == key:
            if their_version != b"%d\n" % version:
                differs.append(VersionDiffers(policy_no, yours=int(their_version), ours=version))
            line = next(theirs, None)
            if line is not None:
                their_key, _, their_version = line.rpartition(b"\t")
        else:
            unknown.append(policy_no)
    while line is not None:
        missing.append(their_key.decode())
        line = next(theirs, None)
        if line is not None:
            their_key = line.rpartition(b"\t")[0]
    return BookDiff(tuple(missing), tuple(differs), tuple(unknown))


def sorted_view(lines: list[bytes]) -> list[bytes]:
    """Sort an insurer's digest lines in place by ``policy_no`` as UTF-8 bytes; a policy
    given twice is refused (the view is one line per policy)."""
    lines.sort()
    previous = None
    for line in lines:
        key = line.rpartition(b"\t")[0]
        if key == previous:
            policy_no = key.decode()
            raise ValidationFailed(
                f"policy_no {policy_no!r} is given more than once; send one line per policy",
                details={"policy_no": policy_no},
            )
        previous = key
    return lines


def view_line(policy_no: object, version: object) -> bytes:
    """One policy of an insurer's view, checked, as its digest line: a number of 1-40
    characters without control characters, a version that is an integer ≥ 1 (a CSV
    export's decimal text too)."""
    if type(policy_no) is not str or not 0 < len(policy_no) <= MAX_POLICY_NO:
        raise ValidationFailed(f"policy_no must be a string of 1-{MAX_POLICY_NO} characters")
    if _CONTROL.search(policy_no):
        raise ValidationFailed("policy_no must not contain control characters (tab, newline)")
    if type(version) is str and version.isdigit():
        version = int(version)
    if type(version) is not int or version < 1:
        raise ValidationFailed("version must be an integer ≥ 1")
    return f"{policy_no}\t{version}\n".encode()


def view_row(value: Any) -> bytes:
    """One line of an insurer's view, ``{"policy_no", "version"}``, as its digest line."""
    if not isinstance(value, dict):
        raise ValidationFailed("each line must be a JSON object {policy_no, version}")
    if len(value) != 2:
        extra = sorted(set(value) - {"policy_no", "version"})
        if extra:
            raise ValidationFailed(f"unknown field(s): {', '.join(extra)}")
    return view_line(value.get("policy_no"), value.get("version"))


def checked_digest(count: Any, digest: Any) -> BookDigest:
    """The body of the digest call, ``{"count", "digest"}``, checked."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValidationFailed("count must be an integer ≥ 0", details={"field": "count"})
    if (
        not isinstance(digest, str)
        or len(digest) != HEX_DIGEST_LEN
        or any(ch not in "0123456789abcdefABCDEF" for ch in digest)
    ):
        raise ValidationFailed(
            "digest must be the 64 hex digits of a SHA-256", details={"field": "digest"}
        )
    return BookDigest(count, digest.lower())
