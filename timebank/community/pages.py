"""Console pages of the community package (issue 15): partner merchants (list, search,
register) and the API keys of integrations (list without secrets, issue, revoke).

Staff (admin) act; the supervisory board (auditor) reads the same pages without their
forms, and its forged posts are refused by the routes' ``opt`` (403). Thin: each
handler calls the service its API route calls (``/v1/merchants``, ``/v1/api-keys``)
with the signed-in person's principal. The organisations' page, which also sets the
policy's trusted organisations, is the volunteer package's (``policy_pages``): the
policy's service sits above this package.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from timebank import web
from timebank.community import service
from timebank.core.access import access
from timebank.core.problems import DomainError
from timebank.core.roles import ROLE_SUBJECT_KIND, PartyKind, Role
from timebank.web import forms, messages, templating
from timebank.web.i18n import N_
from timebank.web.templating import render, see_other

ADMIN = access(Role.ADMIN)
READ = access(Role.ADMIN, Role.AUDITOR)
PAGE_SIZE = 25
KEYS_PAGE = 50
SEARCH_MAX = 100

ROLE_NAMES = {
    Role.ADMIN: N_("Community staff"),
    Role.AUDITOR: N_("Supervisory board member"),
    Role.RECORDER: N_("Organisation recorder"),
    Role.MERCHANT: N_("Merchant staff"),
    Role.RESIDENT: N_("Resident"),
}
SUBJECT_HINTS = {
    Role.ADMIN: N_("Acts for the community: no subject."),
    Role.AUDITOR: N_("Acts for a member of the supervisory board."),
    Role.RECORDER: N_("Acts for an organisation."),
    Role.MERCHANT: N_("Acts for a merchant."),
    Role.RESIDENT: N_("Acts for a member."),
}
NAME_ERROR = N_("Give a name of 1 to 200 characters.")
REF_ERROR = N_("The reference is at most 200 characters.")
REF_TAKEN = N_("Another one already has this reference.")
KEY_ROLE_ERROR = N_("Choose what the key may do.")
KEY_SUBJECT_ERROR = N_(
    "Give the id of the party the key acts for: an organisation for a recorder, a merchant for "
    "merchant staff, a member for a resident or a board member; none for community staff."
)
KEY_LABEL_ERROR = N_("The label is at most 200 characters.")
LAST_ADMIN_KEY = N_("This is the community's last staff key. Issue another staff key before revoking it.")


def is_htmx(request: Request) -> bool:
    """A search box asking for the list alone (htmx), not a whole page."""
    return request.headers.get("hx-request") == "true"


def party_errors(request: Request, refused: DomainError, name_field: str) -> dict[str, str]:
    """A registration's refusal as per-field sentences in the page's language."""
    _ = templating.gettext(request)
    detail = refused.detail or ""
    if refused.slug == "duplicate-external-ref":
        return {"external_ref": _(REF_TAKEN)}
    if refused.slug == "invalid-request" and detail.startswith("external_ref"):
        return {"external_ref": _(REF_ERROR)}
    if refused.slug == "invalid-request":
        return {name_field: _(NAME_ERROR)}
    return {"general": messages.explain(refused, _)}


async def party_list(
    request: Request, kind: PartyKind, q: str, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    async with web.engine(request).connect() as conn:
        return await service.search_parties(
            conn, web.principal(request), kind, q[:SEARCH_MAX], web.uuid_cursor(cursor), PAGE_SIZE
        )


class MerchantPages(Controller):
    path = "/staff/merchants"

    async def _page(
        self, request: Request, q: str = "", cursor: str | None = None, status: int = 200, **extra: Any
    ) -> Response[Any]:
        items, next_cursor = await party_list(request, PartyKind.MERCHANT, q, cursor)
        context = {
            "kind": "merchant",
            "items": items,
            "next_cursor": next_cursor,
            "q": q,
            "cursor": cursor or "",
            "first_page": not cursor,
            "form": {},
            "errors": {},
            "added": None,
            "notice": None,
            **extra,
        }
        if is_htmx(request) and status == 200:
            return render(request, "admin/_parties.html", **context)
        return render(request, "admin/parties.html", status, **context)

    @get("/", opt=READ)
    async def merchants(
        self,
        request: Request,
        q: str = Parameter(query="q", default="", max_length=SEARCH_MAX),
        cursor: str | None = Parameter(query="cursor", default=None, max_length=40),
        added: uuid.UUID | None = Parameter(query="added", default=None),
    ) -> Response[Any]:
        shown = None
        if added is not None:
            async with web.engine(request).connect() as conn:
                party, _accounts = await service.get_party(
                    conn, web.principal(request), PartyKind.MERCHANT, added
                )
            shown = party.display_name
        return await self._page(request, q.strip(), cursor, added=shown)

    @post("/", opt=ADMIN, status_code=303)
    async def register(self, request: Request) -> Response[Any]:
        """``POST /v1/merchants``'s service."""
        values = await forms.read_form(request)
        try:
            async with web.engine(request).begin() as conn:
                view = await service.create_party(
                    conn,
                    web.principal(request).community_id,
                    PartyKind.MERCHANT,
                    values.get("name", ""),
                    values.get("external_ref") or None,
                )
        except DomainError as refused:
            errors = party_errors(request, refused, "name")
            return await self._page(request, status=refused.status, form=values, errors=errors)
        return see_other(f"/staff/merchants?added={view['id']}")


# --- API keys ------------------------------------------------------------------------------------


def _key_errors(request: Request, refused: DomainError) -> dict[str, str]:
    _ = templating.gettext(request)
    detail = refused.detail or ""
    if refused.slug == "not-found" or "subject" in detail:
        return {"subject_id": _(KEY_SUBJECT_ERROR)}
    if detail.startswith("label"):
        return {"label": _(KEY_LABEL_ERROR)}
    if detail.startswith("role"):
        return {"role": _(KEY_ROLE_ERROR)}
    return {"general": messages.explain(refused, _)}


class KeyPages(Controller):
    """The API keys of integrations (a volunteer platform's import, a shop's till): the
    same services as ``/v1/api-keys``. A key is shown once, when it is issued."""

    path = "/staff/keys"

    async def _page(
        self, request: Request, cursor: str | None = None, status: int = 200, **extra: Any
    ) -> Response[Any]:
        principal = web.principal(request)
        async with web.engine(request).connect() as conn:
            keys = await service.list_keys(conn, principal)
            # newest first; a page of KEYS_PAGE after the key named by the cursor
            keys.reverse()
            start = 0
            if cursor:
                after = str(web.uuid_cursor(cursor))
                start = next((i + 1 for i, k in enumerate(keys) if k["id"] == after), len(keys))
            shown = keys[start : start + KEYS_PAGE]
            subjects = {uuid.UUID(k["subject_id"]) for k in shown if k["subject_id"]}
            form = extra.get("form") or {}
            wanted = form.get("subject_id") or ""
            try:
                wanted_id = uuid.UUID(wanted) if wanted else None
            except ValueError:
                wanted_id = None
            if wanted_id is not None:
                subjects.add(wanted_id)
            names = await service.party_names(conn, principal.community_id, subjects)
        context = {
            "keys": shown,
            "next_cursor": shown[-1]["id"] if start + KEYS_PAGE < len(keys) else None,
            "first_page": not cursor,
            "names": {str(k): v for k, v in names.items()},
            "subject_name": names.get(wanted_id) if wanted_id else None,
            "role_names": ROLE_NAMES,
            "subject_hints": SUBJECT_HINTS,
            "roles": list(ROLE_NAMES),
            "form": {},
            "errors": {},
            **extra,
        }
        return render(request, "admin/keys.html", status, **context)

    @get("/", opt=READ)
    async def keys(
        self,
        request: Request,
        cursor: str | None = Parameter(query="cursor", default=None, max_length=40),
        role: str = Parameter(query="role", default="", max_length=20),
        subject_id: str = Parameter(query="subject_id", default="", max_length=40),
    ) -> Response[Any]:
        """``role`` and ``subject_id`` fill the form in (an organisation's or a merchant's
        "issue a key" link)."""
        return await self._page(request, cursor, form={"role": role, "subject_id": subject_id})

    @post("/", opt=ADMIN, status_code=200)
    async def issue(self, request: Request) -> Response[Any]:
        """``POST /v1/api-keys``'s service; the answer shows the key, once."""
        values = await forms.read_form(request)
        _ = templating.gettext(request)
        role = values.get("role", "")
        subject = values.get("subject_id") or None
        if role in ROLE_NAMES and ROLE_SUBJECT_KIND[Role(role)] is None:
            subject = None
        try:
            subject_id = None if subject is None else uuid.UUID(subject)
        except ValueError:
            return await self._page(
                request, status=400, form=values, errors={"subject_id": _(KEY_SUBJECT_ERROR)}
            )
        try:
            async with web.engine(request).begin() as conn:
                key = await service.issue_key(
                    conn, web.principal(request), role, subject_id, values.get("label") or None
                )
                names = await service.party_names(
                    conn, web.principal(request).community_id, [subject_id] if subject_id else []
                )
        except DomainError as refused:
            return await self._page(
                request, status=refused.status, form=values, errors=_key_errors(request, refused)
            )
        response = render(
            request,
            "admin/key_created.html",
            key=key,
            subject_name=names.get(subject_id) if subject_id else None,
            role_names=ROLE_NAMES,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @post("/{key_id:uuid}/revoke", opt=ADMIN, status_code=303)
    async def revoke(self, request: Request, key_id: uuid.UUID) -> Response[Any]:
        """``DELETE /v1/api-keys/{id}``'s service."""
        _ = templating.gettext(request)
        try:
            async with web.engine(request).begin() as conn:
                await service.revoke_key(conn, web.principal(request), key_id)
        except DomainError as refused:
            error = _(LAST_ADMIN_KEY) if refused.slug == "last-admin-key" else messages.explain(refused, _)
            return await self._page(request, status=refused.status, errors={"general": error})
        request.app.state.key_cache.forget(key_id)
        return see_other("/staff/keys")


PAGES: list[ControllerRouterHandler] = [MerchantPages, KeyPages]
