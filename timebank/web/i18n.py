"""Languages: zh-CN first, English too.

Every string a page shows goes through gettext; message ids are English and the
zh_CN catalogue (``locale/zh_CN/LC_MESSAGES/messages.po``, Babel's format) translates
them. The catalogue is compiled in memory when the service starts, so no compiled
``.mo`` file is kept in git. ``scripts/i18n.py`` extracts the strings and updates it;
a test fails when a string has no translation.

Dates, times and numbers are formatted by Babel in the community's time zone and the
page's locale.
"""

from __future__ import annotations

import gettext as gettext_module
import io
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LOCALES = ("zh_CN", "en")
DEFAULT = "zh_CN"
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}
CATALOGUES = Path(__file__).parent / "locale"
LANG_COOKIE = "tb_lang"
# Each language's name in itself: the switch shows the other one's, so a person who
# cannot read the current language still finds theirs.
AUTONYMS = {"zh_CN": "中文", "en": "English"}


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


@cache
def translations(locale: str) -> gettext_module.NullTranslations:
    if locale == "en":
        return gettext_module.NullTranslations()  # the message ids are English
    po = CATALOGUES / locale / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    mo = io.BytesIO()
    write_mo(mo, catalog, use_fuzzy=False)
    mo.seek(0)
    return Translations(mo)


def negotiate(cookie: str | None, preferred: str | None, accept_language: str | None) -> str:
    """The page's locale: the switch (cookie), the person's saved choice, the browser's
    ``Accept-Language``, else zh-CN."""
    for choice in (cookie, preferred):
        if choice in LOCALES:
            return choice
    for tag in _accepted(accept_language or ""):
        primary = tag.split("-")[0]
        if primary == "zh":
            return "zh_CN"
        if primary == "en":
            return "en"
    return DEFAULT


def _accepted(header: str) -> list[str]:
    """Language tags of an Accept-Language header, best first (q=0 dropped)."""
    ranked = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag.lower()))
    return [t for _, _, t in sorted(ranked)]


class Formats:
    """Numbers, amounts and times for one page: its locale and the community's zone."""

    def __init__(self, locale: str, timezone: str) -> None:
        self.locale = Locale.parse(locale)
        self.zone = ZoneInfo(timezone)
        self.gettext = translations(locale).gettext

    def number(self, value: int | float) -> str:
        return format_decimal(value, locale=self.locale)

    def hours(self, minutes: int) -> str:
        """Minutes as hours, e.g. "2.5 小时" / "2.5 h" (to the minute: 1 h 5 min is 1.08)."""
        amount = format_decimal(minutes / 60, format="#,##0.##", locale=self.locale)
        return self.gettext("%(n)s h") % {"n": amount}

    def points(self, value: int) -> str:
        return self.gettext("%(n)s points") % {"n": self.number(value)}

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self.zone)

    def datetime(self, value: datetime | None) -> str:
        return "" if value is None else format_datetime(value, "medium", tzinfo=self.zone, locale=self.locale)

    def short_datetime(self, value: datetime | None) -> str:
        return "" if value is None else format_datetime(value, "short", tzinfo=self.zone, locale=self.locale)

    def date(self, value: date | datetime | None) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = value.astimezone(self.zone).date()
        return format_date(value, "medium", locale=self.locale)

    def time(self, value: datetime) -> str:
        return format_time(value, "short", tzinfo=self.zone, locale=self.locale)

    def iso_date(self, value: datetime) -> str:
        return value.astimezone(self.zone).date().isoformat()


def gettext_for(locale: str) -> tuple[Callable[[str], str], Callable[[str, str, int], str]]:
    t = translations(locale)
    return t.gettext, t.ngettext
