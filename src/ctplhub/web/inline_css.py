"""The owner pages' style sheets, inlined in each page's ``<style>`` (issue 11: first
render under 1 s on Chromium's "Slow 4G").

On that profile every round trip costs 562.5 ms, and a linked style sheet blocks the
first paint until it arrives: HTML, then CSS, is 1.25 s (docs/PERFORMANCE.md §12). With
the sheet in the page, the first paint needs the HTML alone (~0.65 s). The page grows by
the sheet (9 KB, about 3 KB compressed), far inside the 100 KB budget, and a phone that
reads a page reads nothing else before painting it.

The Content-Security-Policy keeps ``style-src`` strict: no ``'unsafe-inline'``, but the
SHA-256 of each inlined sheet, computed here from the same text the templates insert, so
the two cannot drift. ``/static/*.css`` is still served for the staff pages.
"""

from __future__ import annotations

import base64
import hashlib
from importlib.resources import files

from markupsafe import Markup


def _sheet(name: str) -> Markup:
    text = files("ctplhub.web").joinpath("static", name).read_text(encoding="utf-8")
    if "</style" in text.lower():  # it could end the element early: never ours, refuse
        raise ValueError(f"{name} must not contain </style")
    return Markup(text)  # our own file, inserted as is (no escaping of CSS selectors)


def csp_source(sheet: str) -> str:
    """The CSP source that allows exactly this ``<style>`` content."""
    digest = hashlib.sha256(sheet.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


SITE_CSS = _sheet("site.css")
VERIFY_CSS = _sheet("verify.css")
SITE_STYLE_SRC = f"'self' {csp_source(SITE_CSS)}"
VERIFY_STYLE_SRC = f"{SITE_STYLE_SRC} {csp_source(VERIFY_CSS)}"
