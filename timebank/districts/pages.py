"""The districts' pages (issue 18): the district office's console and a community's side.

For district admins (a district admin sees communities and figures, never a member):

* ``GET /district``: every joined community's position per asset against its limit,
  the communities that asked, were invited or joined (the district's consent is a
  button), and the form that sets a community's limits and the value of its points
  (how many make one district point: two communities' values make their points rate);
* ``GET /district/settlements``: propose a settlement (a period's statement and every
  position at that moment), the open proposal and the history; ``/district/settlements/{id}``
  shows one, and another district admin approves it after a confirmation step;
* ``GET /district/crossings``: crossings by pair of communities and month, and each
  community's totals, for a period.

For a community's staff (admins; the board reads): ``GET /staff/district``, the
community's district, its position and limits, its consent to join, and its recent
crossings in and out.

Thin: every handler calls what ``/v1/district``, ``/v1/community/district`` and
``/v1/crossings`` call (``service``, ``settlement``, ``crossing``), with the session's
principal; nothing here decides a rule.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from timebank import web
from timebank.core.access import access
from timebank.core.problems import BadRequest, Conflict, DomainError, NotFound
from timebank.core.roles import Role
from timebank.core.terms import Asset
from timebank.districts import crossing, service, settlement
from timebank.ledger.legs import MAX_AMOUNT
from timebank.reports.pages import Period, quick_periods, read_period
from timebank.web import charts, forms, i18n, messages, templating
from timebank.web.i18n import N_
from timebank.web.templating import render, see_other

DISTRICT = access(Role.DISTRICT_ADMIN)
COMMUNITY_READ = access(Role.ADMIN, Role.AUDITOR)
COMMUNITY_WRITE = access(Role.ADMIN)
RECENT_CROSSINGS = 20

ASSET_NAMES = {Asset.HOUR.value: N_("Hours"), Asset.POINT.value: N_("Points")}
STATUS_NAMES = {
    "joined": N_("Joined"),
    "invited": N_("Invited: waiting for the community's staff"),
    "asked": N_("Asked to join: waiting for the district"),
}
SETTLEMENT_STATUS = {
    "proposed": N_("Waiting for approval"),
    "approved": N_("Approved and posted"),
    "cancelled": N_("Cancelled"),
}
DONE = {
    "saved": N_("The limits and the points value are saved."),
    "consent": N_("The district's consent is recorded."),
    "joined": N_("Your consent is recorded."),
    "approved": N_("The settlement is approved and posted: the positions are back to zero."),
    "cancelled": N_("The settlement is cancelled. Nothing was moved."),
    "proposed": N_("The settlement is proposed. Another district admin must approve it."),
}
QUICK = {"last-month": N_("Last month"), "this-month": N_("This month"), "this-year": N_("This year")}

NOT_AN_ID = N_("This is not an id. Copy it whole, for example 1b4e28ba-2fa1-11d2-883f-0016d3cca427.")
NO_SUCH_COMMUNITY = N_("No community has this id, or it is a district.")
NO_SUCH_DISTRICT = N_("No district has this id. Check it with the district office.")
OTHER_DISTRICT = N_("This community already belongs to, or asked to join, another district.")
NOT_HOURS = N_("Type the limit in hours, for example 100 or 2.5.")
NOT_POINTS = N_("Type the limit as a whole number of points, for example 5000.")
NOT_VALUE = N_("Type the points value as a whole number from 1 to 1,000,000.")
NOTHING_TO_SETTLE = N_("Every position is already zero: there is nothing to settle.")
ONE_OPEN = N_("A settlement is already waiting for approval: approve or cancel it first.")
BAD_PERIOD = N_("Choose a period of at most three years, its last day on or after its first.")
PROPOSER_MAY_NOT = N_(
    "You proposed this settlement, so you may not approve it: another district admin must (four eyes)."
)
ALREADY_DONE = N_("This settlement was already approved or cancelled. Nothing was changed.")


# --- what the pages show ------------------------------------------------------------------------


def amount_words(fmt: i18n.Formats, asset: str, value: int, signed: bool = False) -> str:
    """Minutes as hours, points as points; ``signed``: "+" before a positive value. The
    number and its unit stay on one line (a no-break space)."""
    text = fmt.hours(value) if asset == Asset.HOUR.value else fmt.points(value)
    text = text.replace(" ", "\u00a0")
    return ("+" + text) if signed and value > 0 else text


@dataclass(frozen=True)
class Gauge:
    """A position against its limit, in words and as a ``<progress>``."""

    asset: str
    position: int
    limit: int
    used: int  # |position|, at most the limit: the progress bar's value
    percent: int  # of the limit used (may pass 100 after a limit was lowered)

    @property
    def direction(self) -> str:
        if self.position > 0:
            return N_("Received more than it sent")
        if self.position < 0:
            return N_("Sent more than it received")
        return N_("Even: nothing to settle")


def gauge(asset: str, position: int, limit: int) -> Gauge:
    used = min(abs(position), limit)
    percent = round(abs(position) * 100 / limit) if limit else (0 if position == 0 else 100)
    return Gauge(asset, position, limit, used, percent)


def month_words(fmt: i18n.Formats, month: str) -> str:
    """ "2026-05" as the locale says a month ("2026年5月", "May 2026")."""
    return format_skeleton("yMMM", date.fromisoformat(month + "-01"), locale=fmt.locale)


def _today(request: Request) -> date:
    return datetime.now(ZoneInfo(request.scope["auth"].timezone)).date()


def _period_form(period: Period | None, first: str, last: str) -> dict[str, str]:
    return {
        "from": first or (period.first.isoformat() if period else ""),
        "to": last or (period.last.isoformat() if period else ""),
    }


def _quick(request: Request, here: str, current: Period | None) -> list[tuple[str, str, bool]]:
    """(label, link, chosen) of the quick periods."""
    _ = templating.gettext(request)
    periods = quick_periods(_today(request))
    return [(_(label), f"{here}?{periods[k].query}", periods[k] == current) for k, label in QUICK.items()]


def parse_hour_limit(text: str) -> int | None:
    """Hours as typed (``100``, ``2.5``, ``2,5``) → whole minutes from 0; None if not."""
    raw = text.strip().replace(",", ".").replace(" ", "")
    raw = raw.translate(str.maketrans("０１２３４５６７８９．", "0123456789."))
    if not raw or len(raw) > 16:
        return None
    try:
        hours = Decimal(raw)
    except InvalidOperation:
        return None
    if not hours.is_finite() or hours < 0:
        return None
    minutes = hours * 60
    if minutes != minutes.to_integral_value() or minutes > MAX_AMOUNT:
        return None
    return int(minutes)


def parse_whole(text: str, low: int, high: int) -> int | None:
    raw = text.strip().replace(" ", "").replace(",", "")
    raw = raw.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if not raw.isdigit() or len(raw) > 16 or not low <= int(raw) <= high:
        return None
    return int(raw)


def hours_field(minutes: int) -> str:
    """Minutes as the hours a person would type (90 → "1.5")."""
    if minutes % 60 == 0:
        return str(minutes // 60)
    return format(Decimal(minutes) / 60, "f").rstrip("0").rstrip(".")


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip())
    except (ValueError, AttributeError):
        return None


# --- the district's overview ----------------------------------------------------------------------


async def _overview(
    request: Request,
    status: int = 200,
    *,
    error: str | None = None,
    where: str | None = None,
    form: dict[str, str] | None = None,
    done: str | None = None,
) -> Response[Any]:
    _ = templating.gettext(request)
    district_id = web.principal(request).community_id
    async with web.engine(request).connect() as conn:
        view = await service.district_view(conn, district_id)
        positions = await service.positions(conn, district_id)
    by_id = {p["community_id"]: p for p in positions}
    names = {c["community_id"]: c["name"] for c in view["communities"]}
    joined, waiting = [], []
    for c in view["communities"]:
        if c["status"] == "joined" and c["community_id"] in by_id:
            assets = by_id[c["community_id"]]["assets"]
            joined.append(
                {
                    **c,
                    "gauges": [
                        gauge(a, assets[a]["position"], assets[a]["limit"])
                        for a in (Asset.HOUR.value, Asset.POINT.value)
                    ],
                    "hour_field": hours_field(c["limits"][Asset.HOUR.value]),
                }
            )
        else:
            waiting.append(c)
    rates = [
        {
            **r,
            "a_name": names.get(r["community_a"], r["community_a"]),
            "b_name": names.get(r["community_b"], r["community_b"]),
        }
        for r in view["rates"]
        if r["a_points"] != r["b_points"]  # the others cross one to one
    ]
    return render(
        request,
        "districts/overview.html",
        status,
        district=view,
        joined=joined,
        waiting=waiting,
        rates=rates,
        error=error,
        where=where,
        form=form or {},
        notice=_(DONE[done]) if done in DONE else None,
        status_names=STATUS_NAMES,
        asset_names=ASSET_NAMES,
        amount=lambda asset, value, signed=False: amount_words(
            templating.formats(request), asset, value, signed
        ),
    )


# --- settlements ----------------------------------------------------------------------------------


async def _names(conn: Any, district_id: uuid.UUID) -> dict[str, str]:
    view = await service.district_view(conn, district_id)
    return {c["community_id"]: c["name"] for c in view["communities"]}


def _statement(request: Request, statement: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A statement (``settlement.figures``) in words: months, names, amounts."""
    fmt = templating.formats(request)
    _ = templating.gettext(request)
    pairs = [
        {
            "month": month_words(fmt, r["month"]),
            "from": names.get(r["from_community_id"], r["from_community_id"]),
            "to": names.get(r["to_community_id"], r["to_community_id"]),
            "asset": _(ASSET_NAMES[r["asset"]]),
            "crossings": fmt.number(r["crossings"]),
            "sent": amount_words(fmt, r["asset"], r["sent"]),
            "received": amount_words(fmt, r["asset"], r["received"]),
            "raw": r,
        }
        for r in statement["by_pair_and_month"]
    ]
    totals = [
        {
            "name": t["name"] or names.get(t["community_id"], t["community_id"]),
            "asset": _(ASSET_NAMES[t["asset"]]),
            "sent": amount_words(fmt, t["asset"], t["sent"]),
            "received": amount_words(fmt, t["asset"], t["received"]),
            "crossings_out": fmt.number(t["crossings_out"]),
            "crossings_in": fmt.number(t["crossings_in"]),
        }
        for t in statement["by_community"]
    ]
    return {"pairs": pairs, "totals": totals}


CHART_HEADINGS = {
    Asset.HOUR.value: N_("Hours sent, by pair of communities"),
    Asset.POINT.value: N_("Points sent, by pair of communities"),
}


def _charts(
    request: Request, statement: dict[str, Any], names: dict[str, str]
) -> list[tuple[str, charts.BarChart]]:
    """Per asset, a bar chart of what crossed from each community to each other one in
    the period (the table beside it gives every figure)."""
    _ = templating.gettext(request)
    fmt = templating.formats(request)
    out = []
    for asset in (Asset.HOUR.value, Asset.POINT.value):
        sums: dict[tuple[str, str], int] = {}
        for r in statement["by_pair_and_month"]:
            if r["asset"] == asset:
                key = (r["from_community_id"], r["to_community_id"])
                sums[key] = sums.get(key, 0) + r["sent"]
        if not sums:
            continue
        items = [
            (f"{names.get(a, a)} → {names.get(b, b)}", v, amount_words(fmt, asset, v))
            for (a, b), v in sorted(sums.items(), key=lambda kv: -kv[1])
        ]
        top = items[0]
        title = _(
            "Bar chart: %(asset)s sent from one community to another in the period. "
            "The largest is %(label)s: %(value)s. The table gives every figure."
        ) % {"asset": _(ASSET_NAMES[asset]), "label": top[0], "value": top[2]}
        out.append(
            (_(CHART_HEADINGS[asset]), charts.bar_chart(title, items, large=templating.large_text(request)))
        )
    return out


def _lines(request: Request, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fmt = templating.formats(request)
    _ = templating.gettext(request)
    return [
        {
            "name": line["name"],
            "asset": _(ASSET_NAMES[line["asset"]]),
            "amount": amount_words(fmt, line["asset"], int(line["amount"]), signed=True),
            "direction": _(gauge(line["asset"], int(line["amount"]), 1).direction),
        }
        for line in lines
    ]


async def _settlements_page(
    request: Request,
    first: str = "",
    last: str = "",
    status: int = 200,
    error: str | None = None,
    open_id: str | None = None,
    done: str | None = None,
    required: bool = False,
) -> Response[Any]:
    """``required``: the days were sent (a proposal): empty ones are marked, not filled in."""
    _ = templating.gettext(request)
    principal = web.principal(request)
    district_id = principal.community_id
    period: Period | None
    errors: dict[str, str] = {}
    if not first and not last and not required:
        period = quick_periods(_today(request))["last-month"]
    else:
        period, errors = read_period(request, first or "-", last or "-")
    async with web.engine(request).connect() as conn:
        history = [_with_days(v) for v in await settlement.listing(conn, principal)]
        positions = await service.positions(conn, district_id)
    fmt = templating.formats(request)
    now = [
        {
            "name": p["name"],
            "asset": _(ASSET_NAMES[asset]),
            "amount": amount_words(fmt, asset, a["position"], signed=True),
            "direction": _(gauge(asset, a["position"], 1).direction),
        }
        for p in positions
        for asset, a in sorted(p["assets"].items())
        if a["position"] != 0
    ]
    open_ = next((s for s in history if s["status"] == "proposed"), None)
    return render(
        request,
        "districts/settlements.html",
        400 if errors and status == 200 else status,
        form=_period_form(None if errors else period, first, last),
        errors=errors,
        quick=_quick(request, "/district/settlements", period),
        positions_now=now,
        open=open_,
        history=history,
        error=error,
        notice=_(DONE[done]) if done in DONE else None,
        status_names=SETTLEMENT_STATUS,
    )


def _with_days(view: dict[str, Any]) -> dict[str, Any]:
    """A settlement's view with its period's first and last days (``to`` is the day after)."""
    first = date.fromisoformat(view["period"]["from"])
    last = date.fromisoformat(view["period"]["to"]) - timedelta(days=1)
    return {**view, "first": first, "last": last}


async def _settlement_page(
    request: Request, settlement_id: uuid.UUID, status: int = 200, error: str | None = None, done: str = ""
) -> Response[Any]:
    _ = templating.gettext(request)
    principal = web.principal(request)
    async with web.engine(request).connect() as conn:
        view = _with_days(await settlement.get(conn, principal, settlement_id))
        names = await _names(conn, principal.community_id)
    mine = view["proposed_by"] == str(principal.key_id)
    return render(
        request,
        "districts/settlement.html",
        status,
        s=view,
        lines=_lines(request, view["lines"]),
        statement=_statement(request, view["statement"], names),
        parts=[{"name": names.get(p["community_id"], p["community_id"]), **p} for p in view["parts"]],
        proposed_by_me=mine,
        error=error,
        notice=_(DONE[done]) if done in DONE else None,
        status_names=SETTLEMENT_STATUS,
    )


class DistrictPages(Controller):
    path = "/district"

    @get("/", opt=DISTRICT)
    async def overview(
        self, request: Request, done: str = Parameter(query="done", default="", max_length=20)
    ) -> Response[Any]:
        return await _overview(request, done=done)

    @post("/invite", opt=DISTRICT, status_code=303)
    async def invite(self, request: Request) -> Response[Any]:
        """The district's consent to a community, by the community's id (``POST /v1/district/communities``)."""
        values = await forms.read_form(request)
        community_id = _uuid(values.get("community_id", ""))
        if community_id is None:
            return await _overview(request, 400, error=_t(request, NOT_AN_ID), where="invite", form=values)
        return await self._consent(request, community_id, values)

    @post("/communities/{community_id:uuid}/consent", opt=DISTRICT, status_code=303)
    async def consent(self, request: Request, community_id: uuid.UUID) -> Response[Any]:
        await forms.read_form(request)
        return await self._consent(request, community_id, {})

    async def _consent(
        self, request: Request, community_id: uuid.UUID, values: dict[str, str]
    ) -> Response[Any]:
        principal = web.principal(request)
        try:
            async with web.engine(request).begin() as conn:
                await service.consent(conn, principal, principal.community_id, community_id)
        except NotFound:
            return await _overview(
                request, 404, error=_t(request, NO_SUCH_COMMUNITY), where="invite", form=values
            )
        except Conflict:
            return await _overview(
                request, 409, error=_t(request, OTHER_DISTRICT), where="invite", form=values
            )
        return see_other("/district?done=consent")

    @post("/communities/{community_id:uuid}/settings", opt=DISTRICT, status_code=303)
    async def save_community(self, request: Request, community_id: uuid.UUID) -> Response[Any]:
        """A community's limits and points value, in one transaction (``PUT
        /v1/district/communities/{id}/limits`` and ``.../points-value``)."""
        values = await forms.read_form(request)
        where = f"settings-{community_id}"
        hours = parse_hour_limit(values.get("hour_limit", ""))
        points = parse_whole(values.get("point_limit", ""), 0, MAX_AMOUNT)
        value = parse_whole(values.get("points_per_unit", ""), 1, service.MAX_RATE)
        if hours is None or points is None or value is None:
            error = _t(request, NOT_HOURS if hours is None else NOT_POINTS if points is None else NOT_VALUE)
            return await _overview(request, 400, error=error, where=where, form=values)
        principal = web.principal(request)
        try:
            async with web.engine(request).begin() as conn:
                limits = {Asset.HOUR.value: hours, Asset.POINT.value: points}
                await service.set_limits(conn, principal, community_id, limits)
                await service.set_points_value(conn, principal, community_id, value)
        except DomainError as refused:
            error = messages.explain(refused, templating.gettext(request))
            return await _overview(request, refused.status, error=error, where=where, form=values)
        return see_other(f"/district?done=saved#community-{community_id}")

    # --- settlements ---

    @get("/settlements", opt=DISTRICT)
    async def settlements(
        self,
        request: Request,
        first: str = Parameter(query="from", default="", max_length=40),
        last: str = Parameter(query="to", default="", max_length=40),
        done: str = Parameter(query="done", default="", max_length=20),
    ) -> Response[Any]:
        return await _settlements_page(request, first.strip(), last.strip(), done=done)

    @post("/settlements", opt=DISTRICT, status_code=303)
    async def propose(self, request: Request) -> Response[Any]:
        values = await forms.read_form(request)
        first, last = values.get("from", ""), values.get("to", "")
        period, _errors = read_period(request, first, last)
        if period is None or not (first and last):
            return await _settlements_page(request, first, last, 400, required=True)
        try:
            async with web.engine(request).begin() as conn:
                view = await settlement.propose(conn, web.principal(request), period.first, period.end)
        except BadRequest as refused:
            words = NOTHING_TO_SETTLE if "zero" in refused.detail else BAD_PERIOD
            return await _settlements_page(request, first, last, 400, error=_t(request, words))
        except Conflict:
            return await _settlements_page(request, first, last, 409, error=_t(request, ONE_OPEN))
        return see_other(f"/district/settlements/{view['id']}?done=proposed")

    @get("/settlements/{settlement_id:uuid}", opt=DISTRICT)
    async def one_settlement(
        self,
        request: Request,
        settlement_id: uuid.UUID,
        done: str = Parameter(query="done", default="", max_length=20),
    ) -> Response[Any]:
        return await _settlement_page(request, settlement_id, done=done)

    @get("/settlements/{settlement_id:uuid}/approve", opt=DISTRICT)
    async def approve_form(self, request: Request, settlement_id: uuid.UUID) -> Response[Any]:
        """The confirmation step: what approving moves, and the one button that does it."""
        principal = web.principal(request)
        async with web.engine(request).connect() as conn:
            view = _with_days(await settlement.get(conn, principal, settlement_id))
        if view["status"] != "proposed" or view["proposed_by"] == str(principal.key_id):
            return see_other(f"/district/settlements/{settlement_id}")
        return render(request, "districts/approve.html", s=view, lines=_lines(request, view["lines"]))

    @post("/settlements/{settlement_id:uuid}/approve", opt=DISTRICT, status_code=303)
    async def approve(self, request: Request, settlement_id: uuid.UUID) -> Response[Any]:
        # No idempotency key: the settlement is its own. Sent twice, the second finds it
        # approved (under its row lock) and moves nothing; the page then shows it posted.
        await forms.read_form(request)
        try:
            async with web.engine(request).begin() as conn:
                await settlement.approve(conn, web.principal(request), settlement_id)
        except settlement.FourEyes:
            return await _settlement_page(request, settlement_id, 409, error=_t(request, PROPOSER_MAY_NOT))
        except Conflict:
            return await _settlement_page(request, settlement_id, 409, error=_t(request, ALREADY_DONE))
        return see_other(f"/district/settlements/{settlement_id}?done=approved")

    @post("/settlements/{settlement_id:uuid}/cancel", opt=DISTRICT, status_code=303)
    async def cancel(self, request: Request, settlement_id: uuid.UUID) -> Response[Any]:
        await forms.read_form(request)
        try:
            async with web.engine(request).begin() as conn:
                await settlement.cancel(conn, web.principal(request), settlement_id)
        except Conflict:
            return await _settlement_page(request, settlement_id, 409, error=_t(request, ALREADY_DONE))
        return see_other(f"/district/settlements/{settlement_id}?done=cancelled")

    # --- figures ---

    @get("/crossings", opt=DISTRICT)
    async def crossings(
        self,
        request: Request,
        first: str = Parameter(query="from", default="", max_length=40),
        last: str = Parameter(query="to", default="", max_length=40),
    ) -> Response[Any]:
        _ = templating.gettext(request)
        first, last = first.strip(), last.strip()
        period, errors = read_period(request, first, last)
        district_id = web.principal(request).community_id
        statement = shown = None
        chart_list: list[tuple[str, charts.BarChart]] = []
        if period is not None:
            async with web.engine(request).connect() as conn:
                names = await _names(conn, district_id)
                try:
                    statement = await settlement.figures(conn, district_id, period.first, period.end)
                except BadRequest:
                    errors["to"] = _(BAD_PERIOD)
            if statement is not None:
                shown = _statement(request, statement, names)
                chart_list = _charts(request, statement, names)
        return render(
            request,
            "districts/crossings.html",
            400 if errors else 200,
            period=None if errors else period,
            form=_period_form(period, first, last),
            errors=errors,
            quick=_quick(request, "/district/crossings", period),
            statement=shown,
            charts=chart_list,
            zone=request.scope["auth"].timezone,
        )


def _t(request: Request, message: str) -> str:
    return templating.gettext(request)(message)


# --- a community's side -----------------------------------------------------------------------------


async def _staff_page(
    request: Request,
    status: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
    done: str = "",
) -> Response[Any]:
    _ = templating.gettext(request)
    principal = web.principal(request)
    fmt = templating.formats(request)
    async with web.engine(request).connect() as conn:
        view = await service.community_district(conn, principal.community_id)
        items, _next = await crossing.crossings_page(conn, principal, None, RECENT_CROSSINGS)
    names = {c["id"]: c["name"] for c in (view or {}).get("communities", [])}
    mine = str(principal.community_id)
    recent = []
    for c in items:
        out = c["from"]["community_id"] == mine
        other = c["to"]["community_id"] if out else c["from"]["community_id"]
        value = c["amount_sent"] if out else c["amount_received"]
        recent.append(
            {
                "out": out,
                "other": names.get(other, other),
                "amount": amount_words(fmt, c["asset"], value),
                "asset": c["asset"],
                "kept": amount_words(fmt, c["asset"], c["kept"]) if out and c["kept"] else None,
                "rate": c["rate"] if c["rate"]["from"] != c["rate"]["to"] else None,
                "at": datetime.fromisoformat(c["created_at"]),
                "memo": c.get("memo"),
                "transaction_id": c["from"]["transaction_id"] if out else c["to"]["transaction_id"],
            }
        )
    gauges = []
    if view is not None and "position" in view:
        gauges = [
            gauge(a, view["position"][a], view["limits"][a]) for a in (Asset.HOUR.value, Asset.POINT.value)
        ]
    return render(
        request,
        "districts/staff.html",
        status,
        district=view,
        gauges=gauges,
        recent=recent,
        error=error,
        form=form or {},
        notice=_(DONE[done]) if done in DONE else None,
        status_names=STATUS_NAMES,
        asset_names=ASSET_NAMES,
        amount=lambda asset, value, signed=False: amount_words(fmt, asset, value, signed),
        may_change=principal.role is Role.ADMIN,
        community_id=mine,
    )


class CommunityDistrictPages(Controller):
    path = "/staff/district"

    @get("/", opt=COMMUNITY_READ)
    async def page(
        self, request: Request, done: str = Parameter(query="done", default="", max_length=20)
    ) -> Response[Any]:
        return await _staff_page(request, done=done)

    @post("/", opt=COMMUNITY_WRITE, status_code=303)
    async def join(self, request: Request) -> Response[Any]:
        """This community's consent to join a district (``POST /v1/community/district``)."""
        values = await forms.read_form(request)
        district_id = _uuid(values.get("district_id", ""))
        if district_id is None:
            return await _staff_page(request, 400, _t(request, NOT_AN_ID), values)
        principal = web.principal(request)
        try:
            async with web.engine(request).begin() as conn:
                await service.consent(conn, principal, district_id, principal.community_id)
        except NotFound:
            return await _staff_page(request, 404, _t(request, NO_SUCH_DISTRICT), values)
        except Conflict:
            return await _staff_page(request, 409, _t(request, OTHER_DISTRICT), values)
        return see_other("/staff/district?done=joined")


PAGES: list[ControllerRouterHandler] = [DistrictPages, CommunityDistrictPages]
