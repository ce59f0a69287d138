"""The owner's dispute pages (issue 11 item 1, DESIGN §10) through the real app on both
engines: filing from the page reaches the insurer's signed queue, the follow-up code is
shown once and never travels in a URL, the status page follows the insurer's answer,
a wrong code reads like an unknown number, and both steps are in the owner's list of
reads."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container, build_app
from helpers import VIN, InsurerAccount, event

FORM = {
    "plate": "苏E12345",
    "vin_last6": VIN[-6:],
    "kind": "renewal_missing",
    "message": "我在11月20日已经在人保续保，保单号 PDAA2027X，但查询显示脱保。",
}


@pytest.fixture
def web(container: Container) -> Iterator[TestClient]:
    with TestClient(build_app(container), base_url="https://testserver") as client:
        yield client


@pytest.fixture
def insured(picc: InsurerAccount) -> InsurerAccount:
    picc.api.report_event(event())
    return picc


def filed(page: str) -> tuple[str, str]:
    number = re.search(r'id="dispute-number">(\d+)<', page)
    token = re.search(r'id="dispute-token" type="text" readonly value="([^"]+)"', page)
    assert number and token, page
    return number.group(1), token.group(1)


def test_an_owner_files_from_the_page_and_follows_the_insurers_answer(
    web: TestClient, insured: InsurerAccount
) -> None:
    page = web.post("/dispute", data=FORM)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "异议已提交" in page.text and "PICC" in page.text
    number, token = filed(page.text)
    assert token not in str(page.url) and VIN[-6:] not in str(page.url)

    (queued,) = insured.api.request("GET", "/v1/insurers/PICC/disputes").json()["disputes"]
    assert (str(queued["dispute_id"]), queued["kind"], queued["message"]) == (
        number,
        "renewal_missing",
        FORM["message"],
    )

    status = web.post("/dispute/status", data={"dispute_id": number, "token": token})
    assert status.status_code == 200
    assert 'data-status="open"' in status.text and "保险公司处理中" in status.text

    answer = insured.api.request(
        "POST", f"/v1/disputes/{number}/resolve", json={"outcome": "corrected", "note": "已补报"}
    )
    assert answer.status_code == 200, answer.text
    status = web.post("/dispute/status?lang=en", data={"dispute_id": number, "token": token})
    assert 'id="dispute" data-status="resolved"' in status.text
    assert "Answered by the insurer" in status.text and "corrected: 已补报" in status.text

    reads = web.post("/who-read", data={"plate": FORM["plate"], "vin_last6": FORM["vin_last6"]})
    purposes = re.findall(r'data-purpose="([a-z_]+)"', reads.text)
    assert {"dispute", "dispute_status", "dispute_queue", "dispute_resolution"} <= set(purposes)


def test_a_wrong_code_or_number_reads_the_same(web: TestClient, insured: InsurerAccount) -> None:
    number, token = filed(web.post("/dispute", data=FORM).text)
    answers = [
        web.post("/dispute/status", data={"dispute_id": number, "token": token + "x"}),
        web.post("/dispute/status", data={"dispute_id": str(int(number) + 1), "token": token}),
        web.post("/dispute/status", data={"dispute_id": "abc", "token": token}),
    ]
    assert {a.status_code for a in answers} == {404}
    assert all("没有与该编号和查询码相符的异议" in a.text for a in answers)
    assert all('id="dispute"' not in a.text for a in answers)


def test_the_form_explains_what_is_missing_and_keeps_what_was_typed(
    web: TestClient, insured: InsurerAccount
) -> None:
    empty = web.post("/dispute", data={**FORM, "message": "  "})
    assert (
        empty.status_code == 400 and "请填写车牌号、车架号后六位、问题类型和情况说明" in empty.text
    )
    wrong_kind = web.post("/dispute", data={**FORM, "kind": "revenge"})
    assert wrong_kind.status_code == 400 and FORM["message"] in wrong_kind.text
    wrong_tail = web.post("/dispute", data={**FORM, "vin_last6": "000000"})
    assert wrong_tail.status_code == 404  # like an unknown plate, as everywhere (§3)
    assert insured.api.request("GET", "/v1/insurers/PICC/disputes").json()["disputes"] == []
