"""Family pages (亲情账户): a resident's links (make a family code, enter one, end a
link), and per live link: give hours or points to the relative (a confirmation step, a
form keyed once), what each lets the other do, what was done for whom; the relative's
hours and points when they allowed it. The staff confirm links both members agreed to.

Thin: every handler calls ``timebank.families.service`` (what ``/v1/family-links``
calls) with the signed-in person's principal; giving runs under the same idempotency as
the API, keyed by the form (``resident.common.run_once``).
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.types import ControllerRouterHandler

from timebank import web
from timebank.core.access import access
from timebank.core.problems import DomainError
from timebank.core.roles import Role
from timebank.core.terms import Asset
from timebank.families import service
from timebank.ledger import service as ledger
from timebank.resident import common
from timebank.web import forms, messages, templating
from timebank.web.i18n import N_
from timebank.web.templating import render, see_other

RESIDENT = access(Role.RESIDENT)
MAX_NOTE = 200

# What the relative is to the member reading (``relative_is``), in plain words.
RELATIONS = {
    "parent": N_("Parent"),
    "child": N_("Child"),
    "spouse": N_("Husband or wife"),
    "sibling": N_("Brother or sister"),
    "grandparent": N_("Grandparent"),
    "grandchild": N_("Grandchild"),
    "relative": N_("Other relative"),
    "carer": N_("Carer"),
    "cared_for": N_("Person I care for"),
}
# The choices of the offer form: what the relative who will enter the code is to me.
OFFER_RELATIONS = list(service.RELATIONS)
STATUS = {
    "offered": N_("Waiting for your relative to enter the code"),
    "expired": N_("The code has expired"),
    "waiting_for_staff": N_("Waiting for the staff to confirm"),
    "live": N_("Linked"),
    "ended": N_("Ended"),
}
STAFF_STATUS = {
    "waiting_for_staff": N_("Waiting for you to confirm"),
    "live": N_("Linked"),
    "ended": N_("Ended"),
}
# What a member lets the relative do for them, in plain words.
GRANTS = {
    "view": N_("See my hours and points"),
    "redeem": N_("Redeem rewards for me"),
    "give": N_("Give my hours and points for me"),
}
# What was done for someone, as the record says it.
DONE_FOR = {
    "view": N_("%(actor)s looked at the hours and points of %(whom)s"),
    "redeem": N_("%(actor)s redeemed a reward for %(whom)s"),
    "give": N_("%(actor)s gave from the account of %(whom)s"),
}
DONE = {
    "accepted": N_("Thank you. Now the staff will confirm the link; then you can give to each other."),
    "ended": N_("The link has ended. Nothing more can be done under it."),
    "withdrawn": N_("The code was withdrawn. Nobody can use it now."),
    "grants": N_("Saved. Your relative may now do only what is ticked."),
    "confirmed": N_("The link is confirmed. The two relatives may now give to each other."),
}
NO_CODE = N_("Enter the family code your relative gave you: 8 letters and digits.")
NO_RELATION = N_("Choose what your relative is to you.")
BAD_HOURS = N_("Enter the hours as a number from 0.5 to 24, for example 1.5.")
BAD_POINTS = N_("Enter a whole number of points, 1 or more.")
NO_ASSET = N_("Choose hours or points.")
NOTE_TOO_LONG = N_("The note is too long: at most 200 characters.")
STALE_FORM = N_("This form has expired. Please look at it again and confirm.")


def _words(_request: Request) -> dict[str, Any]:
    """The word tables every family page uses (message ids; translated in the templates)."""
    return {"relations": RELATIONS, "statuses": STATUS, "grant_words": GRANTS, "done_for": DONE_FOR}


def _refusal(request: Request, refused: DomainError) -> str:
    return messages.explain(refused, templating.gettext(request))


class GiftForm:
    """The give form's fields, checked; ``error`` says what is wrong, if anything."""

    def __init__(self, values: dict[str, str]) -> None:
        self.asset = values.get("asset", "")
        self.amount = values.get("amount", "")[:20]
        self.note = values.get("note", "")
        self.error: str | None = None
        self.value: int | None = None
        if self.asset == Asset.HOUR.value:
            self.value = common.parse_hours(self.amount)
            if self.value is None:
                self.error = BAD_HOURS
        elif self.asset == Asset.POINT.value:
            self.value = common.parse_points(self.amount, ledger.MAX_AMOUNT)
            if self.value is None:
                self.error = BAD_POINTS
        else:
            self.error = NO_ASSET
        if self.error is None and len(self.note) > MAX_NOTE:
            self.error = NOTE_TOO_LONG

    def again(self) -> dict[str, str]:
        return {"asset": self.asset, "amount": self.amount, "note": self.note}

    def typed(self) -> str:
        """The amount as it goes back into a hidden field."""
        if self.asset == Asset.HOUR.value and self.value is not None:
            return common.hours_text(self.value)
        return str(self.value if self.value is not None else self.amount)


class FamilyPages(Controller):
    path = "/me/family"

    async def _links(self, request: Request, status: int = 200, **extra: Any) -> Response[Any]:
        async with web.engine(request).connect() as conn:
            links = await service.list_links(conn, web.principal(request))
        shown = [v for v in links if v["status"] in ("offered", "waiting_for_staff", "live")]
        context = {"error": None, "code_error": None, "relation": "", "code": "", "done": "", **extra}
        return render(
            request,
            "families/family.html",
            status,
            links=shown,
            offer_relations=OFFER_RELATIONS,
            done_words=DONE,
            **_words(request),
            **context,
        )

    @get("/", opt=RESIDENT)
    async def home(self, request: Request, done: str = "") -> Response[Any]:
        return await self._links(request, done=done if done in DONE else "")

    @post("/code", opt=RESIDENT, status_code=200)
    async def make_code(self, request: Request) -> Response[Any]:
        """A new family code, shown once on this page (never again)."""
        values = await forms.read_form(request)
        relation = values.get("relation", "")
        if relation not in service.RELATIONS:
            return await self._links(request, 400, error=templating.gettext(request)(NO_RELATION))
        try:
            async with web.engine(request).begin() as conn:
                made = await service.offer(conn, web.principal(request), relation)
        except DomainError as refused:
            return await self._links(
                request, refused.status, error=_refusal(request, refused), relation=relation
            )
        return render(request, "families/code.html", link=made, **_words(request))

    @post("/accept", opt=RESIDENT, status_code=303)
    async def accept(self, request: Request) -> Response[Any]:
        values = await forms.read_form(request)
        code = values.get("code", "")[:32]
        if not code:
            return await self._links(request, 400, code_error=templating.gettext(request)(NO_CODE))
        try:
            async with web.engine(request).begin() as conn:
                await service.accept(conn, web.principal(request), code)
        except DomainError as refused:
            return await self._links(
                request, refused.status, code_error=_refusal(request, refused), code=code
            )
        return see_other("/me/family?done=accepted")

    # --- one link ------------------------------------------------------------------------

    async def _link(
        self, request: Request, link_id: uuid.UUID, status: int = 200, **extra: Any
    ) -> Response[Any]:
        principal = web.principal(request)
        async with web.engine(request).connect() as conn:
            link = await service.get_link(conn, principal, link_id)
            record, _ = await service.actions_page(conn, principal, link_id, None, 20)
            balances = await common.balances(conn, request)
        if link["me"] is None or link["status"] != "live":
            return see_other("/me/family")
        context = {"error": None, "asset": "HOUR", "amount": "", "note": "", "done": "", **extra}
        return render(
            request,
            "families/link.html",
            status,
            link=link,
            record=record,
            balances=balances,
            done_words=DONE,
            **_words(request),
            **context,
        )

    @get("/{link_id:uuid}", opt=RESIDENT)
    async def link(self, request: Request, link_id: uuid.UUID, done: str = "") -> Response[Any]:
        return await self._link(request, link_id, done=done if done in DONE else "")

    @post("/{link_id:uuid}/give", opt=RESIDENT, status_code=200)
    async def give_check(self, request: Request, link_id: uuid.UUID) -> Response[Any]:
        """The confirmation: to whom and how much. Nothing moves yet."""
        form = GiftForm(await forms.read_form(request))
        if form.error:
            error = templating.gettext(request)(form.error)
            return await self._link(request, link_id, 400, error=error, **form.again())
        async with web.engine(request).connect() as conn:
            link = await service.get_link(conn, web.principal(request), link_id)
        return render(
            request,
            "families/give_confirm.html",
            link=link,
            asset=form.asset,
            value=form.value,
            amount=form.typed(),
            note=form.note,
            idem=common.new_idem(),
            **_words(request),
        )

    @post("/{link_id:uuid}/give/change", opt=RESIDENT, status_code=200)
    async def give_change(self, request: Request, link_id: uuid.UUID) -> Response[Any]:
        form = GiftForm(await forms.read_form(request))
        return await self._link(request, link_id, **form.again())

    @post("/{link_id:uuid}/give/confirm", opt=RESIDENT, status_code=303)
    async def give(self, request: Request, link_id: uuid.UUID) -> Response[Any]:
        values = await forms.read_form(request)
        form = GiftForm(values)
        idem = common.checked_idem(values)
        if idem is None or form.error or form.value is None:
            error = templating.gettext(request)(form.error or STALE_FORM)
            return await self._link(request, link_id, 400, error=error, **form.again())
        who, asset, amount, memo = web.principal(request), Asset(form.asset), form.value, form.note or None

        async def action(conn: Any, claim: ledger.Claim) -> dict[str, Any]:
            return await service.give(conn, who, link_id, asset, amount, memo, claim)

        async def replayed(conn: Any, _community_id: uuid.UUID, tx_id: uuid.UUID) -> dict[str, Any]:
            return await service.gift_answer(conn, who, link_id, tx_id)

        body = {"link": str(link_id), "asset": asset.value, "amount": amount, "memo": memo}
        status, answer, _again = await common.run_once(request, idem, body, action, replayed)
        if status >= 400:
            return await self._link(
                request, link_id, status, error=common.refusal(request, answer), **form.again()
            )
        return see_other(f"/me/family/{link_id}/gifts/{answer['transaction_id']}")

    @get("/{link_id:uuid}/gifts/{tx_id:uuid}", opt=RESIDENT)
    async def given(self, request: Request, link_id: uuid.UUID, tx_id: uuid.UUID) -> Response[Any]:
        """What was given, to whom, and my balance now."""
        async with web.engine(request).connect() as conn:
            gift = await service.gift_answer(conn, web.principal(request), link_id, tx_id)
            balances = await common.balances(conn, request)
        return render(
            request, "families/given.html", gift=gift, balance=balances[gift["asset"]], link_id=link_id
        )

    @post("/{link_id:uuid}/grants", opt=RESIDENT, status_code=303)
    async def grants(self, request: Request, link_id: uuid.UUID) -> Response[Any]:
        values = await forms.read_form(request)
        wanted = [a for a in service.ACTIONS if values.get(f"grant_{a}") == "1"]
        try:
            async with web.engine(request).begin() as conn:
                await service.set_grants(conn, web.principal(request), link_id, wanted)
        except DomainError as refused:
            if refused.status == 404:
                raise
            return await self._link(request, link_id, refused.status, error=_refusal(request, refused))
        return see_other(f"/me/family/{link_id}?done=grants#grants")

    @get("/{link_id:uuid}/relative", opt=RESIDENT)
    async def relative(self, request: Request, link_id: uuid.UUID) -> Response[Any]:
        """The relative's hours and points, when they allowed it (the look is recorded)."""
        try:
            async with web.engine(request).begin() as conn:
                seen = await service.view_relative(conn, web.principal(request), link_id)
        except service.NotGranted as refused:
            return await self._link(request, link_id, refused.status, error=_refusal(request, refused))
        return render(request, "families/relative.html", seen=seen, link_id=link_id)

    # --- ending ---------------------------------------------------------------------------

    @get("/{link_id:uuid}/end", opt=RESIDENT)
    async def end_check(self, request: Request, link_id: uuid.UUID) -> Response[Any]:
        async with web.engine(request).connect() as conn:
            link = await service.get_link(conn, web.principal(request), link_id)
        if link["status"] == "ended":
            return see_other("/me/family")
        return render(
            request,
            "families/end_confirm.html",
            link=link,
            action=f"/me/family/{link_id}/end",
            back="/me/family",
            **_words(request),
        )

    @post("/{link_id:uuid}/end", opt=RESIDENT, status_code=303)
    async def end(self, request: Request, link_id: uuid.UUID) -> Response[Any]:
        try:
            async with web.engine(request).begin() as conn:
                ended = await service.end(conn, web.principal(request), link_id)
        except DomainError as refused:
            if refused.status == 404:
                raise
            return await self._links(request, refused.status, error=_refusal(request, refused))
        return see_other("/me/family?done=" + ("withdrawn" if ended["b"] is None else "ended"))


class StaffFamilyPages(Controller):
    """The staff: links of their members that both agreed to, to confirm; live ones."""

    path = "/staff/family-links"

    async def _page(self, request: Request, status: int = 200, **extra: Any) -> Response[Any]:
        async with web.engine(request).connect() as conn:
            links = await service.list_links(conn, web.principal(request))
        waiting = [v for v in links if v["status"] == "waiting_for_staff"]
        live = [v for v in links if v["status"] == "live"]
        context = {"error": None, "done": "", **extra}
        return render(
            request,
            "families/staff.html",
            status,
            waiting=waiting,
            live=live,
            done_words=DONE,
            staff_statuses=STAFF_STATUS,
            **_words(request),
            **context,
        )

    @get("/", opt=access(Role.ADMIN, Role.AUDITOR))
    async def list_(self, request: Request, done: str = "") -> Response[Any]:
        return await self._page(request, done=done if done in DONE else "")

    @post("/{link_id:uuid}/confirm", opt=access(Role.ADMIN), status_code=303)
    async def confirm(self, request: Request, link_id: uuid.UUID) -> Response[Any]:
        try:
            async with web.engine(request).begin() as conn:
                await service.confirm(conn, web.principal(request), link_id)
        except DomainError as refused:
            if refused.status == 404:
                raise
            return await self._page(request, refused.status, error=_refusal(request, refused))
        return see_other("/staff/family-links?done=confirmed")

    @get("/{link_id:uuid}/end", opt=access(Role.ADMIN))
    async def end_check(self, request: Request, link_id: uuid.UUID) -> Response[Any]:
        async with web.engine(request).connect() as conn:
            link = await service.get_link(conn, web.principal(request), link_id)
        if link["status"] == "ended":
            return see_other("/staff/family-links")
        return render(
            request,
            "families/end_confirm.html",
            link=link,
            action=f"/staff/family-links/{link_id}/end",
            back="/staff/family-links",
            **_words(request),
        )

    @post("/{link_id:uuid}/end", opt=access(Role.ADMIN), status_code=303)
    async def end(self, request: Request, link_id: uuid.UUID) -> Response[Any]:
        try:
            async with web.engine(request).begin() as conn:
                await service.end(conn, web.principal(request), link_id)
        except DomainError as refused:
            if refused.status == 404:
                raise
            return await self._page(request, refused.status, error=_refusal(request, refused))
        return see_other("/staff/family-links?done=ended")


PAGES: list[ControllerRouterHandler] = [FamilyPages, StaffFamilyPages]
