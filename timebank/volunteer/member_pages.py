"""Console pages of the members (issue 15): find a member by name, member number, phone
or id; register one (with a sign-in person, in the same step, if staff give a phone);
a member's page (balances, star level, history with receipts, service records,
redemptions), correcting their name or number, and their sign-in card (the resident
person's one-time link as a QR, printed on a member card).

Thin: each handler calls what the API's routes call, with the signed-in person's
principal: ``POST /v1/members`` (``community.create_party``) and ``POST /v1/people``
(``accounts.create_person``); balances as ``GET /v1/members/{id}/balances``; standing
as ``GET /v1/members/{id}``; entries as ``GET /v1/accounts/{id}/entries`` (posted,
newest first: ``ledger.history_page``); records as ``.../service-records``
(``reading.records_page``); redemptions as ``.../redemptions`` (the redemption
package's ``member_redemptions``, which sits above this one: the app hands it over as
``app.state.member_redemptions``); cards as ``POST /v1/people/{id}/sign-in-links``
(``links.issue_link``). Correcting a member is ``community.update_party`` (no API route
yet). The pages live in this package because they read volunteer records and standing;
``policy_pages.PAGES`` lists them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter

from timebank import web
from timebank.community import service as community
from timebank.community.pages import PAGE_SIZE, SEARCH_MAX, is_htmx, party_errors
from timebank.core.access import access
from timebank.core.problems import BadRequest, DomainError, NotFound
from timebank.core.roles import PartyKind, Role
from timebank.ledger import service as ledger
from timebank.people import accounts, links
from timebank.people import queries as people_queries
from timebank.people.controllers import sign_in_url
from timebank.volunteer import reading
from timebank.volunteer.standing import standing
from timebank.web import forms, templating
from timebank.web.i18n import N_
from timebank.web.messages import RECORD_STATUS, entry_words
from timebank.web.qr import qr_svg
from timebank.web.templating import render, see_other

ADMIN = access(Role.ADMIN)
READ = access(Role.ADMIN, Role.AUDITOR)
ASSETS = ("HOUR", "POINT")
RECENT = 5
LIST_PAGE = 25

REDEMPTION_STATUS = {
    "held": N_("Open voucher: points held"),
    "confirmed": N_("Used"),
    "cancelled": N_("Cancelled"),
    "expired": N_("Expired"),
}
LOGIN_ERROR = N_(
    "A phone number or user name is 3 to 64 letters, digits or . _ @ +, starting with a letter or digit."
)
LOGIN_TAKEN = N_("Another person already signs in with this phone number or user name.")
TITLES = {
    "history": N_("History of %(name)s"),
    "records": N_("Service records of %(name)s"),
    "redemptions": N_("Rewards redeemed by %(name)s"),
}
HOURS_ERROR = N_("A card is valid from 1 to 336 hours (14 days).")


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _entry(entry: dict[str, Any]) -> dict[str, Any]:
    incoming = entry["direction"] == "credit"
    kind = entry["kind"]
    what = entry_words(kind, incoming)
    return {**entry, "incoming": incoming, "what": what, "at": _when(entry["created_at"])}


def _record(r: dict[str, Any]) -> dict[str, Any]:
    return {
        **r,
        "status_words": RECORD_STATUS.get(r["status"], r["status"]),
        "started": _when(r["started_at"]),
    }


def _redemption(x: dict[str, Any]) -> dict[str, Any]:
    return {
        **x,
        "status_words": REDEMPTION_STATUS.get(x["status"], x["status"]),
        "at": _when(x["created_at"]),
    }


def _member_activities(request: Request) -> Any:
    """The activities package's ``member_activities`` (``GET /v1/members/{id}/activities``:
    sign-ups and the no-show count), handed over like the redemptions; else None."""
    return getattr(request.app.state, "member_activities", None)


def _member_redemptions(request: Request) -> Any:
    """The redemption package's ``member_redemptions`` (the service of ``GET
    /v1/members/{id}/redemptions``), if the app has handed it over; else None."""
    return getattr(request.app.state, "member_redemptions", None)


def _login_errors(request: Request, refused: DomainError) -> dict[str, str] | None:
    """A refusal of the sign-in person's login, as the field's sentence (else None)."""
    _ = templating.gettext(request)
    if refused.slug == "login-taken":
        return {"login": _(LOGIN_TAKEN)}
    if refused.slug == "invalid-request" and (refused.detail or "").startswith("login"):
        return {"login": _(LOGIN_ERROR)}
    return None


async def find_members(
    conn: Any, principal: Any, q: str, after: uuid.UUID | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Members by id, by the phone number (login) a resident person of theirs signs in
    with, and by name or member number (part of either, any case); the phone's match first."""
    q = q.strip()[:SEARCH_MAX]
    try:
        as_id = uuid.UUID(q) if q else None
    except ValueError:
        as_id = None
    if as_id is not None:
        try:
            party, accts = await community.get_party(conn, principal, PartyKind.MEMBER, as_id)
        except NotFound:
            return [], None
        return [community.party_view(party, {a: str(acc.id) for a, acc in accts.items()})], None
    items, next_cursor = await community.search_parties(conn, principal, PartyKind.MEMBER, q, after, limit)
    if q and after is None:
        found = await accounts.neighbour(conn, principal, q)
        if found is not None:
            party, accts = await community.get_party(conn, principal, PartyKind.MEMBER, found["member_id"])
            view = community.party_view(party, {a: str(acc.id) for a, acc in accts.items()})
            view["phone"] = accounts.normalise_login(q)
            items = [view, *(i for i in items if i["id"] != view["id"])]
    return items, next_cursor


async def _residents(conn: Any, principal: Any, member_id: uuid.UUID) -> list[dict[str, Any]]:
    """The member's resident people (who sign in as them), each with their recent cards."""
    rows = await people_queries.people_of_community(
        conn, principal.community_id, role=Role.RESIDENT.value, subject_id=member_id
    )
    out = []
    for row in rows:
        person = accounts.person_view(row)
        cards = [
            {
                **link,
                "made": _when(link["created_at"]),
                "used": _when(link["used_at"]),
                "expires": _when(link["expires_at"]),
                "open": link["used_at"] is None and link["revoked_at"] is None,
            }
            for link in await links.links_of(conn, principal, row.id)
        ]
        out.append({**person, "cards": cards})
    return out


class MemberPages(Controller):
    path = "/staff/members"

    # --- the list and registering ---------------------------------------------------------------

    async def _list(
        self, request: Request, q: str = "", cursor: str | None = None, status: int = 200, **extra: Any
    ) -> Response[Any]:
        async with web.engine(request).connect() as conn:
            items, next_cursor = await find_members(
                conn, web.principal(request), q, web.uuid_cursor(cursor), PAGE_SIZE
            )
        context = {
            "items": items,
            "next_cursor": next_cursor,
            "q": q,
            "first_page": not cursor,
            "form": {},
            "errors": {},
            **extra,
        }
        if is_htmx(request) and status == 200:
            return render(request, "admin/_members.html", **context)
        return render(request, "admin/members.html", status, **context)

    @get("/", opt=READ)
    async def members(
        self,
        request: Request,
        q: str = Parameter(query="q", default="", max_length=SEARCH_MAX),
        cursor: str | None = Parameter(query="cursor", default=None, max_length=40),
    ) -> Response[Any]:
        return await self._list(request, q.strip(), cursor)

    @post("/", opt=ADMIN, status_code=303)
    async def register(self, request: Request) -> Response[Any]:
        """``POST /v1/members``'s service; with a phone number, ``POST /v1/people``'s too
        (a resident person who signs in as the member), in the same transaction: both or
        neither."""
        values = await forms.read_form(request)
        name, login = values.get("display_name", ""), values.get("login") or None
        principal = web.principal(request)
        try:
            async with web.engine(request).begin() as conn:
                member = await community.create_party(
                    conn, principal.community_id, PartyKind.MEMBER, name, values.get("external_ref") or None
                )
                if login is not None:
                    await accounts.create_person(
                        conn,
                        principal,
                        role=Role.RESIDENT.value,
                        subject_id=uuid.UUID(member["id"]),
                        display_name=name,
                        login=login,
                        password=None,
                    )
        except DomainError as refused:
            errors = _login_errors(request, refused) or party_errors(request, refused, "display_name")
            return await self._list(request, status=refused.status, form=values, errors=errors)
        return see_other(f"/staff/members/{member['id']}?added=1")

    # --- one member -----------------------------------------------------------------------------

    async def _member(
        self, request: Request, member_id: uuid.UUID, status: int = 200, **extra: Any
    ) -> Response[Any]:
        principal = web.principal(request)
        asset = request.query_params.get("asset", "HOUR")
        asset = asset if asset in ASSETS else "HOUR"
        redemptions_of = _member_redemptions(request)
        async with web.engine(request).connect() as conn:
            party, accts = await community.get_party(conn, principal, PartyKind.MEMBER, member_id)
            balances = {a: {"account_id": acc.id, **ledger.balance_view(acc)} for a, acc in accts.items()}
            star = await standing(conn, principal.community_id, member_id)
            entries, more_entries = await ledger.history_page(
                conn, principal, balances[asset]["account_id"], None, RECENT
            )
            records, more_records = await reading.records_page(
                conn, principal, member_id=member_id, limit=RECENT
            )
            redemptions, more_redemptions = (
                ([], None)
                if redemptions_of is None
                else await redemptions_of(conn, principal, member_id, None, RECENT)
            )
            residents = await _residents(conn, principal, member_id)
            activities_of = _member_activities(request)
            activities = (
                None
                if activities_of is None
                else await activities_of(conn, principal, member_id, datetime.now(UTC), limit=RECENT)
            )
        context = {
            "member": {
                "id": str(party.id),
                "display_name": party.display_name,
                "external_ref": party.external_ref,
                "created_at": party.created_at,
            },
            "hours": balances["HOUR"],
            "points": balances["POINT"],
            "star": star,
            "asset": asset,
            "entries": [_entry(e) for e in entries],
            "more_entries": more_entries is not None,
            "records": [_record(r) for r in records],
            "more_records": more_records is not None,
            "redemptions": None if redemptions_of is None else [_redemption(x) for x in redemptions],
            "more_redemptions": more_redemptions is not None,
            "residents": residents,
            "no_shows": None if activities is None else activities["no_shows"],
            "default_hours": web.settings(request).sign_in_link_hours,
            "max_hours": links.MAX_HOURS,
            "form": {"display_name": party.display_name, "external_ref": party.external_ref or ""},
            "errors": {},
            "person_form": {},
            "person_errors": {},
            "notice": None,
            "card_error": None,
            **extra,
        }
        return render(request, "admin/member.html", status, **context)

    @get("/{member_id:uuid}", opt=READ)
    async def member(
        self,
        request: Request,
        member_id: uuid.UUID,
        added: str = Parameter(query="added", default="", max_length=2),
        saved: str = Parameter(query="saved", default="", max_length=2),
    ) -> Response[Any]:
        _ = templating.gettext(request)
        notice = None
        if added:
            notice = _("The member is registered.")
        elif saved:
            notice = _("Saved.")
        return await self._member(request, member_id, notice=notice)

    @post("/{member_id:uuid}", opt=ADMIN, status_code=303)
    async def edit(self, request: Request, member_id: uuid.UUID) -> Response[Any]:
        """Correct the member's name or member number (``community.update_party``)."""
        values = await forms.read_form(request)
        try:
            async with web.engine(request).begin() as conn:
                await community.update_party(
                    conn,
                    web.principal(request),
                    PartyKind.MEMBER,
                    member_id,
                    values.get("display_name", ""),
                    values.get("external_ref") or None,
                )
        except DomainError as refused:
            if refused.slug == "not-found":
                raise
            errors = party_errors(request, refused, "display_name")
            return await self._member(request, member_id, refused.status, form=values, errors=errors)
        return see_other(f"/staff/members/{member_id}?saved=1")

    @post("/{member_id:uuid}/person", opt=ADMIN, status_code=303)
    async def add_person(self, request: Request, member_id: uuid.UUID) -> Response[Any]:
        """A resident person who signs in as the member (``POST /v1/people``'s service),
        with a phone number to sign in with, or none (then a card signs them in)."""
        values = await forms.read_form(request)
        principal = web.principal(request)
        try:
            async with web.engine(request).begin() as conn:
                party, _accts = await community.get_party(conn, principal, PartyKind.MEMBER, member_id)
                await accounts.create_person(
                    conn,
                    principal,
                    role=Role.RESIDENT.value,
                    subject_id=member_id,
                    display_name=party.display_name,
                    login=values.get("login") or None,
                    password=None,
                )
        except DomainError as refused:
            errors = _login_errors(request, refused)
            if errors is None:
                raise
            return await self._member(
                request, member_id, refused.status, person_form=values, person_errors=errors
            )
        return see_other(f"/staff/members/{member_id}#sign-in")

    @post("/{member_id:uuid}/card", opt=ADMIN, status_code=200)
    async def card(self, request: Request, member_id: uuid.UUID) -> Response[Any]:
        """A printable member card: the member's name and number and the QR code of a
        one-time sign-in link for their resident person (``links.issue_link``). Shown
        once, in this answer: the link is stored only as a hash."""
        _ = templating.gettext(request)
        values = await forms.read_form(request)
        try:
            person_id = uuid.UUID(values.get("person_id", ""))
        except ValueError:
            raise BadRequest("person_id is the id of the member's resident person") from None
        raw_hours = values.get("hours", "")
        if not raw_hours.isdigit() or not 1 <= int(raw_hours[:6]) <= links.MAX_HOURS:
            return await self._member(request, member_id, 400, card_error=_(HOURS_ERROR))
        principal = web.principal(request)
        async with web.engine(request).begin() as conn:
            party, _accts = await community.get_party(conn, principal, PartyKind.MEMBER, member_id)
            person = await accounts.get_person(conn, principal, person_id)
            if person.subject_id != member_id or person.role != Role.RESIDENT.value:
                raise NotFound(f"person {person_id} does not sign in as member {member_id}")
            link = await links.issue_link(conn, principal, person_id, int(raw_hours))
        url = sign_in_url(request, link["path"])
        response = render(
            request,
            "admin/member_card.html",
            member={
                "id": str(party.id),
                "display_name": party.display_name,
                "external_ref": party.external_ref,
            },
            link=link,
            expires=_when(link["expires_at"]),
            url=url,
            qr=qr_svg(url, _("Sign-in code for %(name)s") % {"name": link["display_name"]}),
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    # --- a member's lists, page by page ---------------------------------------------------------

    @get("/{member_id:uuid}/history", opt=READ)
    async def history(
        self,
        request: Request,
        member_id: uuid.UUID,
        asset: str = Parameter(query="asset", default="HOUR", max_length=10),
        cursor: str | None = Parameter(query="cursor", default=None, max_length=20),
    ) -> Response[Any]:
        asset = asset if asset in ASSETS else "HOUR"
        before = web.int_cursor(cursor)
        principal = web.principal(request)
        async with web.engine(request).connect() as conn:
            party, accts = await community.get_party(conn, principal, PartyKind.MEMBER, member_id)
            balance = {"account_id": accts[asset].id, **ledger.balance_view(accts[asset])}
            items, next_cursor = await ledger.history_page(
                conn, principal, accts[asset].id, before, LIST_PAGE
            )
        return render(
            request,
            "admin/member_list.html",
            what="history",
            title=templating.gettext(request)(TITLES["history"]) % {"name": party.display_name},
            member={"id": str(party.id), "display_name": party.display_name},
            asset=asset,
            balance=balance,
            items=[_entry(e) for e in items],
            next_cursor=next_cursor,
            first_page=before is None,
        )

    @get("/{member_id:uuid}/records", opt=READ)
    async def records(
        self,
        request: Request,
        member_id: uuid.UUID,
        cursor: str | None = Parameter(query="cursor", default=None, max_length=100),
    ) -> Response[Any]:
        principal = web.principal(request)
        async with web.engine(request).connect() as conn:
            party, _accts = await community.get_party(conn, principal, PartyKind.MEMBER, member_id)
            items, next_cursor = await reading.records_page(
                conn, principal, member_id=member_id, cursor=cursor or None, limit=LIST_PAGE
            )
        return render(
            request,
            "admin/member_list.html",
            what="records",
            title=templating.gettext(request)(TITLES["records"]) % {"name": party.display_name},
            member={"id": str(party.id), "display_name": party.display_name},
            items=[_record(r) for r in items],
            next_cursor=next_cursor,
            first_page=not cursor,
        )

    @get("/{member_id:uuid}/redemptions", opt=READ)
    async def redemptions(
        self,
        request: Request,
        member_id: uuid.UUID,
        cursor: str | None = Parameter(query="cursor", default=None, max_length=40),
    ) -> Response[Any]:
        redemptions_of = _member_redemptions(request)
        if redemptions_of is None:
            raise NotFound("the redemptions are not wired into this app")
        principal = web.principal(request)
        async with web.engine(request).connect() as conn:
            party, _accts = await community.get_party(conn, principal, PartyKind.MEMBER, member_id)
            items, next_cursor = await redemptions_of(
                conn, principal, member_id, web.uuid_cursor(cursor), LIST_PAGE
            )
        return render(
            request,
            "admin/member_list.html",
            what="redemptions",
            title=templating.gettext(request)(TITLES["redemptions"]) % {"name": party.display_name},
            member={"id": str(party.id), "display_name": party.display_name},
            items=[_redemption(x) for x in items],
            next_cursor=next_cursor,
            first_page=not cursor,
        )
