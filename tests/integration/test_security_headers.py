"""Security headers and CORS (issue 7, item 5): every page has a CSP without inline
script, ``nosniff``, a referrer policy and no framing; API answers are ``nosniff`` and
``no-store`` unless a route made them public; CORS is closed unless origins are listed."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Route
from starlette.testclient import TestClient

from ctplhub.bootstrap import Container, build_app, build_container
from ctplhub.config import Settings
from helpers import VIN, InsurerAccount, bearer_headers, event

TEMPLATES = Path(__file__).parents[2] / "src" / "ctplhub" / "web" / "templates"


def directives(csp: str) -> dict[str, str]:
    parts = (part.strip().split(None, 1) for part in csp.split(";") if part.strip())
    return {part[0]: part[1] if len(part) > 1 else "" for part in parts}


def assert_page_headers(answer: httpx.Response, what: str) -> None:
    headers = answer.headers
    csp = directives(headers["content-security-policy"])
    scripts = csp.get("script-src", csp["default-src"])
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, what
    assert set(scripts.split()) <= {"'self'", "'none'"}, f"{what}: scripts from {scripts}"
    assert "'unsafe-inline'" not in csp.get("style-src", ""), what
    assert csp["frame-ancestors"] == "'none'", what
    assert csp["base-uri"] == "'none'", what
    assert headers["x-content-type-options"] == "nosniff", what
    assert headers["referrer-policy"] in ("no-referrer", "strict-origin"), what
    assert headers["x-frame-options"] == "DENY", what


def test_every_page_carries_the_security_headers(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    pages = [
        route.path
        for route in app.router.routes
        if isinstance(route, Route)
        and not route.include_in_schema
        and "GET" in (route.methods or ())
        and "{" not in route.path
        and route.path != "/openapi.json"
    ]
    html = 0
    for path in pages:
        answer = client.get(path, follow_redirects=False)
        if answer.headers.get("content-type", "").startswith("text/html"):
            assert_page_headers(answer, path)
            html += 1
    assert html >= 1, pages
    answered = client.post("/", data={"plate": "苏E12345", "vin_last6": "000000"})
    assert answered.status_code == 404
    assert_page_headers(answered, "POST /")
    assert answered.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/", "/verify", "/dispute", "/renew"])
def test_an_inlined_style_sheet_is_allowed_by_its_hash_and_nothing_else(
    client: TestClient, path: str
) -> None:
    answer = client.get(path)
    sources = dict(
        part.strip().split(" ", 1) for part in answer.headers["content-security-policy"].split(";")
    )["style-src"].split()
    assert "'unsafe-inline'" not in sources
    sheets = re.findall(r"<style>(.*?)</style>", answer.text, re.S)
    assert sheets, "the page's style sheet is inlined"
    for sheet in sheets:
        digest = base64.b64encode(hashlib.sha256(sheet.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in sources


@pytest.mark.parametrize("template", sorted(TEMPLATES.glob("*.html")), ids=lambda p: p.name)
def test_templates_hold_no_inline_script_or_style(template: Path) -> None:
    """What the CSP would block must not be there in the first place. The one inline
    style is a whole style sheet of ours, whose hash the pages' CSP names
    (``web/inline_css.py``; checked on the served pages below)."""
    text = template.read_text()
    text = re.sub(r"<style>\{\{ (site|verify)_css \}\}</style>", "", text)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text, re.I), "inline <script>"
    assert not re.search(r"<style\b", text, re.I), "inline <style>"
    assert not re.search(r"\sstyle\s*=", text, re.I), "style= attribute"
    assert not re.search(r"\son[a-z]+\s*=", text, re.I), "event handler attribute"
    assert "javascript:" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text, re.I), "other origin"


def test_api_answers_are_nosniff_and_not_stored(
    client: TestClient, picc: InsurerAccount, police_token: str
) -> None:
    picc.api.report_event(event())
    answers = [
        client.post("/v1/coverage/query", json={"plate": "苏E12345", "vin_last6": VIN[-6:]}),
        client.post("/v1/coverage/query", json={"plate": "苏E12345"}),
        client.post("/v1/coverage/query", json={"plate": "X"}),
        client.post(
            "/v1/coverage/verify",
            json={"items": [{"plate": "苏E12345"}]},
            headers=bearer_headers(police_token),
        ),
        client.get("/v1/insurers/PICC/sync"),
        client.get("/no/such/path"),
        client.get("/openapi.json"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 400, 200, 401, 404, 200]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
        assert directives(answer.headers["content-security-policy"])["default-src"] == "'none'"
    # A route that knows its answer is public keeps its own caching.
    jwks = client.get("/.well-known/ctplhub-keys.json")
    assert jwks.headers["cache-control"].startswith("public")
    assert jwks.headers["x-content-type-options"] == "nosniff"


def test_the_docs_page_runs_no_script_and_loads_nothing_from_another_origin(
    client: TestClient,
) -> None:
    """DESIGN §3: no page loads anything from another origin; /docs is one of them."""
    answer = client.get("/docs")
    assert answer.status_code == 200
    assert_page_headers(answer, "/docs")
    assert "<script" not in answer.text and "style=" not in answer.text
    linked = re.findall(r'(?:src|href)="([^"]+)"', answer.text)
    assert linked and all(url.startswith(("/", "#")) for url in linked), linked
    document = client.get("/openapi.json").json()
    for path, item in document["paths"].items():  # every operation is documented there
        for method in item:
            assert f'id="{method}-{path}"' in answer.text
    assert client.get("/redoc").status_code == 404  # one documentation page, no ReDoc


def test_cors_is_closed_by_default(client: TestClient) -> None:
    origin = {"Origin": "https://evil.example"}
    preflight = client.options(
        "/v1/coverage/query",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    query = client.post("/v1/coverage/query", json={"plate": "苏E12345"}, headers=origin)
    for answer in (preflight, query):
        assert not [h for h in answer.headers if h.startswith("access-control-")]


@pytest.fixture
def cors_client(settings: Settings) -> Iterator[TestClient]:
    allowed = settings.model_copy(update={"cors_origins": ("https://portal.example",)})
    container: Container = build_container(allowed)
    with TestClient(build_app(container)) as client:
        yield client
    container.close()


def test_cors_opens_only_to_the_listed_origins_without_credentials(
    cors_client: TestClient,
) -> None:
    def preflight(origin: str) -> httpx.Response:
        return cors_client.options(
            "/v1/coverage/query",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )

    allowed = preflight("https://portal.example")
    assert allowed.status_code == 200
    headers = allowed.headers
    assert headers["access-control-allow-origin"] == "https://portal.example"
    assert "access-control-allow-credentials" not in headers
    assert "access-control-allow-origin" not in preflight("https://evil.example").headers
    answer = cors_client.post(
        "/v1/coverage/query",
        json={"plate": "苏E12345"},
        headers={"Origin": "https://portal.example"},
    )
    assert answer.headers["access-control-allow-origin"] == "https://portal.example"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_cors_origins_come_from_the_environment_and_never_a_wildcard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CTPLHUB_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ("https://a.example", "https://b.example")
    monkeypatch.setenv("CTPLHUB_CORS_ORIGINS", "")
    assert Settings().cors_origins == ()
    monkeypatch.setenv("CTPLHUB_CORS_ORIGINS", "*")
    with pytest.raises(ValueError, match="every site"):
        Settings()
