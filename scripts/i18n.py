#!/usr/bin/env python3
"""Keep the pages' zh_CN catalogue in step with the code (Babel, no .mo in git).

    .venv/bin/python scripts/i18n.py          # extract every string, update messages.po
    .venv/bin/python scripts/i18n.py --check  # exit 1 if a string has no translation
    .venv/bin/python scripts/i18n.py --merge FILE.json  # {"English id": "中文", ...} into the catalogue

Strings come from templates (``{% trans %}``, ``_()``) and Python (``_()``,
``gettext()``, ``ngettext()``, and ``N_()`` for strings translated where shown).
New strings arrive untranslated; strings no longer used are dropped.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "timebank"
PO = SOURCE / "web" / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
METHODS = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS = {
    "**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def extract() -> Catalog:
    template = Catalog(project="timebank", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        SOURCE, METHODS, OPTIONS, KEYWORDS, comment_tags=("Translators:",), strip_comment_tags=True
    ):
        template.add(
            message,
            None,
            [(str(Path("timebank") / filename), lineno)],
            auto_comments=comments,
            context=context,
        )
    return template


def load() -> Catalog:
    if not PO.exists():
        return Catalog(locale="zh_CN", project="timebank", fuzzy=False)
    with PO.open("rb") as f:
        return read_po(f, locale="zh_CN")


def missing(catalog: Catalog) -> list[str]:
    gaps = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            gaps.append(message.id if isinstance(message.id, str) else message.id[0])
    return gaps


def main() -> int:
    template = extract()
    catalog = load()
    if "--check" in sys.argv:
        catalog.update(template, no_fuzzy_matching=True)
        gaps = missing(catalog)
        stale = [m.id for m in catalog.obsolete.values()]
        for gap in gaps:
            print(f"untranslated: {gap!r}")
        for old in stale:
            print(f"no longer used: {old!r}")
        return 1 if gaps or stale else 0
    catalog.update(template, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    if "--merge" in sys.argv:
        import json

        given = json.loads(Path(sys.argv[sys.argv.index("--merge") + 1]).read_text())
        for message in catalog:
            if message.id and not isinstance(message.id, tuple) and message.id in given:
                message.string = given[message.id]
                message.flags.discard("fuzzy")
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as f:
        write_po(f, catalog, width=0, omit_header=False, sort_output=False, include_previous=False)
    print(f"{PO.relative_to(ROOT)}: {len(catalog)} strings, {len(missing(catalog))} untranslated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
