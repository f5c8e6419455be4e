"""Pages for signing in and out, one's own sessions and settings, and ``/``.

Thin: each handler reads the form, calls ``accounts``, ``links`` or ``sessions``, and
renders or redirects. Wrong passwords are counted per account (in the database) and
per address (``app.state.sign_in_failures``), and every refusal is the same sentence.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter

from timebank import web
from timebank.core.access import PUBLIC, READERS, access
from timebank.core.problems import BadRequest, DomainError
from timebank.core.roles import Role
from timebank.people import accounts, links, queries, sessions
from timebank.web import forms, i18n, messages, templating
from timebank.web.templating import render, safe_next, see_other

HOME = {
    Role.RESIDENT: "/me",
    Role.MERCHANT: "/counter",
    Role.RECORDER: "/org",
    Role.DISTRICT_ADMIN: "/district",
}  # everyone else: /staff
# Everyone who signs in: the community's roles and the district office's admins.
SIGNED_IN = access(*READERS, Role.DISTRICT_ADMIN)


def home_of(who: Any) -> str:
    return HOME.get(who.role, "/staff")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _signed_in_response(request: Request, token: str, target: str) -> Response[Any]:
    cfg = web.settings(request)
    response = see_other(target)
    response.set_cookie(
        sessions.COOKIE,
        token,
        max_age=cfg.session_days * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=cfg.secure_cookies,
        path="/",
    )
    return response


async def _start_session(request: Request, person: Any, via: str, target: str | None) -> Response[Any]:
    async with web.engine(request).begin() as conn:
        current = request.scope.get("auth")
        if current is not None:  # signing in as someone else on this phone ends the old session
            await sessions.end(conn, current, current.session_id)
        token = await sessions.start(
            conn,
            person.id,
            via,
            days=web.settings(request).session_days,
            user_agent=request.headers.get("user-agent", ""),
            address=_client(request),
        )
    return _signed_in_response(request, token, safe_next(target, HOME.get(Role(person.role), "/staff")))


class SignInPages(Controller):
    path = "/"

    @get("/", opt=PUBLIC)
    async def root(self, request: Request) -> Response[Any]:
        who = request.scope.get("auth")
        return see_other("/sign-in" if who is None else home_of(who))

    @get("/sign-in", opt=PUBLIC)
    async def sign_in_form(
        self, request: Request, next_: str | None = Parameter(query="next", default=None, max_length=500)
    ) -> Response[Any]:
        who = request.scope.get("auth")
        if who is not None:
            return see_other(safe_next(next_, home_of(who)))
        return render(request, "people/sign_in.html", next=safe_next(next_, ""), login="", error=None)

    @post("/sign-in", opt=PUBLIC, status_code=303)
    async def sign_in(self, request: Request) -> Response[Any]:
        values = await forms.read_form(request)
        _ = templating.gettext(request)
        cfg = web.settings(request)
        limiter = request.app.state.sign_in_failures
        client = _client(request)
        again = {"next": safe_next(values.get("next"), ""), "login": values.get("login", "")[:64]}
        if (wait := limiter.retry_after(client)) is not None:
            response = render(
                request, "people/sign_in.html", 429, error=messages.explain("too-many-requests", _), **again
            )
            response.headers["Retry-After"] = str(wait)
            return response
        refused = None
        async with web.engine(request).begin() as conn:  # commits the failure count too
            try:
                person = await accounts.sign_in_with_password(
                    conn,
                    values.get("login", ""),
                    values.get("password", ""),
                    limit=cfg.sign_in_account_limit,
                    window=timedelta(minutes=cfg.sign_in_window_minutes),
                )
            except accounts.SignInRefused as exc:
                refused = exc
        if refused is not None:
            limiter.fail(client)
            text = messages.explain("too-many-requests" if refused.retry_after else refused, _)
            status = 429 if refused.retry_after else 401
            return render(request, "people/sign_in.html", status, error=text, **again)
        return await _start_session(request, person, "password", values.get("next"))

    @get("/s/{token:str}", opt=PUBLIC)
    async def link_page(self, request: Request, token: str) -> Response[Any]:
        """A one-time link (or its QR code) opened: whose it is, and a button to use it."""
        try:
            async with web.engine(request).connect() as conn:
                name = await links.preview(conn, token)
        except links.LinkNotUsable as unusable:
            return render(request, "people/link.html", 410, token=None, name=None, reason=unusable.reason)
        return render(request, "people/link.html", token=token, name=name, reason=None)

    @post("/s/{token:str}", opt=PUBLIC, status_code=303)
    async def use_link(self, request: Request, token: str) -> Response[Any]:
        try:
            async with web.engine(request).begin() as conn:
                person_id = await links.use(conn, token)
                person = await queries.person_by_id(conn, person_id)
        except links.LinkNotUsable as unusable:
            return render(request, "people/link.html", 410, token=None, name=None, reason=unusable.reason)
        return await _start_session(request, person, "link", None)

    @post("/sign-out", opt=SIGNED_IN, status_code=303)
    async def sign_out(self, request: Request) -> Response[Any]:
        who = request.scope["auth"]
        async with web.engine(request).begin() as conn:
            await sessions.end(conn, who, who.session_id)
        response = see_other("/sign-in")
        response.delete_cookie(sessions.COOKIE, path="/")
        return response

    @post("/settings/language", opt=PUBLIC, status_code=303)
    async def language(self, request: Request) -> Response[Any]:
        """The language switch on every page: remembered in a cookie (and, signed in, on
        the person, so their other phones follow)."""
        values = await forms.read_form(request)
        locale = values.get("lang", "")
        if locale not in i18n.LOCALES:
            raise BadRequest("lang is zh_CN or en")
        who = request.scope.get("auth")
        if who is not None:
            async with web.engine(request).begin() as conn:
                await accounts.set_preferences(conn, who.person_id, locale=locale)
        response = see_other(safe_next(values.get("next"), "/"))
        response.set_cookie(
            i18n.LANG_COOKIE, locale, max_age=templating.COOKIE_YEAR, samesite="lax", path="/"
        )
        return response

    @post("/settings/text-size", opt=PUBLIC, status_code=303)
    async def text_size(self, request: Request) -> Response[Any]:
        """Large text (适老化) stays on: a cookie for this phone, and on the person."""
        values = await forms.read_form(request)
        large = values.get("large") == "1"
        who = request.scope.get("auth")
        if who is not None:
            async with web.engine(request).begin() as conn:
                await accounts.set_preferences(conn, who.person_id, large_text=large)
        response = see_other(safe_next(values.get("next"), "/"))
        response.set_cookie(
            templating.LARGE_COOKIE,
            "1" if large else "0",
            max_age=templating.COOKIE_YEAR,
            samesite="lax",
            path="/",
        )
        return response


class AccountPages(Controller):
    """One's own account: sessions (see and end them), password, language, text size."""

    path = "/account"

    async def _page(self, request: Request, status: int = 200, **extra: Any) -> Response[Any]:
        who = request.scope["auth"]
        async with web.engine(request).connect() as conn:
            live = await sessions.list_sessions(conn, who)
        context = {"sessions": live, "notice": None, "error": None, **extra}
        return render(request, "people/account.html", status, **context)

    @get("/", opt=SIGNED_IN)
    async def account(self, request: Request, done: str | None = None) -> Response[Any]:
        _ = templating.gettext(request)
        notices = {
            "password": _("Your password is changed. Your other sessions were ended."),
            "ended": _("The session is ended."),
            "others": _("Your other sessions are ended."),
        }
        return await self._page(request, notice=notices.get(done or ""))

    @post("/sessions/{session_id:uuid}/end", opt=SIGNED_IN, status_code=303)
    async def end_session(self, request: Request, session_id: uuid.UUID) -> Response[Any]:
        who = request.scope["auth"]
        async with web.engine(request).begin() as conn:
            await sessions.end(conn, who, session_id)
        if session_id == who.session_id:
            response = see_other("/sign-in")
            response.delete_cookie(sessions.COOKIE, path="/")
            return response
        return see_other("/account?done=ended")

    @post("/sessions/end-others", opt=SIGNED_IN, status_code=303)
    async def end_others(self, request: Request) -> Response[Any]:
        async with web.engine(request).begin() as conn:
            await sessions.end_others(conn, request.scope["auth"])
        return see_other("/account?done=others")

    @post("/password", opt=SIGNED_IN, status_code=303)
    async def password(self, request: Request) -> Response[Any]:
        who = request.scope["auth"]
        values = await forms.read_form(request)
        _ = templating.gettext(request)
        if values.get("new_password", "") != values.get("repeat_password", ""):
            return await self._page(request, 400, error=_("The two new passwords are not the same."))
        try:
            async with web.engine(request).begin() as conn:
                await accounts.change_password(
                    conn,
                    who.person_id,
                    who.session_id,
                    values.get("current_password"),
                    values.get("new_password", ""),
                )
        except accounts.SignInRefused:
            return await self._page(request, 400, error=_("The current password is not right."))
        except DomainError as refused:
            error = _("A password is 8 to 128 characters.") if refused.slug == "invalid-request" else None
            return await self._page(request, refused.status, error=error or messages.explain(refused, _))
        return see_other("/account?done=password")
