"""Reconciliation over real HTTP with real signatures (DESIGN §10, §5.1), both engines.

The expected digest is computed here straight from §10's words (sort by ``policy_no`` as
UTF-8 bytes, hash ``policy_no TAB version LF`` lines), not with the code under test.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert

from ctplhub.bootstrap import Container
from ctplhub.client import CtplHubError
from ctplhub.store.tables import policies
from helpers import VIN, InsurerAccount, event

# Byte order differs from a linguistic collation here: case, punctuation, digits.
ASCII_NUMBERS = ["b-2", "B_1", "a.3", "A10", "A9", "ab", "aB", "a-b", "Z", "_1"]
# Only a direct write can hold these (§2.4 numbers are printable ASCII); the platform's
# order must still be byte order whatever a future rule allows.
WIDE_NUMBERS = ["保单2", "保单10", "éclair", "Ω-1", "z", "ｚ"]


def design_digest(rows: Iterable[tuple[str, int]]) -> tuple[int, str]:
    ordered = sorted(rows, key=lambda row: row[0].encode("utf-8"))
    text = "".join(f"{policy_no}\t{version}\n" for policy_no, version in ordered)
    return len(ordered), hashlib.sha256(text.encode("utf-8")).hexdigest()


def report(account: InsurerAccount, numbers: Iterable[str], version: int = 1) -> None:
    lines = [event(insurer_code=account.code, policy_no=n) for n in numbers]
    if version > 1:
        lines = [
            event(insurer_code=account.code, policy_no=n, event_type="endorse", version=version)
            for n in numbers
        ]
    answer = account.api.report_batch(lines)
    assert answer["rejected"] == 0, answer


def put_heads(container: Container, code: str, rows: Iterable[tuple[str, int]]) -> None:
    at = datetime(2025, 3, 1, tzinfo=UTC)
    with container.engine.begin() as conn:
        conn.execute(
            insert(policies),
            [
                {
                    "insurer_code": code,
                    "policy_no": policy_no,
                    "version": version,
                    "event_type": "issue",
                    "vin": VIN,
                    "coverage_start": at,
                    "coverage_end": at.replace(year=2026),
                    "effective_at": None,
                    "event_id": 0,
                }
                for policy_no, version in rows
            ],
        )


def ask_digest(account: InsurerAccount, count: int, digest: str, code: str = "") -> Any:
    path = f"/v1/insurers/{code or account.code}/reconcile"
    return account.api.request("POST", path, json={"count": count, "digest": digest})


def ask_diff(account: InsurerAccount, body: bytes, code: str = "", kind: str = "") -> Any:
    return account.api.request(
        "POST",
        f"/v1/insurers/{code or account.code}/reconcile/diff",
        content=body,
        content_type=kind or "application/x-ndjson",
    )


def ndjson(rows: Iterable[tuple[str, int]]) -> bytes:
    return b"".join(
        json.dumps({"policy_no": p, "version": v}, ensure_ascii=False).encode() + b"\n"
        for p, v in rows
    )


def test_digest_is_the_one_design_defines(picc: InsurerAccount) -> None:
    report(picc, ASCII_NUMBERS)
    report(picc, ["A9", "ab"], version=2)
    book = [(n, 2 if n in ("A9", "ab") else 1) for n in ASCII_NUMBERS]
    count, digest = design_digest(book)

    same = ask_digest(picc, count, digest)
    other = ask_digest(picc, count, hashlib.sha256(b"not it").hexdigest())

    assert same.status_code == 200, same.text
    assert same.json() == {"match": True, "platform_count": count, "platform_digest": digest}
    assert other.json() == {"match": False, "platform_count": count, "platform_digest": digest}


def test_an_empty_book_has_the_digest_of_nothing(picc: InsurerAccount) -> None:
    empty = hashlib.sha256(b"").hexdigest()

    answer = ask_digest(picc, 0, empty.upper())

    assert answer.json() == {"match": True, "platform_count": 0, "platform_digest": empty}


def test_platform_order_is_utf8_byte_order_with_non_ascii_numbers(
    picc: InsurerAccount, container: Container
) -> None:
    book = [(n, i + 1) for i, n in enumerate(ASCII_NUMBERS + WIDE_NUMBERS)]
    put_heads(container, "PICC", book)
    count, digest = design_digest(book)

    assert ask_digest(picc, count, digest).json()["match"] is True

    # The insurer's view, shuffled: one missing here, one differing, one unknown to it.
    view = [row for row in book if row[0] != "保单10"] + [("保单1", 1), ("Ω-0", 2)]
    view = [(p, 9) if p == "ｚ" else (p, v) for p, v in view]
    random.Random(7).shuffle(view)
    answer = ask_diff(picc, ndjson(view))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "missing_here": sorted(["保单1", "Ω-0"], key=str.encode),
        "version_differs": [{"policy_no": "ｚ", "yours": 9, "ours": book[-1][1]}],
        "unknown_to_you": ["保单10"],
    }


def test_diff_lists_what_to_resend_and_investigate_in_byte_order(picc: InsurerAccount) -> None:
    report(picc, ["P-3", "P-1", "p-2", "P-4", "P-5"])
    report(picc, ["P-4"], version=2)
    view = [("P-1", 1), ("P-4", 1), ("P-5", 3), ("P-9", 1), ("P-0", 2), ("p-2", 1)]

    answer = ask_diff(picc, ndjson(view))

    assert answer.json() == {
        "missing_here": ["P-0", "P-9"],
        "version_differs": [
            {"policy_no": "P-4", "yours": 1, "ours": 2},
            {"policy_no": "P-5", "yours": 3, "ours": 1},
        ],
        "unknown_to_you": ["P-3"],
    }


def test_a_matching_view_has_an_empty_diff_and_csv_is_accepted(picc: InsurerAccount) -> None:
    report(picc, ["C-1", "C-2"])

    as_ndjson = ask_diff(picc, ndjson([("C-2", 1), ("C-1", 1)]) + b"\n")
    as_csv = ask_diff(picc, b"policy_no,version\nC-1,1\nC-2,1\n", kind="text/csv")

    empty = {"missing_here": [], "version_differs": [], "unknown_to_you": []}
    assert as_ndjson.json() == empty
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.json() == empty


@pytest.mark.parametrize(
    ("third_line", "code"),
    [
        pytest.param(b"{not json", "malformed_json", id="not-json"),
        pytest.param(b'{"policy_no": "X-3", "version": 0}', "validation_failed", id="version-0"),
        pytest.param(b'{"policy_no": "X-3", "version": true}', "validation_failed", id="bool"),
        pytest.param(b'{"policy_no": "", "version": 1}', "validation_failed", id="empty-no"),
        pytest.param(b'{"policy_no": "X\\t3", "version": 1}', "validation_failed", id="tab"),
        pytest.param(b'{"policy_no": "X-3"}', "validation_failed", id="no-version"),
        pytest.param(b'["X-3", 1]', "validation_failed", id="not-an-object"),
    ],
)
def test_a_bad_line_refuses_the_whole_diff_naming_the_line(
    picc: InsurerAccount, third_line: bytes, code: str
) -> None:
    body = ndjson([("X-1", 1), ("X-2", 1)]) + third_line + b"\n" + ndjson([("X-4", 1)])

    answer = ask_diff(picc, body)

    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["details"]["line"]) == (code, 3)
    assert error["message"].startswith("line 3: ")


def test_a_policy_given_twice_refuses_the_diff(picc: InsurerAccount) -> None:
    answer = ask_diff(picc, ndjson([("D-1", 1), ("D-2", 1), ("D-1", 2)]))

    assert answer.status_code == 400
    assert answer.json()["error"]["details"] == {"policy_no": "D-1"}


def test_a_bad_digest_body_is_400(picc: InsurerAccount) -> None:
    for body in ({"count": -1, "digest": "0" * 64}, {"count": 1, "digest": "xyz"}, {}):
        answer = picc.api.request("POST", "/v1/insurers/PICC/reconcile", json=body)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "validation_failed"


def test_another_insurers_book_is_403(
    make_insurer: Callable[[str], InsurerAccount], picc: InsurerAccount
) -> None:
    pingan = make_insurer("PINGAN")
    report(picc, ["SECRET-1"])

    digest = ask_digest(pingan, 0, "0" * 64, code="PICC")
    diff = ask_diff(pingan, ndjson([("SECRET-1", 1)]), code="PICC")

    for answer in (digest, diff):
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "insurer_mismatch"


def test_unsigned_calls_are_401(picc: InsurerAccount, client: Any) -> None:
    answer = client.post("/v1/insurers/PICC/reconcile", json={"count": 0, "digest": "0" * 64})

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "missing_signature"


def test_client_reconcile_diffs_only_on_a_mismatch(picc: InsurerAccount) -> None:
    report(picc, ["K-1", "K-2", "K-3"])
    report(picc, ["K-3"], version=2)
    sent: list[str] = []
    request = picc.api.request

    def spy(method: str, path: str, **kwargs: Any) -> Any:
        sent.append(path)
        return request(method, path, **kwargs)

    picc.api.request = spy  # type: ignore[method-assign]

    same = picc.api.reconcile("PICC", [("K-3", 2), {"policy_no": "K-1", "version": 1}, ("K-2", 1)])
    assert same.match is True
    assert sent == ["/v1/insurers/PICC/reconcile"]

    sent.clear()
    differs = picc.api.reconcile("PICC", [("K-1", 1), ("K-3", 3), ("K-0", 1)])
    assert differs.match is False
    assert sent == ["/v1/insurers/PICC/reconcile", "/v1/insurers/PICC/reconcile/diff"]
    assert differs.missing_here == ("K-0",)
    assert [(d.policy_no, d.yours, d.ours) for d in differs.version_differs] == [("K-3", 3, 2)]
    assert differs.unknown_to_you == ("K-2",)
    assert differs.to_resend == ("K-0", "K-3")
    assert (differs.platform.count, differs.yours.count) == (3, 3)


def test_client_refuses_a_bad_row_before_sending(picc: InsurerAccount) -> None:
    with pytest.raises(ValueError, match="version"):
        picc.api.reconcile("PICC", [("K-1", 0)])
    with pytest.raises(ValueError, match="more than once"):
        picc.api.reconcile("PICC", [("K-1", 1), ("K-1", 2)])


def test_client_reconcile_of_another_insurer_raises_403(
    make_insurer: Callable[[str], InsurerAccount], picc: InsurerAccount
) -> None:
    pingan = make_insurer("PINGAN")

    with pytest.raises(CtplHubError) as caught:
        pingan.api.reconcile("PICC", [("K-1", 1)])

    assert (caught.value.status, caught.value.code) == (403, "insurer_mismatch")


def test_client_escapes_quotes_and_backslashes_in_the_diff_body(picc: InsurerAccount) -> None:
    odd = ['Q"1\\x', "Q\\2", 'Q"3']
    report(picc, odd[:2])

    result = picc.api.reconcile("PICC", [(odd[1], 1), (odd[2], 1)])

    assert result.missing_here == (odd[2],)
    assert result.unknown_to_you == (odd[0],)
