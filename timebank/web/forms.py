"""Forms posted by pages: their fields as text, checked like every other input.

(The CSRF token every form carries is checked before the handler runs, by Litestar's
CSRF middleware; ``csrf_input`` puts it in the form.)
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from timebank import edge
from timebank.core.problems import BadRequest

MAX_FIELD = 2000


async def read_form(request: Request) -> dict[str, str]:
    """The form's text fields (the last value of a repeated name); control characters
    and overlong values are refused like anywhere else (``edge.check_text``)."""
    form = await request.form()
    values: dict[str, str] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str) or name == "_csrf_token":
            continue
        try:
            edge.check_text(name, "a field name", strict=True)
            edge.check_text(value, f"the field {name}")
        except edge.EdgeRefusal as refusal:
            raise BadRequest(refusal.detail) from None
        if len(value) > MAX_FIELD:
            raise BadRequest(f"the field {name} is longer than {MAX_FIELD} characters")
        values[name] = value.strip()
    return values


def whole_number(values: dict[str, Any], name: str, low: int, high: int) -> int:
    """A whole number in [low, high] from a form field (digits only, spaces forgiven)."""
    raw = str(values.get(name, "")).replace(" ", "").replace(",", "")
    if not raw.isdigit() or len(raw) > 13 or not low <= int(raw) <= high:
        raise BadRequest(f"{name} is a whole number from {low} to {high}")
    return int(raw)
