"""Staff pages of this issue: the staff home, and the people who sign in (add a person,
issue a one-time sign-in card with its QR code, revoke it, disable a person).

The fuller console (members, approvals, policy) builds on these in a later issue.
Thin: each handler calls ``accounts`` or ``links``, exactly as ``/v1/people`` does.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post

from timebank import web
from timebank.community import service as community
from timebank.core.access import access
from timebank.core.problems import BadRequest, DomainError
from timebank.core.roles import ROLE_SUBJECT_KIND, PartyKind, Role
from timebank.people import accounts, links
from timebank.people.controllers import sign_in_url
from timebank.web import forms, messages, templating
from timebank.web.i18n import N_
from timebank.web.qr import qr_svg
from timebank.web.templating import render, see_other

STAFF = (Role.ADMIN, Role.AUDITOR, Role.RECORDER)
ROLE_NAMES = {
    Role.RESIDENT: N_("Resident"),
    Role.MERCHANT: N_("Merchant staff"),
    Role.RECORDER: N_("Organisation recorder"),
    Role.ADMIN: N_("Community staff"),
    Role.AUDITOR: N_("Supervisory board member"),
}
# A district office's people are its district admins (a second one makes four eyes possible).
DISTRICT_ROLE_NAMES = {Role.DISTRICT_ADMIN: N_("District office admin")}
PEOPLE_ADMINS = (Role.ADMIN, Role.DISTRICT_ADMIN)
KIND_NAMES = {
    PartyKind.MEMBER: N_("Members"),
    PartyKind.MERCHANT: N_("Merchants"),
    PartyKind.ORGANISATION: N_("Organisations"),
}
PARTIES_LISTED = 500  # per kind; past it, the party's id is typed (a search comes with the console)


async def _parties(conn: Any, principal: Any) -> dict[str, list[dict[str, str]]]:
    listed = {}
    for kind in KIND_NAMES:
        items, _ = await community.list_parties(conn, principal, kind, None, PARTIES_LISTED)
        listed[kind.value] = [{"id": p["id"], "name": p.get("display_name") or p.get("name")} for p in items]
    return listed


def _role_names(principal: Any) -> dict[Role, str]:
    return DISTRICT_ROLE_NAMES if principal.role is Role.DISTRICT_ADMIN else ROLE_NAMES


class StaffPages(Controller):
    path = "/staff"

    @get("/", opt=access(*STAFF))
    async def home(self, request: Request) -> Response[Any]:
        return render(request, "staff/home.html", role_names=ROLE_NAMES)

    async def _people_page(self, request: Request, status: int = 200, **extra: Any) -> Response[Any]:
        principal = web.principal(request)
        async with web.engine(request).connect() as conn:
            people = await accounts.list_people(conn, principal)
            # (a district's people act for the district: no party to choose)
            parties = {} if principal.role is Role.DISTRICT_ADMIN else await _parties(conn, principal)
        names = {p["id"]: p["name"] for kind in parties.values() for p in kind}
        context = {"form": {}, "error": None, **extra}
        role_names = _role_names(principal)
        return render(
            request,
            "staff/people.html",
            status,
            people=people,
            parties=parties,
            names=names,
            role_names=role_names,
            kind_names=KIND_NAMES,
            roles=list(role_names),
            **context,
        )

    @get("/people", opt=access(Role.ADMIN, Role.AUDITOR, Role.DISTRICT_ADMIN))
    async def people(self, request: Request) -> Response[Any]:
        return await self._people_page(request)

    @post("/people", opt=access(*PEOPLE_ADMINS), status_code=303)
    async def add_person(self, request: Request) -> Response[Any]:
        values = await forms.read_form(request)
        _ = templating.gettext(request)
        try:
            role = Role(values.get("role", ""))
            subject = values.get("subject_id") or None
            if ROLE_SUBJECT_KIND[role] is None:
                subject = None
            try:
                subject_id = None if subject is None else uuid.UUID(subject)
            except ValueError:
                raise BadRequest("subject_id is not an id") from None
            async with web.engine(request).begin() as conn:
                person = await accounts.create_person(
                    conn,
                    web.principal(request),
                    role=role.value,
                    subject_id=subject_id,
                    display_name=values.get("display_name", ""),
                    login=values.get("login") or None,
                    password=values.get("password") or None,
                )
        except ValueError:
            return await self._people_page(request, 400, form=values, error=_("Choose a role."))
        except DomainError as refused:
            detail = refused.detail if refused.slug == "invalid-request" else None
            error = messages.explain(refused, _) + (f" ({detail})" if detail else "")
            return await self._people_page(request, refused.status, form=values, error=error)
        return see_other(f"/staff/people/{person['id']}")

    @get("/people/{person_id:uuid}", opt=access(Role.ADMIN, Role.AUDITOR, Role.DISTRICT_ADMIN))
    async def person(self, request: Request, person_id: uuid.UUID) -> Response[Any]:
        principal = web.principal(request)
        async with web.engine(request).connect() as conn:
            row = await accounts.get_person(conn, principal, person_id)
            issued = await links.links_of(conn, principal, person_id)
        return render(
            request,
            "staff/person.html",
            person=accounts.person_view(row),
            links=issued,
            role_names=_role_names(principal),
            default_hours=web.settings(request).sign_in_link_hours,
        )

    @post("/people/{person_id:uuid}/links", opt=access(*PEOPLE_ADMINS), status_code=200)
    async def issue_link(self, request: Request, person_id: uuid.UUID) -> Response[Any]:
        """The card is shown once, in this answer: its token is stored only as a hash."""
        values = await forms.read_form(request)
        hours = forms.whole_number(values, "hours", 1, links.MAX_HOURS)
        async with web.engine(request).begin() as conn:
            link = await links.issue_link(conn, web.principal(request), person_id, hours)
        url = sign_in_url(request, link["path"])
        _ = templating.gettext(request)
        return render(
            request,
            "staff/card.html",
            link=link,
            url=url,
            qr=qr_svg(url, _("Sign-in code for %(name)s") % {"name": link["display_name"]}),
        )

    @post("/links/{link_id:uuid}/revoke", opt=access(*PEOPLE_ADMINS), status_code=303)
    async def revoke_link(self, request: Request, link_id: uuid.UUID) -> Response[Any]:
        values = await forms.read_form(request)
        async with web.engine(request).begin() as conn:
            await links.revoke(conn, web.principal(request), link_id)
        return see_other(templating.safe_next(values.get("next"), "/staff/people"))

    @post("/people/{person_id:uuid}/disable", opt=access(*PEOPLE_ADMINS), status_code=303)
    async def disable(self, request: Request, person_id: uuid.UUID) -> Response[Any]:
        async with web.engine(request).begin() as conn:
            await accounts.set_disabled(conn, web.principal(request), person_id, True)
        return see_other(f"/staff/people/{person_id}")

    @post("/people/{person_id:uuid}/enable", opt=access(*PEOPLE_ADMINS), status_code=303)
    async def enable(self, request: Request, person_id: uuid.UUID) -> Response[Any]:
        async with web.engine(request).begin() as conn:
            await accounts.set_disabled(conn, web.principal(request), person_id, False)
        return see_other(f"/staff/people/{person_id}")


PAGES = [StaffPages]
