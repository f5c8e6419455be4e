"""The activities' pages: residents sign up and withdraw (``/me/activities``), organisers
publish, cancel, show the check-in QR and keep the attendance (``/org/activities``, admins
``/staff/activities``), and the volunteer's scan page the QR opens (``/a/{id}/scan``).

Thin: every handler calls what the API route of ``controllers.py`` calls (the service,
``signups``, ``attendance``) with the signed-in person's principal and the same clock.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from timebank import web
from timebank.activities import attendance, service, signups, tokens
from timebank.activities.controllers import _key, _now
from timebank.activities.queries import ActivityFilter
from timebank.community.service import list_parties
from timebank.core.access import access
from timebank.core.policy import current_policy
from timebank.core.problems import DomainError
from timebank.core.roles import PartyKind, Role
from timebank.web import forms, messages, qr, templating
from timebank.web.i18n import N_
from timebank.web.templating import render, see_other

RESIDENT = access(Role.RESIDENT)
ORGANISER = access(Role.ADMIN, Role.RECORDER)
LISTED = 100

STATE_WORDS = {
    "signed_up": N_("Signed up"),
    "waiting": N_("On the waiting list"),
    "withdrawn": N_("Withdrawn"),
    "no_show": N_("Did not come"),
    "present": N_("Here now"),
    "needs_end_time": N_("Checked in, end time needed"),
    "attended": N_("Came and left"),
}
RESULT_WORDS = {
    "checked_in": N_("You are checked in at %(time)s."),
    "already_checked_in": N_("You were already checked in at %(time)s."),
    "checked_out": N_("You are checked out at %(time)s. Your hours are recorded and wait for approval."),
    "already_checked_out": N_("You were already checked out. Nothing was changed."),
}
BAD_TIME = N_("Enter the time as hours and minutes, for example 11:30.")
BAD_FORM = N_("Some of what you entered is not valid. Please check it.")


def _dt(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.scope["auth"].timezone)


def _times(view: dict[str, Any]) -> dict[str, Any]:
    """A view with its stamps as datetimes (for ``fmt``)."""
    out = dict(view)
    for name, value in view.items():
        if (name.endswith("_at") or name in ("starts_at", "ends_at")) and isinstance(value, str):
            out[name] = _dt(value)
    return out


def _base(request: Request) -> str:
    return "/staff/activities" if request.scope["auth"].role is Role.ADMIN else "/org/activities"


async def _categories(request: Request) -> list[Any]:
    async with web.engine(request).connect() as conn:
        _, policy, _ = await current_policy(conn, web.principal(request).community_id)
    return list(policy.categories)


# --- residents --------------------------------------------------------------------------------------


class ResidentActivityPages(Controller):
    path = "/me/activities"
    opt = RESIDENT

    @get("/", opt=RESIDENT)
    async def listing(
        self,
        request: Request,
        category: str | None = Parameter(query="category", default=None),
        day: str | None = Parameter(query="day", default=None),
    ) -> Response[Any]:
        since = until = None
        chosen_day = ""
        if day:
            try:
                d = date.fromisoformat(day)
                since = datetime.combine(d, time(0), _zone(request))
                until = since + timedelta(days=1)
                chosen_day = d.isoformat()
            except ValueError:
                chosen_day = ""
        who = web.principal(request)
        now = _now(request)
        f = ActivityFilter(who.community_id, category=category or None, since=since, until=until)
        async with web.engine(request).connect() as conn:
            items, _ = await service.listing(conn, who, f, None, LISTED, now)
            mine = await attendance.member_activities(conn, who, who.subject_id, now)
        status = {m["activity_id"]: m["status"] for m in mine["items"]}
        activities = [_times(a) | {"mine": status.get(a["id"])} for a in items]
        mine_now = [  # the volunteer's own, until they end (an activity under way is no longer "upcoming")
            _times(m)
            for m in mine["items"]
            if m["status"] in ("signed_up", "waiting") and _dt(m["ends_at"]) > now
        ]
        return render(
            request,
            "activities/resident_list.html",
            activities=activities,
            mine=sorted(mine_now, key=lambda m: m["starts_at"]),
            categories=await _categories(request),
            category=category or "",
            day=chosen_day,
        )

    @get("/{activity_id:uuid}", opt=RESIDENT)
    async def one(self, request: Request, activity_id: uuid.UUID, done: str = "") -> Response[Any]:
        return await self._page(request, activity_id, done=done)

    async def _page(
        self,
        request: Request,
        activity_id: uuid.UUID,
        *,
        done: str = "",
        error: str | None = None,
        confirming: bool = False,
    ) -> Response[Any]:
        who, now = web.principal(request), _now(request)
        async with web.engine(request).connect() as conn:
            view = await service.show(conn, who, activity_id)
            _, policy, _ = await current_policy(conn, who.community_id)
        activity = _times(view)
        deadline = activity["starts_at"] - timedelta(hours=policy.withdraw_deadline_hours)
        return render(
            request,
            "activities/resident_one.html",
            status=200 if error is None else 409,
            a=activity,
            done=done if done in ("signed_up", "waiting", "withdrawn") else "",
            error=error,
            confirming=confirming,
            hours=policy.withdraw_deadline_hours,
            late=now > deadline,
            deadline=deadline,
            check_open=activity["starts_at"] - attendance.CHECK_MARGIN
            <= now
            <= activity["ends_at"] + attendance.CHECK_MARGIN,
        )

    @post("/{activity_id:uuid}/sign-up", opt=RESIDENT)
    async def sign_up(self, request: Request, activity_id: uuid.UUID) -> Response[Any]:
        await forms.read_form(request)
        try:
            async with web.engine(request).begin() as conn:
                view, _ = await signups.sign_up(
                    conn, web.principal(request), activity_id, None, _now(request)
                )
        except DomainError as e:
            return await self._page(
                request, activity_id, error=messages.explain(e, templating.gettext(request))
            )
        return see_other(f"/me/activities/{activity_id}?done={view['status']}")

    @post("/{activity_id:uuid}/withdraw", opt=RESIDENT)
    async def withdraw(self, request: Request, activity_id: uuid.UUID) -> Response[Any]:
        values = await forms.read_form(request)
        if values.get("confirm") != "1":  # a tap by mistake must not lose the place: ask first
            return await self._page(request, activity_id, confirming=True)
        who = web.principal(request)
        try:
            async with web.engine(request).begin() as conn:
                await signups.withdraw(conn, who, activity_id, who.subject_id, _now(request))
        except DomainError as e:
            return await self._page(
                request, activity_id, error=messages.explain(e, templating.gettext(request))
            )
        return see_other(f"/me/activities/{activity_id}?done=withdrawn")


# --- organisers ------------------------------------------------------------------------------------

FORM_FIELDS = (
    "title",
    "category",
    "description",
    "place",
    "day",
    "start",
    "end",
    "capacity",
    "opens",
    "closes",
    "min_star",
    "organisation_id",
)


def _clock_on(day: date, text: str, zone: ZoneInfo) -> datetime | None:
    try:
        t = time.fromisoformat(text.strip().replace("：", ":"))
    except ValueError:
        return None
    return datetime.combine(day, t, zone)


def _read_activity(values: dict[str, str], zone: ZoneInfo, _: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The publish form's fields as the service takes them, or a sentence per wrong field."""
    errors: dict[str, str] = {}
    fields: dict[str, Any] = {
        "title": values.get("title", ""),
        "category": values.get("category", ""),
        "place": values.get("place", ""),
        "description": values.get("description") or None,
        "lat": None,
        "lon": None,
        "radius_m": None,
    }
    for name in ("title", "place", "category"):
        if not fields[name]:
            errors[name] = _("Please fill this in.")
    try:
        day = date.fromisoformat(values.get("day", ""))
    except ValueError:
        errors["day"] = _("Choose a day, or type it as 2026-11-30.")
        day = None
    if day is not None:
        fields["starts_at"] = _clock_on(day, values.get("start", ""), zone)
        fields["ends_at"] = _clock_on(day, values.get("end", ""), zone)
        for name, key in (("start", "starts_at"), ("end", "ends_at")):
            if fields[key] is None:
                errors[name] = _(BAD_TIME)
        if not errors and fields["ends_at"] <= fields["starts_at"]:
            errors["end"] = _("The end must be after the start.")
    try:
        fields["capacity"] = forms.whole_number(values, "capacity", 1, 10_000)
    except DomainError:
        errors["capacity"] = _("Enter how many volunteers can come, from 1 to 10000.")
    for name, key in (("opens", "signup_opens_at"), ("closes", "signup_closes_at")):
        text = values.get(name, "")
        fields[key] = None
        if text:
            try:
                fields[key] = datetime.fromisoformat(text).replace(tzinfo=zone)
            except ValueError:
                errors[name] = _("Choose a day and time, for example 2026-11-30 09:00.")
    fields["min_star"] = None
    if values.get("min_star"):
        try:
            fields["min_star"] = forms.whole_number(values, "min_star", 1, 5)
        except DomainError:
            errors["min_star"] = _("Enter a star level from 1 to 5, or leave it empty.")
    return fields, errors


class OrganiserActivityPages(Controller):
    path = "/"
    opt = ORGANISER

    async def _list_page(
        self,
        request: Request,
        status: int = 200,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        error: str | None = None,
    ) -> Response[Any]:
        who = web.principal(request)
        async with web.engine(request).connect() as conn:
            items, _ = await service.listing(
                conn, who, ActivityFilter(who.community_id), None, LISTED, _now(request)
            )
            orgs: list[dict[str, Any]] = []
            if who.role is Role.ADMIN:
                orgs, _ = await list_parties(conn, who, PartyKind.ORGANISATION, None, 200)
        return render(
            request,
            "activities/org_list.html",
            status=status,
            base=_base(request),
            activities=[_times(a) for a in items],
            categories=await _categories(request),
            organisations=orgs,
            values=values or {},
            errors=errors or {},
            error=error,
        )

    @get(["/org/activities", "/staff/activities"], opt=ORGANISER)
    async def listing(self, request: Request) -> Response[Any]:
        return await self._list_page(request)

    @post(["/org/activities", "/staff/activities"], opt=ORGANISER)
    async def publish(self, request: Request) -> Response[Any]:
        _ = templating.gettext(request)
        values = await forms.read_form(request)
        fields, errors = _read_activity(values, _zone(request), _)
        org = None
        if values.get("organisation_id"):
            try:
                org = uuid.UUID(values["organisation_id"])
            except ValueError:
                errors["organisation_id"] = _(BAD_FORM)
        if errors:
            return await self._list_page(request, 422, values=values, errors=errors)
        try:
            async with web.engine(request).begin() as conn:
                view = await service.create(conn, web.principal(request), service.ActivityIn(fields, org))
        except DomainError as e:
            return await self._list_page(request, e.status, values=values, error=messages.explain(e, _))
        return see_other(f"{_base(request)}/{view['id']}")

    @get(["/org/activities/{activity_id:uuid}", "/staff/activities/{activity_id:uuid}"], opt=ORGANISER)
    async def one(self, request: Request, activity_id: uuid.UUID) -> Response[Any]:
        return await self._one_page(request, activity_id)

    async def _one_page(
        self, request: Request, activity_id: uuid.UUID, status: int = 200, error: str | None = None
    ) -> Response[Any]:
        who = web.principal(request)
        async with web.engine(request).connect() as conn:
            view = await service.show(conn, who, activity_id)
            activity = await service.find(conn, who, activity_id)
        service.require_organiser(who, activity)
        return render(
            request,
            "activities/org_one.html",
            status=status,
            base=_base(request),
            a=_times(view),
            error=error,
        )

    @post(
        ["/org/activities/{activity_id:uuid}/cancel", "/staff/activities/{activity_id:uuid}/cancel"],
        opt=ORGANISER,
    )
    async def cancel(self, request: Request, activity_id: uuid.UUID) -> Response[Any]:
        values = await forms.read_form(request)
        try:
            async with web.engine(request).begin() as conn:
                await service.cancel(
                    conn, web.principal(request), activity_id, values.get("reason", ""), _now(request)
                )
        except DomainError as e:
            return await self._one_page(
                request, activity_id, e.status, messages.explain(e, templating.gettext(request))
            )
        return see_other(f"{_base(request)}/{activity_id}")

    @get(
        ["/org/activities/{activity_id:uuid}/check-in", "/staff/activities/{activity_id:uuid}/check-in"],
        opt=ORGANISER,
    )
    async def check_in(self, request: Request, activity_id: uuid.UUID) -> Response[Any]:
        who, now = web.principal(request), _now(request)
        public_url = web.settings(request).public_url or str(request.base_url)
        async with web.engine(request).connect() as conn:
            view = await service.show(conn, who, activity_id)
            code = await attendance.check_in_code(conn, who, activity_id, _key(request), public_url, now)
        _ = templating.gettext(request)
        expires = _dt(code["expires_at"])
        page = render(
            request,
            "activities/check_in.html",
            base=_base(request),
            a=_times(view),
            code=code,
            expires=expires,
            qr=qr.qr_svg(code["url"], _("Check-in code: scan it with your phone's camera")),
        )
        wait = max(1, int((expires - now).total_seconds()) + 1) if expires else tokens.WINDOW_SECONDS
        page.headers["Refresh"] = str(wait)  # a new code when this one's window ends, with or without script
        page.headers["Cache-Control"] = "no-store"
        return page

    @get(
        ["/org/activities/{activity_id:uuid}/attendance", "/staff/activities/{activity_id:uuid}/attendance"],
        opt=ORGANISER,
    )
    async def attendance_page(self, request: Request, activity_id: uuid.UUID) -> Response[Any]:
        return await self._attendance(request, activity_id)

    async def _attendance(
        self, request: Request, activity_id: uuid.UUID, status: int = 200, error: str | None = None
    ) -> Response[Any]:
        who, now = web.principal(request), _now(request)
        async with web.engine(request).connect() as conn:
            view = await service.show(conn, who, activity_id)
            seen = await attendance.attendance(conn, who, activity_id, now)
        rows = [_times(i) for i in seen["items"]]
        return render(
            request,
            "activities/attendance.html",
            status=status,
            base=_base(request),
            a=_times(view),
            seen=seen,
            rows=rows,
            states=STATE_WORDS,
            error=error,
            now_text=now.astimezone(_zone(request)).strftime("%H:%M"),
        )

    @get(
        [
            "/org/activities/{activity_id:uuid}/attendance.csv",
            "/staff/activities/{activity_id:uuid}/attendance.csv",
        ],
        opt=ORGANISER,
    )
    async def attendance_csv(self, request: Request, activity_id: uuid.UUID) -> Response[bytes]:
        async with web.engine(request).connect() as conn:
            view = await attendance.attendance(conn, web.principal(request), activity_id, _now(request))
        return Response(
            attendance.attendance_csv(view),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="attendance-{activity_id}.csv"'},
        )

    @post(
        ["/org/activities/{activity_id:uuid}/by-hand", "/staff/activities/{activity_id:uuid}/by-hand"],
        opt=ORGANISER,
    )
    async def by_hand(self, request: Request, activity_id: uuid.UUID) -> Response[Any]:
        _ = templating.gettext(request)
        values = await forms.read_form(request)
        step = values.get("step", "")
        try:
            member = uuid.UUID(values.get("member_id", ""))
        except ValueError:
            return await self._attendance(request, activity_id, 422, _(BAD_FORM))
        if step not in ("check-in", "check-out"):
            return await self._attendance(request, activity_id, 422, _(BAD_FORM))
        who, now = web.principal(request), _now(request)
        at = None
        try:
            async with web.engine(request).begin() as conn:
                if values.get("at"):
                    activity = await service.find(conn, who, activity_id)
                    day = activity.starts_at.astimezone(_zone(request)).date()
                    at = _clock_on(day, values["at"], _zone(request))
                    if at is None:
                        return await self._attendance(request, activity_id, 422, _(BAD_TIME))
                await attendance.check_by_hand(conn, who, activity_id, member, step, at, now)
        except DomainError as e:
            return await self._attendance(request, activity_id, e.status, messages.explain(e, _))
        return see_other(f"{_base(request)}/{activity_id}/attendance")


# --- the volunteer's scan ----------------------------------------------------------------------------


class ScanPages(Controller):
    path = "/a"
    opt = RESIDENT

    async def _page(
        self,
        request: Request,
        activity_id: uuid.UUID,
        token: str,
        *,
        status: int = 200,
        error: str | None = None,
        done: str = "",
    ) -> Response[Any]:
        who, now = web.principal(request), _now(request)
        async with web.engine(request).connect() as conn:
            view = await service.show(conn, who, activity_id)
            mine = await attendance.member_activities(conn, who, who.subject_id, now)
        me = next((_times(m) for m in mine["items"] if m["activity_id"] == str(activity_id)), None)
        _ = templating.gettext(request)
        result = ""
        if done in RESULT_WORDS and me is not None:
            at = me.get("checked_out_at") if done == "checked_out" else me.get("checked_in_at")
            fmt = templating.formats(request)
            result = _(RESULT_WORDS[done]) % {"time": fmt.time(at) if at else ""}
        return render(
            request,
            "activities/scan.html",
            status=status,
            a=_times(view),
            me=me,
            token=token,
            error=error,
            result=result,
            done=done,
        )

    @get("/{activity_id:uuid}/scan", opt=RESIDENT)
    async def show(
        self,
        request: Request,
        activity_id: uuid.UUID,
        t: str = Parameter(query="t", default=""),
        done: str = "",
    ) -> Response[Any]:
        return await self._page(request, activity_id, t[:200], done=done)

    @post("/{activity_id:uuid}/scan", opt=RESIDENT)
    async def scan(self, request: Request, activity_id: uuid.UUID) -> Response[Any]:
        values = await forms.read_form(request)
        token, code = values.get("token", "")[:200], values.get("code", "").replace(" ", "")[:12]
        lat = lon = None
        try:
            if values.get("lat") and values.get("lon"):
                lat, lon = float(values["lat"]), float(values["lon"])
        except ValueError:
            lat = lon = None
        given = attendance.Scan(None if code else token or None, code or None, lat, lon)
        try:
            async with web.engine(request).begin() as conn:
                view = await attendance.scan(
                    conn, web.principal(request), activity_id, given, _key(request), _now(request)
                )
        except DomainError as e:
            error = messages.explain(e, templating.gettext(request))
            return await self._page(request, activity_id, token, status=e.status, error=error)
        return see_other(f"/a/{activity_id}/scan?done={view['result']}")


PAGES: list[ControllerRouterHandler] = [ResidentActivityPages, OrganiserActivityPages, ScanPages]
