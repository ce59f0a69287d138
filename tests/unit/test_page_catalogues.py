"""The pages' message catalogues (web/locale/, web/i18n.py): every msgid the templates
use is translated in both catalogues with the same placeholders, no catalogue keeps a
msgid nothing uses, and no template shows a Chinese or English word outside the
translation tags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from ctplhub.web.i18n import LANGS, WHEN, catalogue_path, load_translations

ROOT = Path(__file__).parents[2]
WEB = ROOT / "src" / "ctplhub" / "web"
TEMPLATES = WEB / "templates"

# What a template may show untranslated: the product's name, the language switch's
# names of the two languages (each in its own language), marks and units.
ALLOWED_LITERALS = {"CTPL Hub", "English", "中文", "✓", "✗", "·", "%", "/"}


def used_msgids() -> set[str]:
    method_map = [("**.html", "jinja2")]
    options = {"**.html": {"trimmed": "true"}}
    found = {WHEN}
    for extracted in extract_from_dir(str(TEMPLATES), method_map, options):
        message = extracted[2]
        found.add(message if isinstance(message, str) else message[0])
    return found


def catalogue(lang: str) -> dict[str, object]:
    with catalogue_path(lang).open("rb") as source:
        parsed = read_po(source)
    return {
        (m.id if isinstance(m.id, str) else m.id[0]): m.string
        for m in parsed
        if m.id and not m.fuzzy
    }


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)", text))


@pytest.mark.parametrize("lang", LANGS)
def test_every_msgid_is_translated_with_the_same_placeholders(lang: str) -> None:
    held = catalogue(lang)
    used = used_msgids()
    missing = sorted(used - held.keys())
    assert not missing, f"{lang}: no translation for {missing}"
    for msgid in used:
        translated = held[msgid]
        forms = [translated] if isinstance(translated, str) else list(translated)  # type: ignore[call-overload]
        for form in forms:
            assert form, f"{lang}: empty translation of {msgid!r}"
            assert placeholders(form) <= placeholders(msgid) | {"num"}, (lang, msgid, form)
    stale = sorted(held.keys() - used)
    assert not stale, f"{lang}: msgids no template uses: {stale}"


def test_catalogues_compile_and_chinese_is_chinese() -> None:
    zh, en = load_translations("zh"), load_translations("en")
    assert zh.gettext("Renewed") == "已续保" and en.gettext("Renewed") == "Renewed"
    assert zh.ngettext("%(num)d day", "%(num)d days", 3) == "%(num)d 天"
    assert en.ngettext("%(num)d day", "%(num)d days", 1) == "%(num)d day"


def visible_literals(template: str) -> list[str]:
    """The text a template shows that is not inside ``{% trans %}``, ``_()`` or an
    expression: what would reach a reader untranslated."""
    text = re.sub(r"\{#.*?#\}", " ", template, flags=re.S)
    text = re.sub(r"\{%-?\s*trans\b.*?\{%-?\s*endtrans\s*-?%\}", " ", text, flags=re.S)
    text = re.sub(r"\{\{.*?\}\}", " ", text, flags=re.S)
    text = re.sub(r"\{%.*?%\}", " ", text, flags=re.S)
    shown_attributes = re.findall(
        r'\s(?:placeholder|aria-label|title|alt)="([^"]*)"', text, flags=re.I
    )
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
    text = re.sub(r"<[^>]*>", " ", text, flags=re.S)
    text = re.sub(r"&[a-z]+;|&#\d+;", " ", text)
    pieces = [p.strip(" ·") for p in re.split(r"\s{2,}|\n", text)] + shown_attributes
    return [p for p in pieces if p and p not in ALLOWED_LITERALS]


@pytest.mark.parametrize("template", sorted(TEMPLATES.glob("*.html")), ids=lambda p: p.name)
def test_templates_show_no_words_outside_the_catalogues(template: Path) -> None:
    words = [
        piece
        for piece in visible_literals(template.read_text())
        if re.search(r"[\u4e00-\u9fff]|[A-Za-z]{2,}", piece)
    ]
    assert not words, f"{template.name}: untranslated {words}"
