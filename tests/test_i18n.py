"""Every string a page shows is translated, and none is written into a template by hand.

zh-CN is the default; English is the message ids. ``scripts/i18n.py`` extracts the
strings and updates the zh_CN catalogue; these tests fail when it was not run or a
string was left untranslated, and when a template shows text outside gettext.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from jinja2 import Environment

from timebank.web import i18n, templating

ROOT = Path(__file__).resolve().parent.parent
LETTERS = re.compile(r"[A-Za-z\u3400-\u9fff]")
TEXT_ATTRIBUTES = re.compile(r'\b(aria-label|title|placeholder|alt|label)="([^"]*)"')


def _script():
    spec = importlib.util.spec_from_file_location("i18n_script", ROOT / "scripts" / "i18n.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_string_has_a_chinese_translation_and_none_is_stale() -> None:
    script = _script()
    catalog = script.load()
    catalog.update(script.extract(), no_fuzzy_matching=True)
    assert script.missing(catalog) == [], "run scripts/i18n.py and translate these"
    assert list(catalog.obsolete) == [], "run scripts/i18n.py to drop strings no longer used"


def test_translations_keep_their_placeholders() -> None:
    """A translation that drops or renames %(name)s would fail at render time."""
    catalog = _script().load()
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(re.findall(r"%\(\w+\)s", ids[-1]))
        for s in strings:
            if s:  # (an untranslated one is the other test's finding)
                assert set(re.findall(r"%\(\w+\)s", s)) == wanted, (message.id, s)


def _visible_text(source: str) -> list[tuple[int, str]]:
    """Text between tags that is written in the template, not made by an expression:
    the template with every ``{{ }}``/``{% %}`` replaced by a mark, tags removed."""
    env: Environment = templating.ENVIRONMENT
    pieces = []
    for _line, kind, value in env.lex(source):
        pieces.append(value if kind == "data" else ("\n" if "\n" in value else "\x00"))
    page = "".join(pieces)
    page = re.sub(r"<[^<>]*>", lambda m: "\n" * m.group().count("\n"), page)
    page = re.sub(r'(^|\s)[\w-]+="[^"<>]*"', " ", page)  # attributes given to a tag in another template
    page = re.sub(r"&\w+;", " ", page)
    return [(n, line.strip()) for n, line in enumerate(page.split("\n"), 1) if LETTERS.search(line)]


def test_templates_show_no_text_outside_gettext() -> None:
    offenders = []
    for template in sorted(templating.TEMPLATES.rglob("*.html")):
        source = template.read_text()
        name = template.relative_to(templating.TEMPLATES)
        offenders += [f"{name}:{line}: {text!r}" for line, text in _visible_text(source)]
        for attribute, value in TEXT_ATTRIBUTES.findall(source):
            if "{{" not in value and LETTERS.search(value):
                offenders.append(f"{name}: {attribute}={value!r}")
    assert offenders == []


def test_the_check_finds_hard_coded_text() -> None:
    assert _visible_text('<p class="x">{{ _("ok") }}</p>') == []
    assert _visible_text("<p>提交</p>") and _visible_text("<button>Send</button>")
    assert _visible_text('<a href="{{ x }}">More</a>')


def test_locale_negotiation() -> None:
    assert i18n.negotiate(None, None, None) == "zh_CN"
    assert i18n.negotiate(None, None, "en-US,en;q=0.9") == "en"
    assert i18n.negotiate(None, None, "fr-FR, en;q=0.5, zh;q=0.8") == "zh_CN"
    assert i18n.negotiate(None, "en", "zh-CN") == "en"  # the person's saved choice
    assert i18n.negotiate("zh_CN", "en", "en") == "zh_CN"  # this phone's switch
    assert i18n.negotiate("xx", None, "de, en;q=0") == "zh_CN"
