"""The /verify page without a browser (DESIGN §3 pages, §6.1): language choice, headers,
its script and stylesheet served by us, and a refused token answered on the page."""

from __future__ import annotations

from starlette.testclient import TestClient


def test_chinese_by_default_english_on_request_and_remembered(client: TestClient) -> None:
    default = client.get("/verify")
    english = client.get("/verify?lang=en")
    remembered = client.get("/verify")  # the client keeps the cookie
    client.cookies.clear()
    by_header = client.get("/verify", headers={"Accept-Language": "en-GB,en;q=0.9"})
    chinese_first = client.get("/verify", headers={"Accept-Language": "zh-CN,en;q=0.5"})

    assert default.status_code == 200
    assert '<html lang="zh-CN">' in default.text and "电子保单凭证核验" in default.text
    assert '<html lang="en">' in english.text and "Check an e-certificate" in english.text
    assert english.cookies.get("lang") == "en"
    assert '<html lang="en">' in remembered.text
    assert '<html lang="en">' in by_header.text
    assert '<html lang="zh-CN">' in chinese_first.text


def test_the_page_runs_only_our_own_script_and_keeps_answers_out_of_caches(
    client: TestClient,
) -> None:
    page = client.get("/verify")
    script = client.get("/static/verify.js")
    style = client.get("/static/verify.css")

    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["cache-control"] == "no-store"
    assert '<script src="/static/verify.js" defer></script>' in page.text
    assert "<script>" not in page.text  # no inline script
    assert "http://" not in page.text and "https://" not in page.text  # nothing elsewhere
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert "BarcodeDetector" in script.text
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")


def test_a_pasted_text_that_is_no_token_is_refused_on_the_page(client: TestClient) -> None:
    answer = client.post("/verify", data={"token": "hello"})

    assert answer.status_code == 400
    assert "这不是电子保单凭证码" in answer.text
    assert "hello" not in answer.text  # what was pasted is not echoed back


def test_a_form_that_is_not_urlencoded_is_refused(client: TestClient) -> None:
    answer = client.post("/verify", content=b"{}", headers={"Content-Type": "application/json"})

    assert answer.status_code == 415
    assert "无法识别提交的内容" in answer.text
