"""The merchant's pages: the counter (check a voucher by its code or QR, confirm it),
the shop's rewards (publish, change, stop offering) and its statement (totals, a chart
of points per day, the CSV).

Thin, like the API routes beside them (``controllers.py``): each handler reads the
form, calls the same service as its API route with the signed-in merchant's
principal, and renders or redirects. Confirming runs under the form's own
idempotency key, so a double tap or a resend answers the first result and never
moves points twice.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from babel.dates import format_skeleton
from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from timebank import schemas, web
from timebank.core.access import access
from timebank.core.problems import PROBLEM_BASE, BadRequest, DomainError, NotFound
from timebank.core.roles import Role
from timebank.ledger.idempotency import request_hash, run_idempotent
from timebank.redemption import redemption_views, redemptions, rewards, rules, statements
from timebank.web import forms, messages, templating
from timebank.web.i18n import N_
from timebank.web.privacy import mask_name
from timebank.web.templating import render, see_other

MERCHANT = access(Role.MERCHANT)

# --- the counter ---------------------------------------------------------------------------------

NO_VOUCHER = N_(
    "No open voucher of your shop has this code. Check the code with the resident: "
    "a voucher that was already used, cancelled or has expired cannot be used again."
)
NOT_A_VOUCHER_QR = N_(
    "This QR code is not an open voucher of your shop. Ask the resident to show the "
    "voucher's QR code, or type the code under it."
)
TYPE_A_CODE = N_("Type the code on the resident's voucher.")


def _presented(code: str, qr: str) -> tuple[str | None, str | None]:
    """What the shop assistant gave: a typed code, or the text of a voucher's QR
    (scanned by the camera, or typed by a scanner that works as a keyboard)."""
    text = (qr or code).strip()
    if not text:
        return None, None
    if qr or ("." in text and len(text) > schemas.MAX_CODE):
        return None, text
    return text, None


def _counter(
    request: Request, status: int = 200, *, error: str | None = None, code: str = ""
) -> Response[Any]:
    return render(request, "merchant/counter.html", status, error=error, code=code)


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


async def _look_up(request: Request, code: str, qr: str) -> Response[Any]:
    """The voucher behind a code or QR, with a button to confirm it; or why not, in words."""
    _ = templating.gettext(request)
    typed, token = _presented(code, qr)
    if typed is None and token is None:
        return _counter(request, 400, error=_(TYPE_A_CODE))
    shown = (typed or "")[: schemas.MAX_CODE]
    if typed is not None and len(typed) > schemas.MAX_CODE:
        return _counter(request, 404, error=_(NO_VOUCHER), code=shown)
    try:
        async with web.engine(request).connect() as conn:
            found = await redemption_views.find_for_counter(
                conn, web.principal(request), code=typed, qr=token, signer=request.app.state.signer
            )
    except NotFound:
        return _counter(request, 404, error=_(NOT_A_VOUCHER_QR if token else NO_VOUCHER), code=shown)
    if found["expired"]:
        return _counter(request, 409, error=messages.explain("voucher-expired", _), code=shown)
    return render(
        request,
        "merchant/voucher.html",
        voucher=found,
        member=mask_name(found["member_name"]),
        expires_at=_moment(found["expires_at"]),
        code=found["code"] if token is None else None,
        qr=token,
        idem=str(uuid.uuid4()),
    )


def _idempotency_key(request: Request, values: dict[str, str]) -> str:
    try:
        idem = uuid.UUID(values.get("idem", ""))
    except ValueError:
        raise BadRequest("idem is the uuid the form was rendered with") from None
    return f"page:{request.scope['auth'].person_id}:{idem}"


class CounterPages(Controller):
    """A phone or tablet at the shop's counter: one code, one check, one confirm."""

    path = "/counter"

    @get("/", opt=MERCHANT)
    async def counter(self, request: Request) -> Response[Any]:
        return _counter(request)

    @get("/voucher", opt=MERCHANT)
    async def voucher(
        self, request: Request, code: str = Parameter(default="", max_length=schemas.MAX_TOKEN)
    ) -> Response[Any]:
        """The typed code (GET, so the back button and a reload just look again)."""
        return await _look_up(request, code, "")

    @post("/voucher", opt=MERCHANT, status_code=200)
    async def scanned(self, request: Request) -> Response[Any]:
        """The scanned QR (too long for an address), or a code sent by POST."""
        values = await forms.read_form(request)
        return await _look_up(request, values.get("code", ""), values.get("qr", ""))

    @post("/vouchers/{redemption_id:uuid}/confirm", opt=MERCHANT, status_code=303)
    async def confirm(self, request: Request, redemption_id: uuid.UUID) -> Response[Any]:
        """``POST /v1/redemptions/{id}/confirm``'s service under the form's key: the
        second of two taps (or a resend) gets the first one's answer."""
        values = await forms.read_form(request)
        key = _idempotency_key(request, values)
        code, qr = values.get("code") or None, values.get("qr") or None
        if (code is None) == (qr is None):
            raise BadRequest("send the voucher's code or its qr")
        who, signer = web.principal(request), request.app.state.signer

        async def action(conn: Any, claim: Any) -> dict[str, Any]:
            return await redemptions.confirm(
                conn, who, redemption_id, code=code, qr=qr, signer=signer, claim=claim
            )

        async def answer(conn: Any, community_id: uuid.UUID, tx_id: uuid.UUID) -> dict[str, Any]:
            return await redemption_views.redemption_answer(conn, community_id, tx_id, signer)

        status, body, _replayed = await run_idempotent(
            web.engine(request),
            who,
            key,
            request_hash(who, "POST", request.url.path, {"code": code, "qr": qr}),
            action,
            instance=request.url.path,
            render=answer,
        )
        if status == 201:
            return see_other(f"/counter/done/{body['id']}")
        _ = templating.gettext(request)
        slug = str(body.get("type", "")).removeprefix(PROBLEM_BASE)
        error = _(NO_VOUCHER) if slug == "not-found" else messages.explain(slug, _)
        return _counter(request, status, error=error)

    @get("/done/{redemption_id:uuid}", opt=MERCHANT)
    async def done(self, request: Request, redemption_id: uuid.UUID) -> Response[Any]:
        async with web.engine(request).connect() as conn:
            redemption = await redemption_views.get_redemption(conn, web.principal(request), redemption_id)
        if redemption["status"] != "confirmed":
            raise NotFound(f"redemption {redemption_id} is not confirmed")
        return render(
            request,
            "merchant/done.html",
            redemption=redemption,
            confirmed_at=_moment(redemption["resolved_at"]),
        )


# --- rewards -------------------------------------------------------------------------------------

PERIODS = {
    "day": N_("Each day"),
    "week": N_("Each week"),
    "month": N_("Each month"),
    "quarter": N_("Each quarter"),
    "year": N_("Each year"),
}
LIMITS = {
    "day": N_("At most %(n)s per resident each day"),
    "week": N_("At most %(n)s per resident each week"),
    "month": N_("At most %(n)s per resident each month"),
    "quarter": N_("At most %(n)s per resident each quarter"),
    "year": N_("At most %(n)s per resident each year"),
}
FIELD_ERRORS = {
    "title": N_("Give the reward a name of 1 to 200 characters."),
    "description": N_("The description is at most 2000 characters."),
    "price_points": N_("The price is a whole number of points, at least 1."),
    "stock": N_("The stock is a whole number, 0 or more. Leave it empty for no limit."),
    "limit": N_("A limit is a number from 1 to 1000 and a period. Leave both empty for no limit."),
    "min_star": N_("The star level is from 0 to 5."),
    "star_prices": N_(
        "A price for a star level is a whole number of points, at least 1. Leave it empty if there is none."
    ),
    "valid_from": N_("Enter a date, for example 2025-06-01."),
    "valid_until": N_("Enter a date on or after the first day, for example 2025-06-30."),
}
# The form's fields of each of the reward's fields (a change to any of them changes it).
GROUPS = {
    "title": ("title",),
    "description": ("description",),
    "price_points": ("price_points",),
    "stock": ("stock",),
    "limit": ("limit_count", "limit_period"),
    "min_star": ("min_star",),
    "star_prices": tuple(f"star_{n}" for n in range(1, 6)),
    "valid_from": ("valid_from",),
    "valid_until": ("valid_until",),
}
STARS = range(1, 6)
# Where the cursor goes when the form comes back with mistakes: the first field in the
# form's order that is wrong (a browser scrolls to it, without any script).
FOCUS = {
    "title": "title",
    "description": "description",
    "price_points": "price_points",
    "stock": "stock",
    "limit": "limit_count",
    "min_star": "min_star",
    "star_prices": "star_1",
    "valid_from": "valid_from",
    "valid_until": "valid_until",
}


class _NotANumber(Exception):
    pass


def _whole(raw: str) -> int | None:
    """A whole number typed in a form (spaces and thousands separators forgiven), or None if empty."""
    text = raw.replace(" ", "").replace(",", "").replace("，", "")
    if not text:
        return None
    if not text.isdecimal() or len(text) > 13:
        raise _NotANumber
    return int(text)


def _form_of(view: dict[str, Any], zone: ZoneInfo) -> dict[str, str]:
    """A reward as its form's fields (dates in the community's zone; "until" is the last day)."""
    limit = view.get("limit") or {}
    values = {
        "title": view["title"],
        "description": view.get("description") or "",
        "price_points": str(view["price_points"]),
        "stock": "" if view.get("stock") is None else str(view["stock"]),
        "limit_count": str(limit.get("count", "")),
        "limit_period": limit.get("period", ""),
        "min_star": str(view.get("min_star", 0)),
        "valid_from": "",
        "valid_until": "",
    }
    for n in STARS:
        price = view.get("star_prices", {}).get(str(n))
        values[f"star_{n}"] = "" if price is None else str(price)
    if view.get("valid_from"):
        values["valid_from"] = datetime.fromisoformat(view["valid_from"]).astimezone(zone).date().isoformat()
    if view.get("valid_until"):
        last = datetime.fromisoformat(view["valid_until"]).astimezone(zone) - timedelta(microseconds=1)
        values["valid_until"] = last.date().isoformat()
    return values


EMPTY_FORM = {
    "title": "",
    "description": "",
    "price_points": "",
    "stock": "",
    "limit_count": "",
    "limit_period": "",
    "min_star": "0",
    "valid_from": "",
    "valid_until": "",
    **{f"star_{n}": "" for n in STARS},
}


def _read_reward(values: dict[str, str], zone: ZoneInfo) -> tuple[dict[str, Any], set[str]]:
    """The reward's fields from its form (as the API takes them), and which fields are not valid."""
    fields: dict[str, Any] = {
        "title": values.get("title", ""),
        "description": values.get("description") or None,
    }
    wrong: set[str] = set()
    for name in ("price_points", "stock", "min_star"):
        try:
            fields[name] = _whole(values.get(name, ""))
        except _NotANumber:
            wrong.add(name)
    if fields.get("min_star") is None:
        fields["min_star"] = 0
    try:
        count = _whole(values.get("limit_count", ""))
        period = values.get("limit_period") or None
        if (count is None) != (period is None) or (period is not None and period not in rules.PERIODS):
            raise _NotANumber
        fields["limit"] = None if count is None else {"count": count, "period": period}
    except _NotANumber:
        wrong.add("limit")
    try:
        prices = {str(n): _whole(values.get(f"star_{n}", "")) for n in STARS}
        fields["star_prices"] = {star: price for star, price in prices.items() if price is not None}
    except _NotANumber:
        wrong.add("star_prices")
    for name, days in (("valid_from", 0), ("valid_until", 1)):  # until the end of its last day
        raw = values.get(name, "")
        try:
            day = date.fromisoformat(raw) if raw else None
        except ValueError:
            wrong.add(name)
            continue
        fields[name] = None if day is None else datetime.combine(day + timedelta(days=days), time(0), zone)
    if not fields["title"].strip():
        wrong.add("title")
    if fields.get("price_points") is None:
        wrong.add("price_points")
    return fields, wrong


def _field_of(detail: str) -> str | None:
    """The form field a service's refusal is about (its detail names the API field first)."""
    for prefix, field in (
        ("a limit", "limit"),
        ("limit", "limit"),
        ("valid_until", "valid_until"),
        ("valid_from", "valid_from"),
    ):
        if detail.startswith(prefix):
            return field
    head = detail.split(" ", 1)[0].split("[", 1)[0]
    return head if head in FIELD_ERRORS else None


def _validation_field(error: msgspec.ValidationError) -> str | None:
    text = str(error)
    at = text.rfind("at `$.")
    if at < 0:
        return None
    path = text[at + len("at `$.") :].rstrip("`")
    head = path.split(".", 1)[0].split("[", 1)[0]
    return head if head in FIELD_ERRORS else None


@dataclass
class _Refused:
    """Why a reward form was not saved: the fields in words, or one sentence for the whole."""

    fields: set[str]
    general: str | None = None


async def _save_reward(
    request: Request, values: dict[str, str], reward: dict[str, Any] | None
) -> dict[str, Any] | _Refused:
    """Create a reward (``reward`` None) or change the fields the form changed, through
    the API's own services; or why not."""
    who = request.scope["auth"]
    zone = ZoneInfo(who.timezone)
    fields, wrong = _read_reward(values, zone)
    if reward is not None:
        current = _form_of(reward, zone)
        changed = {g for g, names in GROUPS.items() if any(values.get(n, "") != current[n] for n in names)}
        fields = {k: v for k, v in fields.items() if k in changed}
        wrong &= changed
    if wrong:
        return _Refused(wrong)
    try:
        body: Any = msgspec.convert(fields, rewards.RewardPatch if reward else rewards.RewardIn)
    except msgspec.ValidationError as invalid:
        field = _validation_field(invalid)
        if field:
            return _Refused({field})
        return _Refused(set(), messages.explain("invalid-request", templating.gettext(request)))
    try:
        async with web.engine(request).begin() as conn:
            if reward is None:
                return await rewards.create_reward(conn, web.principal(request), body)
            return await rewards.update_reward(conn, web.principal(request), uuid.UUID(reward["id"]), body)
    except BadRequest as refused:
        field = _field_of(refused.detail or "")
        if field:
            return _Refused({field})
        return _Refused(set(), messages.explain(refused, templating.gettext(request)))
    except DomainError as refused:
        return _Refused(set(), messages.explain(refused, templating.gettext(request)))


def _errors(request: Request, refused: _Refused | None) -> dict[str, Any]:
    """The form's context for what was refused: each field's sentence, where the cursor goes."""
    if refused is None:
        return {"errors": {}, "general_error": None, "focus": None}
    _ = templating.gettext(request)
    return {
        "errors": {field: _(FIELD_ERRORS[field]) for field in refused.fields},
        "general_error": refused.general,
        "focus": next((FOCUS[f] for f in FOCUS if f in refused.fields), None),
    }


async def _own_reward(request: Request, reward_id: uuid.UUID) -> dict[str, Any]:
    """One of this merchant's rewards (another shop's is not found here)."""
    async with web.engine(request).connect() as conn:
        reward = await rewards.get_reward(conn, web.principal(request), reward_id)
    if reward["merchant_id"] != str(request.scope["auth"].subject_id):
        raise NotFound(f"reward {reward_id} not found")
    return reward


def _reward_extras(reward: dict[str, Any]) -> dict[str, Any]:
    return {
        "valid_from": _moment(reward.get("valid_from")),
        "valid_until": _moment(reward.get("valid_until")),
    }


DONE = {
    "created": N_("The reward is published. Residents can redeem it now."),
    "saved": N_("Your changes are saved."),
    "deactivated": N_("The reward is no longer offered. Vouchers already issued stay valid."),
}


class RewardPages(Controller):
    """The shop's rewards: what residents may redeem here, and for how many points."""

    path = "/merchant/rewards"

    async def _list(
        self,
        request: Request,
        status: int = 200,
        *,
        cursor: str | None = None,
        form: dict[str, str] | None = None,
        refused: _Refused | None = None,
        notice: str | None = None,
    ) -> Response[Any]:
        who = request.scope["auth"]
        async with web.engine(request).connect() as conn:
            items, nxt = await rewards.list_rewards(
                conn,
                web.principal(request),
                merchant_id=who.subject_id,
                active=None,
                cursor=web.uuid_cursor(cursor),
                limit=web.settings(request).page_default,
            )
        for item in items:
            item.update(_reward_extras(item))
        return render(
            request,
            "merchant/rewards.html",
            status,
            offered=[r for r in items if r["active"]],
            stopped=[r for r in items if not r["active"]],
            next_cursor=nxt,
            form=form or EMPTY_FORM,
            **_errors(request, refused),
            notice=notice,
            periods=PERIODS,
            limits=LIMITS,
        )

    @get("/", opt=MERCHANT)
    async def rewards_page(
        self,
        request: Request,
        cursor: str | None = Parameter(default=None, max_length=36),
        done: str | None = Parameter(default=None, max_length=20),
    ) -> Response[Any]:
        _ = templating.gettext(request)
        return await self._list(request, cursor=cursor, notice=_(DONE[done]) if done in DONE else None)

    @post("/", opt=MERCHANT, status_code=303)
    async def create(self, request: Request) -> Response[Any]:
        values = await forms.read_form(request)
        saved = await _save_reward(request, values, None)
        if isinstance(saved, _Refused):
            return await self._list(request, 400, form={**EMPTY_FORM, **values}, refused=saved)
        return see_other("/merchant/rewards?done=created")

    async def _edit(
        self,
        request: Request,
        reward: dict[str, Any],
        status: int = 200,
        *,
        form: dict[str, str] | None = None,
        refused: _Refused | None = None,
    ) -> Response[Any]:
        who = request.scope["auth"]
        return render(
            request,
            "merchant/reward.html",
            status,
            reward=reward,
            form=form or _form_of(reward, ZoneInfo(who.timezone)),
            **_errors(request, refused),
            periods=PERIODS,
            limits=LIMITS,
            **_reward_extras(reward),
        )

    @get("/{reward_id:uuid}", opt=MERCHANT)
    async def edit(self, request: Request, reward_id: uuid.UUID) -> Response[Any]:
        return await self._edit(request, await _own_reward(request, reward_id))

    @post("/{reward_id:uuid}", opt=MERCHANT, status_code=303)
    async def save(self, request: Request, reward_id: uuid.UUID) -> Response[Any]:
        values = await forms.read_form(request)
        reward = await _own_reward(request, reward_id)
        saved = await _save_reward(request, values, reward)
        if isinstance(saved, _Refused):
            form = {**_form_of(reward, ZoneInfo(request.scope["auth"].timezone)), **values}
            return await self._edit(request, reward, 400, form=form, refused=saved)
        return see_other("/merchant/rewards?done=saved")

    @get("/{reward_id:uuid}/deactivate", opt=MERCHANT)
    async def deactivate_page(self, request: Request, reward_id: uuid.UUID) -> Response[Any]:
        """Asks first: a reward that stops being offered cannot be offered again here."""
        reward = await _own_reward(request, reward_id)
        return render(request, "merchant/deactivate.html", reward=reward)

    @post("/{reward_id:uuid}/deactivate", opt=MERCHANT, status_code=303)
    async def deactivate(self, request: Request, reward_id: uuid.UUID) -> Response[Any]:
        await _own_reward(request, reward_id)
        async with web.engine(request).begin() as conn:
            await rewards.update_reward(conn, web.principal(request), reward_id, None, deactivate=True)
        return see_other("/merchant/rewards?done=deactivated")


# --- the statement -------------------------------------------------------------------------------

BAD_DATES = N_("Enter the days as dates, for example 2025-06-01.")
BAD_RANGE = N_("The last day is on or after the first day, and at most 366 days after it.")
DAILY_MAX_DAYS = 62  # longer statements are charted per month


def _this_month(zone: ZoneInfo) -> tuple[date, date]:
    today = datetime.now(zone).date()
    return today.replace(day=1), today.replace(day=calendar.monthrange(today.year, today.month)[1])


def _month_before(first: date) -> tuple[date, date]:
    last = first.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def _dates(first: str | None, last: str | None, zone: ZoneInfo) -> tuple[date, date] | None:
    """The statement's days: both given, or this month when neither is; None if not dates."""
    if not first and not last:
        return _this_month(zone)
    try:
        start = date.fromisoformat(first or last or "")
        return start, date.fromisoformat(last or first or "")
    except ValueError:
        return None


@dataclass(frozen=True)
class Bar:
    start: date  # the day (or the month's first day)
    label: str  # under the bar
    name: str  # in the table and the summary
    points: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    """Points received per day (or per month), drawn as SVG by the server."""

    daily: bool
    bars: list[Bar]
    high: int
    width: int = 340
    height: int = 190
    left: int = 44
    top: int = 14
    bottom: int = 28

    @property
    def base(self) -> int:
        return self.height - self.bottom

    @property
    def best(self) -> Bar | None:
        return max(self.bars, key=lambda b: b.points) if self.high else None


def _chart(items: list[dict[str, Any]], first: date, last: date, fmt: Any) -> Chart:
    zone, locale = fmt.zone, fmt.locale
    daily = (last - first).days < DAILY_MAX_DAYS
    starts: list[date] = []
    day = first if daily else first.replace(day=1)
    while day <= last:
        starts.append(day)
        day = day + timedelta(days=1) if daily else (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    totals = dict.fromkeys(starts, 0)
    for item in items:
        when = datetime.fromisoformat(item["confirmed_at"]).astimezone(zone).date()
        totals[when if daily else when.replace(day=1)] += item["points"]
    high = max(totals.values(), default=0)
    chart = Chart(daily, [], high)
    plot_width, plot_height = chart.width - chart.left - 4, chart.base - chart.top
    step = plot_width / max(len(starts), 1)
    label_every = 1 if len(starts) <= 12 else 7 if daily else 3
    for i, start in enumerate(starts):
        points = totals[start]
        height = 0.0 if not high else plot_height * points / high
        labelled = i % label_every == 0
        chart.bars.append(
            Bar(
                start=start,
                label=(str(start.day) if daily else format_skeleton("MMM", start, locale=locale))
                if labelled
                else "",
                name=fmt.date(start) if daily else format_skeleton("yMMM", start, locale=locale),
                points=points,
                x=round(chart.left + i * step + step * 0.15, 2),
                y=round(chart.base - height, 2),
                width=round(max(step * 0.7, 0.5), 2),
                height=round(height, 2),
            )
        )
    return chart


class StatementPages(Controller):
    """What the shop received: confirmed redemptions between two days, for settling up."""

    path = "/merchant"

    @get("/statement", opt=MERCHANT)
    async def statement(
        self,
        request: Request,
        first: str | None = Parameter(query="from", default=None, max_length=10),
        last: str | None = Parameter(query="to", default=None, max_length=10),
    ) -> Response[Any]:
        who = request.scope["auth"]
        _ = templating.gettext(request)
        zone = ZoneInfo(who.timezone)
        days, error, status = _dates(first, last, zone), None, 200
        if days is None:
            days, error, status = _this_month(zone), _(BAD_DATES), 400
        body = None
        try:
            async with web.engine(request).connect() as conn:
                body = await statements.statement(conn, web.principal(request), who.subject_id, *days)
        except BadRequest:
            error, status = _(BAD_RANGE), 400
        fmt = templating.formats(request)
        this_month, month_before = _this_month(zone), _month_before(_this_month(zone)[0])
        return render(
            request,
            "merchant/statement.html",
            status,
            first=days[0],
            last=days[1],
            statement=body,
            items=[{**i, "when": _moment(i["confirmed_at"])} for i in (body or {"items": []})["items"]],
            chart=_chart(body["items"], *days, fmt) if body else None,
            error=error,
            this_month=this_month,
            month_before=month_before,
        )

    @get("/statement.csv", opt=MERCHANT)
    async def statement_csv(
        self,
        request: Request,
        first: str | None = Parameter(query="from", default=None, max_length=10),
        last: str | None = Parameter(query="to", default=None, max_length=10),
    ) -> Response[str]:
        """``GET /v1/merchants/{id}/statement?format=csv``, as a download."""
        who = request.scope["auth"]
        days = _dates(first, last, ZoneInfo(who.timezone))
        if days is None:
            raise BadRequest("from and to are dates (YYYY-MM-DD)")
        async with web.engine(request).connect() as conn:
            body = await statements.statement(conn, web.principal(request), who.subject_id, *days)
        name = f"statement-{days[0]}-{days[1]}.csv"
        return Response(
            content=statements.statement_csv(body),
            media_type="text/csv",  # Litestar adds "; charset=utf-8" to text types (once)
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


PAGES: list[ControllerRouterHandler] = [CounterPages, RewardPages, StatementPages]
