"""The pages' languages (DESIGN §3, pages): Chinese by default, English by choice.

One chooser for every page, owner and staff alike: ``?lang=zh`` or ``?lang=en`` on any
page chooses and is remembered in a cookie; otherwise the cookie; otherwise
``Accept-Language`` (Chinese unless English is preferred over it); otherwise Chinese.

Every word a page shows is in the Babel message catalogues under ``web/locale/``: the
msgids are English (the gettext convention, and what a translator of a third language
would start from); ``zh_CN`` translates them and ``en`` repeats them, so a missing
English string is caught by the same completeness test as a missing Chinese one. The
``.po`` files are compiled here at import with Babel's own API (``read_po`` then
``write_mo`` in memory), so a fresh ``pip install -e .`` runs with no build step and no
``.mo`` file can drift from its ``.po`` (docs/DECISIONS.md, "Page languages").

Each language has its own Jinja2 environment with the ``i18n`` extension and that
language's catalogue installed: rendering never swaps a global translator, so two
requests in two languages cannot interleave wrongly.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from jinja2 import Environment, PackageLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ctplhub.domain.instants import BEIJING
from ctplhub.web.inline_css import SITE_CSS, VERIFY_CSS

LANGS = ("zh", "en")
DEFAULT = "zh"
LANG_COOKIE = "lang"
LOCALES = Path(__file__).parent / "locale"
CATALOGUE_LOCALE = {"zh": "zh_CN", "en": "en"}
HTML_LANG = {"zh": "zh-CN", "en": "en"}


def catalogue_path(lang: str) -> Path:
    return LOCALES / CATALOGUE_LOCALE[lang] / "LC_MESSAGES" / "messages.po"


def load_translations(lang: str) -> gettext.GNUTranslations:
    """The compiled catalogue of ``lang``, built from its ``.po`` in memory."""
    with catalogue_path(lang).open("rb") as source:
        catalogue = read_po(source, locale=CATALOGUE_LOCALE[lang])
    compiled = BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def N_(message: str) -> str:
    """Marks a msgid for extraction (``babel.cfg``) where it is translated later."""
    return message


WHEN = N_("%(year)d-%(month)02d-%(day)02d %(time)s")
"""An instant in Beijing time: ``2026-03-01 00:00``, in Chinese ``2026年3月1日 00:00``."""


def when_filter(translations: gettext.GNUTranslations) -> Callable[[datetime | None], str]:
    pattern = translations.gettext(WHEN)

    def when(value: datetime | None) -> str:
        if value is None:
            return "—"
        at = value.astimezone(BEIJING)
        return pattern % {"year": at.year, "month": at.month, "day": at.day, "time": f"{at:%H:%M}"}

    return when


def _environment(translations: gettext.GNUTranslations) -> Environment:
    env = Environment(
        loader=PackageLoader("ctplhub.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True  # a {% trans %} block's line breaks are layout
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = when_filter(translations)
    env.globals["site_css"] = SITE_CSS  # inlined: the first paint waits for no sheet
    env.globals["verify_css"] = VERIFY_CSS
    return env


TRANSLATIONS = {lang: load_translations(lang) for lang in LANGS}
ENVIRONMENTS = {lang: _environment(TRANSLATIONS[lang]) for lang in LANGS}


@dataclass(frozen=True, slots=True)
class Language:
    """The language a request is answered in, and whether the answer sets the cookie."""

    code: str
    remember: bool

    @property
    def html_lang(self) -> str:
        return HTML_LANG[self.code]


def choose_language(request: Request) -> Language:
    """``?lang=`` first, then the cookie, then ``Accept-Language``, else Chinese."""
    asked = request.query_params.get("lang", "")
    if asked in LANGS:
        return Language(asked, True)
    kept = request.cookies.get(LANG_COOKIE, "")
    if kept in LANGS:
        return Language(kept, False)
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh") or tag == "*":
            return Language("zh", False)
        if tag.startswith("en"):
            return Language("en", False)
    return Language(DEFAULT, False)


def remember(response: HTMLResponse, request: Request, language: Language) -> None:
    """Keep a ``?lang=`` choice for a year: readable by no script, sent on same-site
    navigation only."""
    if language.remember:
        response.set_cookie(
            LANG_COOKIE,
            language.code,
            max_age=365 * 86400,
            samesite="lax",
            secure=request.url.scheme == "https",
            httponly=True,
        )


def render_page(
    request: Request,
    template: str,
    *,
    language: Language | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered in the request's language, the choice remembered.

    Every page gets ``lang`` (``zh`` or ``en``), ``html_lang`` for ``<html lang>`` and
    ``path``, the page's own path, for the language switch link (never a query string:
    nothing personal ever rides along)."""
    chosen = language or choose_language(request)
    html = (
        ENVIRONMENTS[chosen.code]
        .get_template(template)
        .render(lang=chosen.code, html_lang=chosen.html_lang, path=request.url.path, **context)
    )
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    remember(response, request, chosen)
    return response
