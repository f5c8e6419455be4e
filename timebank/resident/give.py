"""Giving: hours to a neighbour (邻里互助) and points to the community fund.

Each is three steps: a form, a confirmation page (the neighbour's masked name and the
amount; nothing moved yet), and the confirmed POST, which moves value through the
same service as ``POST /v1/transfers`` (``ledger.transfer``, kind ``transfer`` or
``donation``) under the ledger's idempotency, keyed by the form (so a double tap or a
resend moves nothing twice). Then a page with what moved, the new balance and the
receipt.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post

from timebank import web
from timebank.community import service as community
from timebank.core.access import access
from timebank.core.roles import Role
from timebank.core.terms import Asset, Kind
from timebank.ledger import service as ledger
from timebank.people import accounts as people
from timebank.resident import common
from timebank.resident.common import when
from timebank.web import forms, templating
from timebank.web.i18n import N_
from timebank.web.privacy import mask_name
from timebank.web.templating import render, see_other

RESIDENT = access(Role.RESIDENT)
MAX_NOTE = 200  # well under the ledger's memo limit

NO_PHONE = N_("Enter your neighbour's phone number.")
UNKNOWN_PHONE = N_(
    "No resident of this community has that phone number. Check the number with your neighbour. Nothing was given."
)
TOO_MANY_TRIES = N_("Too many numbers that lead to nobody. Please try again in an hour, or ask the staff.")
OWN_PHONE = N_("This is your own phone number. Enter your neighbour's number.")
BAD_HOURS = N_("Enter the hours as a number from 0.5 to 24, for example 1.5.")
BAD_POINTS = N_("Enter a whole number of points, 1 or more.")
NOTE_TOO_LONG = N_("The note is too long: at most 200 characters.")
STALE_FORM = N_("This form has expired. Please look at it again and confirm.")


class GiveForm:
    """The give-hours form's fields, checked; ``error`` says what is wrong, if anything."""

    def __init__(self, values: dict[str, str]) -> None:
        self.phone = values.get("phone", "")[:40]
        self.hours = values.get("hours", "")[:10]
        self.note = values.get("note", "")
        self.minutes = common.parse_hours(self.hours)
        self.error: str | None = None
        if not self.phone:
            self.error = NO_PHONE
        elif self.minutes is None:
            self.error = BAD_HOURS
        elif len(self.note) > MAX_NOTE:
            self.error = NOTE_TOO_LONG


class GivePages(Controller):
    path = "/me"

    # --- hours to a neighbour --------------------------------------------------------

    async def _give_form(
        self, request: Request, status: int = 200, error: str | None = None, **values: str
    ) -> Response[Any]:
        """The form (again, with what was typed and, translated, what is wrong)."""
        async with web.engine(request).connect() as conn:
            balances = await common.balances(conn, request)
        fields = {"phone": "", "hours": "", "note": "", **values}
        return render(request, "resident/give.html", status, balance=balances["HOUR"], error=error, **fields)

    async def _neighbour(self, request: Request, form: GiveForm) -> tuple[dict[str, Any] | None, str | None]:
        # A phone number answers with a masked name: numbers that lead nowhere are counted
        # per person, so the form cannot be used to find out who lives in the community.
        misses = request.app.state.neighbour_misses
        who = str(common.member_id(request))
        if misses.retry_after(who) is not None:
            return None, TOO_MANY_TRIES
        async with web.engine(request).connect() as conn:
            found = await people.neighbour(conn, web.principal(request), form.phone)
        if found is None:
            misses.fail(who)
            return None, UNKNOWN_PHONE
        if found["member_id"] == common.member_id(request):
            return None, OWN_PHONE
        return found, None

    @get("/give", opt=RESIDENT)
    async def give_form(self, request: Request) -> Response[Any]:
        return await self._give_form(request)

    @post("/give", opt=RESIDENT, status_code=200)
    async def give_check(self, request: Request) -> Response[Any]:
        """The confirmation: who (masked) and how much. Nothing moves yet."""
        form = GiveForm(await forms.read_form(request))
        _ = templating.gettext(request)
        again = {"phone": form.phone, "hours": form.hours, "note": form.note}
        if form.error:
            return await self._give_form(request, 400, _(form.error), **again)
        found, error = await self._neighbour(request, form)
        if found is None:
            status = {UNKNOWN_PHONE: 404, TOO_MANY_TRIES: 429}.get(error, 400)
            return await self._give_form(request, status, _(error), **again)
        assert form.minutes is not None
        return render(
            request,
            "resident/give_confirm.html",
            name=mask_name(found["display_name"]),
            minutes=form.minutes,
            hours_text=common.hours_text(form.minutes),
            phone=form.phone,
            note=form.note,
            idem=common.new_idem(),
        )

    @post("/give/change", opt=RESIDENT, status_code=200)
    async def give_change(self, request: Request) -> Response[Any]:
        """Back to the form as typed ("No, change it"): a form of its own, so a tap on
        it can never be taken for the confirmation."""
        form = GiveForm(await forms.read_form(request))
        return await self._give_form(request, phone=form.phone, hours=form.hours, note=form.note)

    @post("/give/confirm", opt=RESIDENT, status_code=303)
    async def give(self, request: Request) -> Response[Any]:
        values = await forms.read_form(request)
        _ = templating.gettext(request)
        form = GiveForm(values)
        again = {"phone": form.phone, "hours": form.hours, "note": form.note}
        idem = common.checked_idem(values)
        if idem is None or form.error:
            return await self._give_form(request, 400, _(form.error or STALE_FORM), **again)
        found, error = await self._neighbour(request, form)
        if found is None:
            status = {UNKNOWN_PHONE: 404, TOO_MANY_TRIES: 429}.get(error, 400)
            return await self._give_form(request, status, _(error), **again)
        async with web.engine(request).connect() as conn:
            mine = (await common.balances(conn, request))["HOUR"]["account_id"]
        who = web.principal(request)
        theirs, minutes, memo = found["hour_account_id"], form.minutes, form.note or None
        assert minutes is not None

        async def action(conn: Any, claim: ledger.Claim) -> dict[str, Any]:
            move = ledger.Movement(mine, theirs, Asset.HOUR, minutes)
            return await ledger.transfer(conn, who, [move], kind=Kind.TRANSFER, memo=memo, claim=claim)

        body = {"to": str(theirs), "minutes": minutes, "memo": memo}
        status, answer, _replayed = await common.run_once(request, idem, body, action)
        if status >= 400:
            return await self._give_form(request, status, common.refusal(request, answer), **again)
        return see_other(f"/me/done/{answer['id']}")

    # --- points to the community fund ------------------------------------------------

    async def _donate_form(
        self, request: Request, status: int = 200, error: str | None = None, **values: str
    ) -> Response[Any]:
        async with web.engine(request).connect() as conn:
            balances = await common.balances(conn, request)
        fields = {"points": "", "note": "", **values}
        return render(
            request, "resident/donate.html", status, balance=balances["POINT"], error=error, **fields
        )

    def _donation(self, request: Request, values: dict[str, str]) -> tuple[int | None, str | None]:
        """The points to donate, or what is wrong with the form (whether the balance
        covers them is the ledger's to say, when they move)."""
        _ = templating.gettext(request)
        points = common.parse_points(values.get("points", ""), ledger.MAX_AMOUNT)
        if points is None:
            return None, _(BAD_POINTS)
        if len(values.get("note", "")) > MAX_NOTE:
            return None, _(NOTE_TOO_LONG)
        return points, None

    @get("/donate", opt=RESIDENT)
    async def donate_form(self, request: Request) -> Response[Any]:
        return await self._donate_form(request)

    @post("/donate", opt=RESIDENT, status_code=200)
    async def donate_check(self, request: Request) -> Response[Any]:
        values = await forms.read_form(request)
        again = {"points": values.get("points", "")[:20], "note": values.get("note", "")}
        points, error = self._donation(request, values)
        if points is None:
            return await self._donate_form(request, 400, error, **again)
        return render(
            request, "resident/donate_confirm.html", points=points, note=again["note"], idem=common.new_idem()
        )

    @post("/donate/change", opt=RESIDENT, status_code=200)
    async def donate_change(self, request: Request) -> Response[Any]:
        values = await forms.read_form(request)
        return await self._donate_form(
            request, points=values.get("points", "")[:20], note=values.get("note", "")
        )

    @post("/donate/confirm", opt=RESIDENT, status_code=303)
    async def donate(self, request: Request) -> Response[Any]:
        values = await forms.read_form(request)
        again = {"points": values.get("points", "")[:20], "note": values.get("note", "")}
        idem = common.checked_idem(values)
        if idem is None:
            return await self._donate_form(request, 400, templating.gettext(request)(STALE_FORM), **again)
        who = web.principal(request)
        async with web.engine(request).connect() as conn:
            mine = (await common.balances(conn, request))["POINT"]
            fund = (await community.community_view(conn, who.community_id))["accounts"]["fund"]["POINT"]
        points, error = self._donation(request, values)
        if points is None:
            return await self._donate_form(request, 400, error, **again)
        memo = values.get("note") or None
        source, target = mine["account_id"], uuid.UUID(fund)

        async def action(conn: Any, claim: ledger.Claim) -> dict[str, Any]:
            move = ledger.Movement(source, target, Asset.POINT, points)
            return await ledger.transfer(conn, who, [move], kind=Kind.DONATION, memo=memo, claim=claim)

        body = {"to": fund, "points": points, "memo": memo}
        status, answer, _replayed = await common.run_once(request, idem, body, action)
        if status >= 400:
            return await self._donate_form(request, status, common.refusal(request, answer), **again)
        return see_other(f"/me/done/{answer['id']}")

    # --- what moved -----------------------------------------------------------------

    @get("/done/{tx_id:uuid}", opt=RESIDENT)
    async def done(self, request: Request, tx_id: uuid.UUID) -> Response[Any]:
        """What a give or a donation moved out of my account, my balance now, the receipt."""
        async with web.engine(request).connect() as conn:
            tx = await ledger.get_transaction(conn, web.principal(request), tx_id)
            balances = await common.balances(conn, request)
        mine = {str(b["account_id"]): asset for asset, b in balances.items()}
        out = next(
            (
                e
                for e in tx["entries"]
                if e["account_id"] in mine and e["direction"] == "debit" and e["layer"] == "posted"
            ),
            None,
        )
        asset = out["asset"] if out else tx["entries"][0]["asset"]
        return render(
            request,
            "resident/done.html",
            tx=tx,
            kind=tx["kind"],
            asset=asset,
            amount=out["amount"] if out else None,
            balance=balances[asset],
            at=when(tx["created_at"]),
        )
