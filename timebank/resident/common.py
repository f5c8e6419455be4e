"""What the resident's pages share: who the member is, their balances (as the API
computes them), the words for codes, and running a step that moves value once.

Nothing here decides a rule of the bank: each function calls the service the API's
route calls, with the signed-in person's principal.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank import web
from timebank.community import service as community
from timebank.core.problems import PROBLEM_BASE, NotFound
from timebank.core.roles import PartyKind
from timebank.ledger import service as ledger
from timebank.ledger.idempotency import Render, request_hash, run_idempotent
from timebank.web import messages, templating
from timebank.web.i18n import N_

PAGE_SIZE = 25
MAX_HOURS = 24
MIN_HOURS = Decimal("0.5")


VOUCHER_STATUS = {
    "held": N_("Ready to use"),
    "confirmed": N_("Used"),
    "cancelled": N_("Cancelled"),
    "expired": N_("Expired"),
}

LIMIT_PERIOD = {
    "day": N_("At most %(n)s a day"),
    "week": N_("At most %(n)s a week"),
    "month": N_("At most %(n)s a month"),
    "quarter": N_("At most %(n)s a quarter"),
    "year": N_("At most %(n)s a year"),
}


def member_id(request: Request) -> uuid.UUID:
    """The signed-in resident's member (party) id."""
    who = request.scope["auth"]
    if who.subject_id is None:  # a resident's person always names a member; never guess one
        raise NotFound("this person has no member")
    return who.subject_id


def when(text: str | None) -> datetime | None:
    """A view's RFC 3339 time as a datetime (for ``fmt``)."""
    return None if text is None else datetime.fromisoformat(text)


async def balances(conn: AsyncConnection, request: Request) -> dict[str, dict[str, Any]]:
    """The member's balances per asset, exactly as ``GET /v1/members/{id}/balances``
    answers them (the same service and view)."""
    _, accounts = await community.get_party(
        conn, web.principal(request), PartyKind.MEMBER, member_id(request)
    )
    return {asset: {"account_id": acc.id, **ledger.balance_view(acc)} for asset, acc in accounts.items()}


def new_idem() -> str:
    """The idempotency key a value-moving form carries (made when the form is shown)."""
    return str(uuid.uuid4())


def checked_idem(values: dict[str, str]) -> str | None:
    """The form's key, if it is one this service made (a UUID); else None."""
    try:
        return str(uuid.UUID(values.get("idem", "")))
    except ValueError:
        return None


Step = Callable[[Any, ledger.Claim], Awaitable[dict[str, Any]]]


async def run_once(
    request: Request, idem: str, body: dict[str, Any], action: Step, render: Render | None = None
) -> tuple[int, dict[str, Any], bool]:
    """Run ``action`` (a service call that moves value) at most once for this form: the
    same idempotency machinery as the API, keyed by the person and the form's key, so a
    double tap or a resend answers the first answer. (status, body, replayed); a
    refusal comes back as its problem body with its status."""
    who = request.scope["auth"]
    principal = web.principal(request)
    key = f"page:{who.person_id}:{idem}"
    fingerprint = request_hash(principal, "POST", request.url.path, body)
    extra: dict[str, Any] = {} if render is None else {"render": render}
    return await run_idempotent(
        web.engine(request), principal, key, fingerprint, action, instance=request.url.path, **extra
    )


def refusal(request: Request, problem: dict[str, Any]) -> str:
    """A refusal's sentence in the page's language (from its problem body)."""
    _ = templating.gettext(request)
    slug = str(problem.get("type", "")).removeprefix(PROBLEM_BASE)
    if slug == "reward-unavailable" and problem.get("reason"):
        return messages.eligibility([str(problem["reason"])], _)[0]
    return messages.explain(slug, _)


def parse_hours(text: str) -> int | None:
    """Hours as typed (``1.5``, ``1,5``, ``２``) → whole minutes, from half an hour to
    ``MAX_HOURS``; None if it is not such a number."""
    raw = text.strip().replace(",", ".").replace(" ", "")
    raw = raw.translate(str.maketrans("０１２３４５６７８９．", "0123456789."))
    if not raw or len(raw) > 8:
        return None
    try:
        hours = Decimal(raw)
    except InvalidOperation:
        return None
    if not hours.is_finite() or not MIN_HOURS <= hours <= MAX_HOURS:
        return None
    minutes = hours * 60
    if minutes != minutes.to_integral_value():
        return None
    return int(minutes)


def parse_points(text: str, high: int) -> int | None:
    raw = text.strip().replace(" ", "").replace(",", "")
    raw = raw.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if not raw.isdigit() or len(raw) > 12 or not 1 <= int(raw) <= high:
        return None
    return int(raw)


def hours_text(minutes: int) -> str:
    """Minutes as the hours a person typed (90 → "1.5"), for a form field."""
    return format(Decimal(minutes) / 60, "f").rstrip("0").rstrip(".") if minutes % 60 else str(minutes // 60)
