"""The staff's approval queue and corrections queue (console, issue 15).

* ``/staff/approvals``: the submitted records (filters, sorts, pages by cursor), what
  each would credit, and why one may deserve a second look (``queue.py``'s "flagged").
  An admin picks records, confirms, and each record is approved through
  ``approval.approve`` under its own idempotency key (the form's key and the record's
  id: a resend answers the first answers) or rejected through ``approval.reject``
  with the reason; the result lists every record's outcome, with its receipt.
* ``/staff/approvals/records/{id}``: one record, its history of decisions, receipts and
  corrections; an admin asks for a correction or, being another admin, decides one
  (``corrections``: the same services as ``/v1/service-records/{id}/reversal...``).
* ``/staff/corrections``: the corrections waiting for a second admin, and the approved
  records one may ask a correction for.

The supervisory board (auditor) reads every page; every POST is for admins only.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank import web
from timebank.community import service as community
from timebank.core.access import access
from timebank.core.policy import current_policy
from timebank.core.problems import PROBLEM_BASE, BadRequest, DomainError, NotFound
from timebank.core.roles import PartyKind, Role
from timebank.ledger.idempotency import request_hash, run_idempotent
from timebank.people import accounts
from timebank.volunteer import approval, corrections, queue, reading
from timebank.volunteer.queries import WaitingFilter
from timebank.volunteer.records import decision_reason
from timebank.web import forms, messages, templating
from timebank.web.i18n import N_
from timebank.web.templating import render, safe_next, see_other

READ = access(Role.ADMIN, Role.AUDITOR)
ADMIN = access(Role.ADMIN)
PAGE_SIZE = 20
ORGANISATIONS_LISTED = 500  # in the filter's list

STATUS_WORDS = {
    "submitted": N_("Waiting for approval"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "reversed": N_("Reversed by a correction"),
}
SORT_WORDS = {
    "oldest": N_("Oldest service first"),
    "newest": N_("Newest service first"),
    "longest": N_("Longest first"),
}
FLAG_WORDS = {
    "long": N_("Long: half the daily cap or more"),
    "night": N_("At night (22:00 to 06:00)"),
    "late": N_("Recorded more than 30 days after the service"),
}
HISTORY_WORDS = {
    "recorded": N_("Recorded"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "correction_requested": N_("Correction asked for"),
    "correction_approved": N_("Correction approved: the credit was reversed"),
    "correction_refused": N_("Correction refused"),
}
DONE = {
    "requested": N_("The correction is asked for. Another admin must approve or refuse it."),
    "reversed": N_("The correction is approved: the record's hours and points were taken back."),
    "refused": N_("The correction is refused. The record stays approved."),
}
BY_YOU = N_("you")
BY_SYSTEM = N_("the system")
BY_KEY = N_("an API key")
NONE_CHOSEN = N_("Choose at least one record first.")
REASON_NEEDED = N_("Write why, in 1 to 500 characters. The volunteer and the organisation will see it.")
BAD_DATES = N_("Enter the days as dates, for example 2025-06-01.")
BAD_HOURS = N_("Hours are a whole number from 1 to 24.")
NOT_WAITING = N_("This correction is no longer waiting. Nothing was changed.")
NOT_CORRECTABLE = N_(
    "Only an approved record without a waiting correction can be corrected. Nothing was changed."
)


def _refusal(request: Request, slug: str) -> str:
    return messages.explain(slug, templating.gettext(request))


def _slug(problem: dict[str, Any]) -> str:
    return str(problem.get("type", "")).removeprefix(PROBLEM_BASE)


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _with_times(item: dict[str, Any]) -> dict[str, Any]:
    """A record's view with its times as datetimes (for ``fmt``)."""
    return {
        **item,
        "started": _moment(item["started_at"]),
        "ended": _moment(item["ended_at"]),
        "decided": _moment(item.get("decided_at")),
    }


async def _people_names(conn: AsyncConnection, request: Request, ids: set[Any]) -> dict[str, str]:
    """The names of the people among ``ids`` (an API key's id has none: left out)."""
    principal = web.principal(request)
    names = {}
    for i in {x for x in ids if x is not None}:
        try:
            person = await accounts.get_person(conn, principal, uuid.UUID(str(i)))
        except NotFound:
            continue
        names[str(i)] = person.display_name
    return names


def _by_name(request: Request, by: Any, people: dict[str, str]) -> str:
    """Who acted, in words: "you", a person's name, or an API key (or the system)."""
    _ = templating.gettext(request)
    if by is None:
        return _(BY_SYSTEM)
    if str(by) == str(request.scope["auth"].person_id):
        return _(BY_YOU)
    return people.get(str(by)) or _(BY_KEY)


def _decision_ids(values: list[tuple[str, Any]]) -> list[uuid.UUID]:
    """The records a form names (its ``record`` fields), in order, once each."""
    ids: list[uuid.UUID] = []
    for name, value in values:
        if name != "record" or not isinstance(value, str):
            continue
        try:
            rid = uuid.UUID(value.strip())
        except ValueError:
            raise BadRequest("record is the id of a service record") from None
        if rid not in ids:
            ids.append(rid)
    if len(ids) > queue.MAX_DECISION:
        raise BadRequest(f"at most {queue.MAX_DECISION} records at once")
    return ids


async def _decision_form(request: Request) -> tuple[dict[str, str], list[uuid.UUID]]:
    values = await forms.read_form(request)  # checks every field's text
    return values, _decision_ids((await request.form()).multi_items())


def _idem(values: dict[str, str]) -> str:
    try:
        return str(uuid.UUID(values.get("idem", "")))
    except ValueError:
        raise BadRequest("idem is the uuid the form was rendered with") from None


def _back(values: dict[str, str]) -> str:
    """The queue the form came from (its filters), to go back to."""
    return safe_next(values.get("back"), "/staff/approvals")


# --- the queue ------------------------------------------------------------------------------------


def _day_bounds(first: str, last: str, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """The instants a range of local days covers (either end may be open)."""
    since = datetime.combine(date.fromisoformat(first), time(0), zone) if first else None
    until = datetime.combine(date.fromisoformat(last) + timedelta(days=1), time(0), zone) if last else None
    return since, until


class Filters:
    """The queue's filters as the form shows them, and as the service takes them."""

    def __init__(self, **given: str) -> None:
        self.organisation = given.get("organisation", "")
        self.category = given.get("category", "")
        self.first = given.get("first", "")
        self.last = given.get("last", "")
        self.hours = given.get("hours", "")
        self.flagged = given.get("flagged", "") == "1"
        self.sort = given.get("sort", "") if given.get("sort", "") in queue.SORTS else "oldest"
        self.errors: list[str] = []

    def query(self, **extra: str) -> str:
        """The filters as a query string (empty ones left out)."""
        pairs = {
            "organisation": self.organisation,
            "category": self.category,
            "from": self.first,
            "to": self.last,
            "hours": self.hours,
            "flagged": "1" if self.flagged else "",
            "sort": "" if self.sort == "oldest" else self.sort,
            **extra,
        }
        return urlencode({k: v for k, v in pairs.items() if v})

    @property
    def any(self) -> bool:
        return bool(
            self.organisation or self.category or self.first or self.last or self.hours or self.flagged
        )

    def service_filter(self, request: Request) -> WaitingFilter:
        _ = templating.gettext(request)
        f = WaitingFilter(sort=self.sort, flagged=self.flagged, category=self.category or None)
        try:
            f.organisation_id = uuid.UUID(self.organisation) if self.organisation else None
        except ValueError:
            self.organisation = ""
        try:
            f.since, f.until = _day_bounds(self.first, self.last, ZoneInfo(request.scope["auth"].timezone))
        except ValueError:
            self.errors.append(_(BAD_DATES))
            self.first = self.last = ""
        if self.hours:
            if self.hours.isdigit() and 1 <= int(self.hours) <= 24:
                f.min_minutes = int(self.hours) * 60
            else:
                self.errors.append(_(BAD_HOURS))
                self.hours = ""
        return f


async def _queue_page(
    request: Request, filters: Filters, cursor: str, pick_all: bool, note: str
) -> Response[Any]:
    principal = web.principal(request)
    wanted = filters.service_filter(request)
    async with web.engine(request).connect() as conn:
        items, nxt, total = await queue.waiting_page(conn, principal, wanted, cursor or None, PAGE_SIZE)
        _, policy, _ = await current_policy(conn, principal.community_id)
        organisations, _ = await community.list_parties(
            conn, principal, PartyKind.ORGANISATION, None, ORGANISATIONS_LISTED
        )
    _ = templating.gettext(request)
    context = {
        "items": [_with_times(i) for i in items],
        "next_cursor": nxt,
        "total": total,
        "first_page": not cursor,
        "filters": filters,
        "query": filters.query(),
        "next_url": "/staff/approvals?" + filters.query(cursor=nxt or ""),
        "pick_url": "/staff/approvals?" + filters.query(cursor=cursor, all="1"),
        "unpick_url": "/staff/approvals?" + filters.query(cursor=cursor),
        "here": "/staff/approvals?" + filters.query(cursor=cursor),  # where the forms come back to
        "organisations": [{"id": o["id"], "name": o.get("name", "")} for o in organisations],
        "categories": {c.code: c.name for c in policy.categories},
        "sorts": SORT_WORDS,
        "flag_words": FLAG_WORDS,
        "pick_all": pick_all,
        "error": _(NONE_CHOSEN) if note == "none" else None,
        "filter_errors": filters.errors,
    }
    if request.headers.get("hx-request") == "true":  # the filters changed: the list alone, swapped in
        return render(request, "approvals/_queue.html", **context)
    return render(request, "approvals/queue.html", 400 if filters.errors else 200, **context)


def _totals(items: list[dict[str, Any]]) -> dict[str, int]:
    waiting = [i for i in items if i["status"] == "submitted"]
    return {
        "count": len(waiting),
        "minutes": sum(i["minutes"] for i in waiting),
        "points": sum(i["points_if_approved"] for i in waiting),
        "members": len({i["member_id"] for i in waiting}),
    }


async def _confirm_page(
    request: Request,
    do: str,
    ids: list[uuid.UUID],
    back: str,
    status: int = 200,
    *,
    reason: str = "",
    error: str | None = None,
    idem: str | None = None,
) -> Response[Any]:
    principal = web.principal(request)
    async with web.engine(request).connect() as conn:
        items = await queue.records_for_decision(conn, principal, ids)
        _, policy, _ = await current_policy(conn, principal.community_id)
    if not items:
        raise NotFound("none of these records")
    return render(
        request,
        "approvals/confirm.html",
        status,
        do=do,
        items=[_with_times(i) for i in items],
        totals=_totals(items),
        idem=idem or str(uuid.uuid4()),
        back=back,
        reason=reason,
        error=error,
        status_words=STATUS_WORDS,
        categories={c.code: c.name for c in policy.categories},
    )


async def _approve_one(request: Request, idem: str, record_id: uuid.UUID) -> dict[str, Any]:
    """``POST /v1/service-records/{id}/approve``'s service for one record, under the key
    of this form and record: run once, whatever is resent."""
    who = web.principal(request)
    person = request.scope["auth"].person_id
    path = f"/staff/approvals/records/{record_id}/approve"

    async def action(conn: Any, claim: Any) -> dict[str, Any]:
        return await approval.approve(conn, who, record_id, claim)

    status, body, replayed = await run_idempotent(
        web.engine(request),
        who,
        f"page:{person}:{idem}:{record_id}",
        request_hash(who, "POST", path, None),
        action,
        instance=path,
        render=approval.decision_view,
    )
    if status == 201:
        return {
            "ok": True,
            "points": body["record"]["points"],
            "transaction_id": body["transaction"]["id"],
            "replayed": replayed,
        }
    return {"ok": False, "why": _refusal(request, _slug(body))}


async def _reject_one(request: Request, reason: str, record_id: uuid.UUID) -> dict[str, Any]:
    """``POST /v1/service-records/{id}/reject``'s service for one record, in a transaction of its own."""
    try:
        async with web.engine(request).begin() as conn:
            await approval.reject(conn, web.principal(request), record_id, reason)
    except DomainError as refused:
        return {"ok": False, "why": messages.explain(refused, templating.gettext(request))}
    return {"ok": True}


async def _result_page(
    request: Request,
    do: str,
    before: list[dict[str, Any]],
    outcomes: dict[uuid.UUID, dict[str, Any]],
    back: str,
) -> Response[Any]:
    ids = [uuid.UUID(i["id"]) for i in before]
    async with web.engine(request).connect() as conn:
        now = {i["id"]: i for i in await queue.records_for_decision(conn, web.principal(request), ids)}
    rows = [{**_with_times(now.get(i["id"], i)), "outcome": outcomes[uuid.UUID(i["id"])]} for i in before]
    return render(
        request,
        "approvals/result.html",
        do=do,
        rows=rows,
        done=sum(1 for r in rows if r["outcome"]["ok"]),
        failed=sum(1 for r in rows if not r["outcome"]["ok"]),
        back=back,
        status_words=STATUS_WORDS,
    )


class ApprovalPages(Controller):
    """The approval queue, a record's page and the decisions on them."""

    path = "/staff/approvals"

    @get("/", opt=READ)
    async def waiting(
        self,
        request: Request,
        organisation: str = Parameter(default="", max_length=36),
        category: str = Parameter(default="", max_length=50),
        first: str = Parameter(query="from", default="", max_length=10),
        last: str = Parameter(query="to", default="", max_length=10),
        hours: str = Parameter(default="", max_length=2),
        flagged: str = Parameter(default="", max_length=1),
        sort: str = Parameter(default="", max_length=10),
        cursor: str = Parameter(default="", max_length=120),
        pick: str = Parameter(query="all", default="", max_length=1),
        note: str = Parameter(default="", max_length=10),
    ) -> Response[Any]:
        filters = Filters(
            organisation=organisation,
            category=category,
            first=first,
            last=last,
            hours=hours,
            flagged=flagged,
            sort=sort,
        )
        return await _queue_page(request, filters, cursor, pick == "1", note)

    @post("/confirm", opt=ADMIN, status_code=200)
    async def confirm(self, request: Request) -> Response[Any]:
        """What the admin chose, to look at once more (nothing changes here): the records,
        their hours and points in all, and for a rejection the reason to give."""
        values, ids = await _decision_form(request)
        do = values.get("do", "")
        for one, action in (("approve_one", "approve"), ("reject_one", "reject")):
            if values.get(one):
                ids, do = _decision_ids([("record", values[one])]), action
        back = _back(values)
        if do not in ("approve", "reject"):
            raise BadRequest("do is approve or reject")
        if not ids:
            joiner = "&" if "?" in back else "?"
            return see_other(f"{back}{joiner}note=none")
        return await _confirm_page(request, do, ids, back)

    @post("/approve", opt=ADMIN, status_code=200)
    async def approve(self, request: Request) -> Response[Any]:
        """Each record its own approval (own key, own transaction, own receipt); the
        answer says for each whether it was approved, and if not why."""
        values, ids = await _decision_form(request)
        idem = _idem(values)
        if not ids:
            raise BadRequest("name at least one record")
        async with web.engine(request).connect() as conn:
            before = await queue.records_for_decision(conn, web.principal(request), ids)
        outcomes = {uuid.UUID(i["id"]): await _approve_one(request, idem, uuid.UUID(i["id"])) for i in before}
        return await _result_page(request, "approve", before, outcomes, _back(values))

    @post("/reject", opt=ADMIN, status_code=200)
    async def reject(self, request: Request) -> Response[Any]:
        """Each record rejected on its own with the reason; a reason is required."""
        values, ids = await _decision_form(request)
        if not ids:
            raise BadRequest("name at least one record")
        reason = values.get("reason", "")
        try:
            reason = decision_reason(reason, "a rejection")
        except BadRequest:
            _ = templating.gettext(request)
            return await _confirm_page(
                request, "reject", ids, _back(values), 400, reason=reason, error=_(REASON_NEEDED)
            )
        async with web.engine(request).connect() as conn:
            before = await queue.records_for_decision(conn, web.principal(request), ids)
        outcomes = {
            uuid.UUID(i["id"]): await _reject_one(request, reason, uuid.UUID(i["id"])) for i in before
        }
        return await _result_page(request, "reject", before, outcomes, _back(values))

    # --- one record -------------------------------------------------------------------------

    async def _record_page(
        self,
        request: Request,
        record_id: uuid.UUID,
        status: int = 200,
        *,
        error: str | None = None,
        notice: str | None = None,
        reason: str = "",
    ) -> Response[Any]:
        async with web.engine(request).connect() as conn:
            found = await queue.record_history(conn, web.principal(request), record_id)
            rec = found["record"]
            people = await _people_names(
                conn, request, {e["by"] for e in found["history"]} | {rec["recorded_by"], rec["decided_by"]}
            )
            _, policy, _ = await current_policy(conn, web.principal(request).community_id)
        me = str(request.scope["auth"].person_id)
        waiting = found["open_reversal"]
        history = [{**e, "by_name": _by_name(request, e["by"], people)} for e in found["history"]]
        return render(
            request,
            "approvals/record.html",
            status,
            rec=_with_times(rec),
            history=history,
            waiting=waiting,
            waiting_requested=_moment(waiting["requested_at"]) if waiting else None,
            waiting_by=_by_name(request, waiting["requested_by"], people) if waiting else None,
            mine=waiting is not None and waiting["requested_by"] == me,
            categories={c.code: c.name for c in policy.categories},
            status_words=STATUS_WORDS,
            flag_words=FLAG_WORDS,
            history_words=HISTORY_WORDS,
            idem=str(uuid.uuid4()),
            error=error,
            notice=notice,
            reason=reason,
        )

    @get("/records/{record_id:uuid}", opt=READ)
    async def record(
        self, request: Request, record_id: uuid.UUID, done: str = Parameter(default="", max_length=20)
    ) -> Response[Any]:
        _ = templating.gettext(request)
        return await self._record_page(request, record_id, notice=_(DONE[done]) if done in DONE else None)

    @post("/records/{record_id:uuid}/reversal", opt=ADMIN, status_code=303)
    async def ask_correction(self, request: Request, record_id: uuid.UUID) -> Response[Any]:
        """``POST /v1/service-records/{id}/reversal``'s service: the first admin asks."""
        values = await forms.read_form(request)
        reason = values.get("reason", "")
        _ = templating.gettext(request)
        try:
            async with web.engine(request).begin() as conn:
                await corrections.request_reversal(conn, web.principal(request), record_id, reason)
        except DomainError as refused:
            if refused.slug == "not-found":
                raise
            sentence = {"invalid-request": _(REASON_NEEDED), "conflict": _(NOT_CORRECTABLE)}.get(
                refused.slug
            ) or messages.explain(refused, _)
            return await self._record_page(request, record_id, refused.status, error=sentence, reason=reason)
        return see_other(f"/staff/approvals/records/{record_id}?done=requested")

    @post("/records/{record_id:uuid}/reversal/approve", opt=ADMIN, status_code=303)
    async def approve_correction(self, request: Request, record_id: uuid.UUID) -> Response[Any]:
        """``POST /v1/service-records/{id}/reversal/approve``'s service, by a second admin,
        under the form's key (a resend answers the first answer)."""
        values = await forms.read_form(request)
        who = web.principal(request)
        person = request.scope["auth"].person_id

        async def action(conn: Any, claim: Any) -> dict[str, Any]:
            return await corrections.approve_reversal(conn, who, record_id, claim)

        status, body, _replayed = await run_idempotent(
            web.engine(request),
            who,
            f"page:{person}:{_idem(values)}",
            request_hash(who, "POST", request.url.path, None),
            action,
            instance=request.url.path,
            render=approval.decision_view,
        )
        if status == 201:
            return see_other(f"/staff/approvals/records/{record_id}?done=reversed")
        return await self._correction_refused(request, record_id, status, _slug(body))

    @post("/records/{record_id:uuid}/reversal/reject", opt=ADMIN, status_code=303)
    async def refuse_correction(self, request: Request, record_id: uuid.UUID) -> Response[Any]:
        """``POST /v1/service-records/{id}/reversal/reject``'s service, by a second admin."""
        await forms.read_form(request)
        try:
            async with web.engine(request).begin() as conn:
                await corrections.reject_reversal(conn, web.principal(request), record_id)
        except DomainError as refused:
            return await self._correction_refused(request, record_id, refused.status, refused.slug)
        return see_other(f"/staff/approvals/records/{record_id}?done=refused")

    async def _correction_refused(
        self, request: Request, record_id: uuid.UUID, status: int, slug: str
    ) -> Response[Any]:
        _ = templating.gettext(request)
        sentence = _(NOT_WAITING) if slug == "not-found" else _refusal(request, slug)
        return await self._record_page(request, record_id, status, error=sentence)


# --- corrections ----------------------------------------------------------------------------------


class CorrectionPages(Controller):
    """Corrections waiting for a second admin, and approved records to correct."""

    path = "/staff/corrections"

    @get("/", opt=READ)
    async def corrections(
        self,
        request: Request,
        cursor: str = Parameter(default="", max_length=120),
        approved: str = Parameter(default="", max_length=120),
    ) -> Response[Any]:
        principal = web.principal(request)
        async with web.engine(request).connect() as conn:
            waiting, nxt = await queue.corrections_waiting(conn, principal, cursor or None, PAGE_SIZE)
            records, approved_next = await reading.records_page(
                conn, principal, status="approved", cursor=approved or None, limit=PAGE_SIZE
            )
            names = await community.party_names(
                conn,
                principal.community_id,
                {uuid.UUID(r["member_id"]) for r in records}
                | {uuid.UUID(r["organisation_id"]) for r in records},
            )
            people = await _people_names(conn, request, {w["correction"]["requested_by"] for w in waiting})
            _, policy, _ = await current_policy(conn, principal.community_id)
        names_by_id = {str(k): v for k, v in names.items()}
        me = str(request.scope["auth"].person_id)
        return render(
            request,
            "approvals/corrections.html",
            waiting=[
                {
                    **_with_times(w),
                    "requested": _moment(w["correction"]["requested_at"]),
                    "requested_by_name": _by_name(request, w["correction"]["requested_by"], people),
                    "mine": w["correction"]["requested_by"] == me,
                    "idem": str(uuid.uuid4()),
                }
                for w in waiting
            ],
            next_cursor=nxt,
            first_page=not cursor,
            approved_items=[
                {
                    **_with_times(r),
                    "member_name": names_by_id.get(r["member_id"], ""),
                    "organisation_name": names_by_id.get(r["organisation_id"], ""),
                }
                for r in records
            ],
            approved_next=approved_next,
            approved_first=not approved,
            categories={c.code: c.name for c in policy.categories},
        )


PAGES: list[ControllerRouterHandler] = [ApprovalPages, CorrectionPages]
