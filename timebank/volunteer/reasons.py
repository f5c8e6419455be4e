"""Why a service record was refused, in words a recorder reads in their language.

The recording service answers each refused row with an English reason for API clients
(``checks.py``, ``recording.py``, ``csv_import.py``); a page shows the sentence below
that matches it, in the page's language, with the reason's own values (a day, a line,
a cell). A reason no pattern knows is shown as the service wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from timebank.web.i18n import N_

FIELDS = {
    "activity": N_("The activity"),
    "place": N_("The place"),
    "beneficiary": N_("Who was served"),
    "content": N_("What was done"),
    "external_ref": N_("The record number"),
    "member_ref": N_("The volunteer number"),
}
MISSING = {
    "activity": N_("The activity is missing."),
    "place": N_("The place is missing."),
    "organisation_id": N_("The organisation is missing."),
    "member_id (or member_ref)": N_("The volunteer is missing: give a member id or a volunteer number."),
}


def _cap(text: str) -> int:
    """Minutes of "12 h" or "7 h 30 min"."""
    hours = re.search(r"(\d+) h", text)
    minutes = re.search(r"(\d+) min", text)
    return (int(hours.group(1)) * 60 if hours else 0) + (int(minutes.group(1)) if minutes else 0)


Words = Callable[[re.Match[str], Callable[[str], str], Any], str | None]

PATTERNS: list[tuple[re.Pattern[str], Words]] = [
    (
        re.compile(r"overlaps another record of this volunteer"),
        lambda m, _, fmt: _("This volunteer already has service recorded at this time."),
    ),
    (
        re.compile(r"more than the daily cap of (.+) on (\d{4}-\d{2}-\d{2})"),
        lambda m, _, fmt: (
            _("This would be more than the daily limit of %(cap)s of service on %(day)s.")
            % {"cap": fmt.hours(_cap(m.group(1))), "day": fmt.date(date.fromisoformat(m.group(2)))}
        ),
    ),
    (
        re.compile(r"the service cannot end in the future"),
        lambda m, _, fmt: _("The service cannot end in the future."),
    ),
    (
        re.compile(r"ended_at must be after started_at"),
        lambda m, _, fmt: _("The end must be after the start."),
    ),
    (
        re.compile(r"shorter than the community's rounding unit \((\d+) min\)"),
        lambda m, _, fmt: (
            _("Shorter than %(n)s minutes, the least the community records.") % {"n": m.group(1)}
        ),
    ),
    (
        re.compile(r"category (['\"])(.*)\1 is not one of the community's categories"),
        lambda m, _, fmt: (
            _("“%(given)s” is not one of the community's service categories.") % {"given": m.group(2)}
        ),
    ),
    (
        re.compile(r"member (.+) is not a member of this community"),
        lambda m, _, fmt: (
            _("No volunteer of the community has the id or number %(given)s.") % {"given": m.group(1)}
        ),
    ),
    (
        re.compile(r"^(.+) is required$"),
        lambda m, _, fmt: _(MISSING[m.group(1)]) if m.group(1) in MISSING else None,
    ),
    (
        re.compile(r"^(\w+) is longer than (\d+) characters$"),
        lambda m, _, fmt: (
            _("%(field)s is longer than %(n)s characters.")
            % {"field": _(FIELDS[m.group(1)]), "n": m.group(2)}
            if m.group(1) in FIELDS
            else None
        ),
    ),
    (
        re.compile(r"^(\w+) contains the control character (U\+[0-9A-F]{4})"),
        lambda m, _, fmt: (
            _("%(field)s contains a character that is not allowed (%(char)s).")
            % {"field": _(FIELDS[m.group(1)]), "char": m.group(2)}
            if m.group(1) in FIELDS
            else None
        ),
    ),
    (
        re.compile(r"external_ref 'csv:[0-9a-f]+' appears twice \(also line (\d+)\)"),
        lambda m, _, fmt: (
            _("The same service appears twice in the file (also on line %(line)s).") % {"line": m.group(1)}
        ),
    ),
    (
        re.compile(r"external_ref (['\"])(.*)\1 appears twice \(also line (\d+)\)"),
        lambda m, _, fmt: (
            _("The record number %(ref)s appears twice in the file (also on line %(line)s).")
            % {"ref": m.group(2), "line": m.group(3)}
        ),
    ),
    (
        re.compile(r"a recorder records for its own organisation only"),
        lambda m, _, fmt: _("You can only record service for your own organisation."),
    ),
    (
        re.compile(r"organisation \S+ is not an organisation of this community"),
        lambda m, _, fmt: _("This organisation is not one of the community's."),
    ),
    (
        re.compile(r"^(\d+) cells, the header has (\d+)$"),
        lambda m, _, fmt: (
            _("This line has %(cells)s cells, but the first line names only %(columns)s columns.")
            % {"cells": m.group(1), "columns": m.group(2)}
        ),
    ),
    (
        re.compile(r"^(['\"])(.*)\1 is not a time"),
        lambda m, _, fmt: (
            _("“%(value)s” is not a time. Write it like 2026-11-02 09:30.") % {"value": m.group(2)}
        ),
    ),
    (
        re.compile(r"^not an id: "),
        lambda m, _, fmt: _("An id in this line is not an id. Copy it again, or use the volunteer number."),
    ),
]


def reason_words(reason: str, gettext: Callable[[str], str], fmt: Any) -> str:
    """The sentence for a service's reason, in the page's language (else the reason itself)."""
    for pattern, words in PATTERNS:
        found = pattern.search(reason)
        if found is not None:
            sentence = words(found, gettext, fmt)
            if sentence is not None:
                return sentence
    return reason
