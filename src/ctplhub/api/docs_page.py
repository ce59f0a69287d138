"""``/docs``: the API's documentation, rendered on the server from ``/openapi.json``.

DESIGN §3 asks for docs at ``/docs`` and says that no page loads anything from another
origin. FastAPI's Swagger UI and ReDoc both load their script and style from a CDN, which
would also leave the docs blank on a government network without Internet access. So the
page is plain HTML made here from the same OpenAPI document the fuzzer and the clients
read: every operation with its summary, description, request bodies, answers and their
schemas, and the schemas themselves. No script at all, the site's own stylesheet; the
page carries the CSP of every other page (``api/headers.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from typing import Any

from fastapi import APIRouter
from starlette.responses import HTMLResponse, Response

_METHODS = ("get", "post", "put", "patch", "delete")


def _schema_text(schema: Any) -> str:
    return escape(json.dumps(schema, ensure_ascii=False, indent=2))


def _ref_name(schema: Any) -> str | None:
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _content(content: dict[str, Any]) -> str:
    parts = []
    for media, body in content.items():
        schema = body.get("schema", {})
        name = _ref_name(schema)
        shown = (
            f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
            if name
            else f"<pre>{_schema_text(schema)}</pre>"
        )
        parts.append(f"<li><code>{escape(media)}</code>: {shown}</li>")
    return f"<ul>{''.join(parts)}</ul>"


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    anchor = escape(f"{method}-{path}")
    out = [
        f'<section class="operation" id="{anchor}">',
        f"<h3><code>{method.upper()} {escape(path)}</code></h3>",
        f"<p><strong>{escape(op.get('summary', ''))}</strong></p>",
    ]
    if op.get("description"):
        out.append(f"<p>{escape(op['description'])}</p>")
    for parameter in op.get("parameters", []):
        out.append(
            f"<p>参数 parameter <code>{escape(parameter.get('name', ''))}</code> "
            f"({escape(parameter.get('in', ''))})</p>"
        )
    body = op.get("requestBody")
    if body:
        out.append("<h4>请求 Request</h4>" + _content(body.get("content", {})))
    out.append("<h4>应答 Answers</h4><ul>")
    for status, answer in op.get("responses", {}).items():
        content = _content(answer["content"]) if answer.get("content") else ""
        out.append(
            f"<li><code>{escape(str(status))}</code> {escape(answer.get('description', ''))}"
            f"{content}</li>"
        )
    out.append("</ul></section>")
    return "\n".join(out)


def render_docs(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    operations = [
        (path, method, op)
        for path, item in document.get("paths", {}).items()
        for method, op in item.items()
        if method in _METHODS
    ]
    index = "".join(
        f'<li><a href="#{escape(f"{m}-{p}")}"><code>{m.upper()} {escape(p)}</code></a> '
        f"{escape(op.get('summary', ''))}</li>"
        for p, m, op in operations
    )
    schemas = "".join(
        f'<section id="schema-{escape(name)}"><h3>{escape(name)}</h3>'
        f"<pre>{_schema_text(schema)}</pre></section>"
        for name, schema in document.get("components", {}).get("schemas", {}).items()
    )
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(info.get('title', ''))} 接口文档 API</title>"
        '<link rel="stylesheet" href="/static/site.css"></head><body><main class="docs">'
        f"<h1>{escape(info.get('title', ''))} 接口文档 API {escape(info.get('version', ''))}"
        "</h1>"
        '<p>机器可读版本 machine-readable: <a href="/openapi.json">/openapi.json</a></p>'
        f'<pre class="description">{escape(info.get("description", ""))}</pre>'
        f"<h2>接口 Operations</h2><ul>{index}</ul>"
        + "".join(_operation(p, m, op) for p, m, op in operations)
        + f"<h2>数据结构 Schemas</h2>{schemas}</main></body></html>"
    )


def docs_router(openapi: Callable[[], dict[str, Any]]) -> APIRouter:
    """``GET /docs``, rendered once from the app's finished OpenAPI document."""
    router = APIRouter(include_in_schema=False)
    page: list[str] = []

    @router.get("/docs", response_class=HTMLResponse)
    async def docs() -> Response:
        if not page:
            page.append(render_docs(openapi()))
        return HTMLResponse(page[0], headers={"Cache-Control": "no-cache"})

    return router
