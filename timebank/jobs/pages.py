"""The console's operations pages, for the community's staff and its board (read-only):

* ``GET /staff/operations``: operations at a glance. The scheduled jobs (last run,
  outcome, next run: ``jobs.service.schedule``, the runs ``GET /v1/jobs`` lists), the
  nightly audit's verdict (``jobs.service.last_audit``, as ``/health/ready``), the
  transparency log's latest checkpoint and what waits for it (``log.proofs.log_state``),
  the webhook's delivery state (``notifications.webhooks.delivery_state``) and the points
  expiring in the next 30 and 90 days (``points.service.expiring_ahead``).
* ``GET /staff/journal``: the community's transactions, newest first, filtered, a page at
  a time (``ledger.service.journal_page``); ``GET /staff/journal/{id}``: one transaction
  (``ledger.service.journal_transaction``, i.e. ``GET /v1/transactions/{id}`` with its
  legs), where it is in the transparency log (``log.proofs.inclusion``) and its receipt.

The journal lives here, not in ``timebank.ledger.pages``: its rows name the parties
(``community``) and say where each transaction is in the log (``log``), and both of
those packages import the ledger, so a ledger page importing them would make a cycle.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_timedelta
from litestar import Controller, Request, Response, get
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from timebank import web
from timebank.community import service as community
from timebank.core.access import access
from timebank.core.problems import NotFound
from timebank.core.roles import Role
from timebank.core.terms import Kind
from timebank.jobs import service as jobs
from timebank.ledger import service as ledger
from timebank.ledger.journal import MAX_OVER
from timebank.log import proofs
from timebank.notifications import webhooks
from timebank.points import service as points
from timebank.web import templating
from timebank.web.i18n import N_
from timebank.web.templating import render

READ = access(Role.ADMIN, Role.AUDITOR)

# --- words ---------------------------------------------------------------------------------------

JOB_NAMES = {
    "points-expiry": (
        N_("Points expiry"),
        N_("Takes the points left in lots past their expiry date. Once a day."),
    ),
    "expiry-reminders": (
        N_("Expiry reminders"),
        N_("Reminds members 30 and 7 days before their points expire. Once a day."),
    ),
    "activity-reminders": (
        N_("Activity reminders"),
        N_("Reminds signed-up volunteers the day before an activity. Once a day."),
    ),
    "hold-timeouts": (
        N_("Time limits of holds"),
        N_("Releases vouchers and other holds whose time is up. Every minute."),
    ),
    "webhook-deliveries": (
        N_("Webhook deliveries"),
        N_("Sends the reminders to the community's webhook, and retries what failed. Every minute."),
    ),
    "log-checkpoints": (
        N_("Public log"),
        N_("Adds new transactions to the public log and signs a checkpoint. Every minute."),
    ),
    "report-rollups": (
        N_("Report totals"),
        N_("Folds the last minutes' ledger totals that the reports read into one row an hour. Every minute."),
    ),
    "audit": (
        N_("Nightly audit"),
        N_("Checks every balance, every points lot, the report totals and the public log. Every night."),
    ),
    "idempotency-retention": (
        N_("Old request keys"),
        N_("Forgets the answers kept for repeated requests once their time is up. Once a day."),
    ),
}
RUN_STATUS = {"done": N_("Done"), "failed": N_("Failed"), "running": N_("Running")}

KIND_NAMES = {
    Kind.SERVICE_CREDIT: N_("Service credit"),
    Kind.TRANSFER: N_("Transfer"),
    Kind.DONATION: N_("Donation"),
    Kind.REDEMPTION: N_("Redemption"),
    Kind.EXPIRY: N_("Points expiry"),
    Kind.REVERSAL: N_("Reversal"),
    Kind.ADJUSTMENT: N_("Adjustment"),
    Kind.CROSSING: N_("Crossing between communities"),
    Kind.SETTLEMENT: N_("District settlement"),
}
PHASE_NAMES = {
    "pending": N_("Hold"),
    "post": N_("Hold completed"),
    "void": N_("Hold released"),
    "expire": N_("Hold timed out"),
}
STATUS_NAMES = {
    "posted": N_("Posted"),
    "pending": N_("Held, not yet completed"),
    "voided": N_("Released"),
    "expired": N_("Timed out"),
}
LAYER_NAMES = {"posted": N_("moved"), "pending": N_("held"), "release": N_("released")}
SYSTEM_NAMES = {
    "issuance": N_("Community issuance"),
    "fund": N_("Community fund"),
    "expired": N_("Expired points"),
    "clearing": N_("District clearing"),
    "exchange": N_("District exchange"),
}

NOT_AN_ID = N_("Paste the id of a member, organisation, merchant or account (36 characters, with dashes).")
NO_SUCH_HOLDER = N_("No member, organisation, merchant or account of this community has this id.")
NOT_A_DAY = N_("Choose a day.")
DAYS_ORDER = N_("The first day is after the last day.")
NOT_AN_AMOUNT = N_("Type a number, such as 2 or 1.5.")


def _age(request: Request, moment: datetime, now: datetime) -> str:
    return format_timedelta(now - moment, locale=templating.formats(request).locale, threshold=1.1)


# --- operations ----------------------------------------------------------------------------------


class OperationsPages(Controller):
    path = "/staff/operations"

    @get("/", opt=READ)
    async def operations(self, request: Request) -> Response[Any]:
        who = request.scope["auth"]
        principal = web.principal(request)
        now = datetime.now(UTC)
        zone = ZoneInfo(who.timezone)
        async with web.engine(request).connect() as conn:
            schedule = await jobs.schedule(conn, principal.community_id, zone, now)
            audit = await jobs.last_audit(conn)
            log = await proofs.log_state(conn, principal.community_id)
            hooks = await webhooks.delivery_state(conn, principal.community_id)
            expiring = await points.expiring_ahead(conn, principal, now)
        checkpoint = log["checkpoint"]
        ages = {
            "checkpoint": checkpoint and _age(request, datetime.fromisoformat(checkpoint["created_at"]), now),
            "waiting": log["oldest_waiting_at"]
            and _age(request, datetime.fromisoformat(log["oldest_waiting_at"]), now),
        }
        return render(
            request,
            "ops/operations.html",
            schedule=schedule,
            audit=audit,
            log=log,
            hooks=hooks,
            webhook_configured=str(principal.community_id) in web.settings(request).webhooks,
            expiring=expiring,
            ages=ages,
            failed_jobs=sum(1 for j in schedule if j["last_run"] and j["last_run"]["status"] == "failed"),
            job_names=JOB_NAMES,
            run_status=RUN_STATUS,
        )


# --- the journal ---------------------------------------------------------------------------------


def _read_filters(
    request: Request, kind: str, first: str, last: str, holder: str, over: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The journal's filters from the address, and a sentence for each one that is wrong."""
    _ = templating.gettext(request)
    values: dict[str, Any] = {"kind": kind if kind in KIND_NAMES else None}
    errors: dict[str, str] = {}
    for name, text in (("from", first), ("to", last)):
        values[name] = None
        if text:
            try:
                values[name] = date.fromisoformat(text)
            except ValueError:
                errors[name] = _(NOT_A_DAY)
    if values["from"] and values["to"] and values["from"] > values["to"]:
        errors["to"] = _(DAYS_ORDER)
    values["holder"] = None
    if holder:
        try:
            values["holder"] = uuid.UUID(holder)
        except ValueError:
            errors["holder"] = _(NOT_AN_ID)
    values["over"] = None
    if over:
        try:
            amount = Decimal(over.replace(",", ""))
            if not amount.is_finite() or amount < 0 or amount > MAX_OVER:
                raise InvalidOperation
            values["over"] = amount
        except InvalidOperation:
            errors["over"] = _(NOT_AN_AMOUNT)
    return values, errors


def _holders(
    request: Request, holders: dict[str, dict[str, Any]], names: dict[uuid.UUID, str]
) -> dict[str, dict[str, Any]]:
    """For each account: who holds it, as a page shows it: ``label`` (a party's name or a
    system account's role, in the page's language) and ``href`` (a party's transactions)."""
    _ = templating.gettext(request)
    out = {}
    for account_id, h in holders.items():
        party, system = h.get("party_id"), h.get("system_role")
        if system:
            out[account_id] = {"label": _(SYSTEM_NAMES[system]), "href": None, "party_id": None}
        else:
            out[account_id] = {
                "label": names.get(uuid.UUID(party)) or party,
                "href": f"/staff/journal?holder={party}",
                "party_id": party,
            }
    return out


def _words(request: Request, words: dict[str, str]) -> dict[str, str]:
    """Labels in the page's language, once per page (not once per row)."""
    _ = templating.gettext(request)
    return {k: _(v) for k, v in words.items()}


async def _party_names(
    conn: Any, community_id: uuid.UUID, holders: dict[str, dict[str, Any]]
) -> dict[uuid.UUID, str]:
    ids = {uuid.UUID(h["party_id"]) for h in holders.values() if h.get("party_id")}
    return await community.party_names(conn, community_id, ids) if ids else {}


def _query_string(values: dict[str, Any], **changes: Any) -> str:
    """The journal's address with these filters (and cursor), as a query string."""
    keep = {
        "kind": values.get("kind"),
        "from": values.get("from") and values["from"].isoformat(),
        "to": values.get("to") and values["to"].isoformat(),
        "holder": values.get("holder") and str(values["holder"]),
        "over": None if values.get("over") is None else str(values["over"]),
        **changes,
    }
    return urlencode({k: v for k, v in keep.items() if v})


class JournalPages(Controller):
    path = "/staff/journal"

    @get("/", opt=READ)
    async def journal(
        self,
        request: Request,
        kind: str = Parameter(default="", max_length=40),
        first: str = Parameter(query="from", default="", max_length=40),
        last: str = Parameter(query="to", default="", max_length=40),
        holder: str = Parameter(default="", max_length=100),
        over: str = Parameter(default="", max_length=40),
        cursor: str | None = Parameter(default=None, max_length=60),
    ) -> Response[Any]:
        who = request.scope["auth"]
        principal = web.principal(request)
        values, errors = _read_filters(
            request, kind, first.strip(), last.strip(), holder.strip(), over.strip()
        )
        form = {"kind": kind, "from": first, "to": last, "holder": holder, "over": over}
        page: dict[str, Any] = {"items": [], "next_cursor": None, "searched_to": None, "holder": None}
        accounts: dict[str, dict[str, Any]] = {}
        if not errors:
            query = ledger.JournalQuery(
                kind=values["kind"],
                first_day=values["from"],
                last_day=values["to"],
                holder=values["holder"],
                over=values["over"],
                cursor=cursor,
            )
            async with web.engine(request).connect() as conn:
                try:
                    page = await ledger.journal_page(conn, principal, query, ZoneInfo(who.timezone))
                except NotFound:
                    errors["holder"] = templating.gettext(request)(NO_SUCH_HOLDER)
                else:
                    holders = dict(page["accounts"])
                    for h in page["holder"] or []:
                        holders[h["account_id"]] = h
                    names = await _party_names(conn, principal.community_id, holders)
                    accounts = _holders(request, holders, names)
        filtered = any(values.get(k) is not None for k in ("kind", "from", "to", "holder", "over"))
        return render(
            request,
            "ops/journal.html",
            400 if errors else 200,
            page=page,
            accounts=accounts,
            form=form,
            errors=errors,
            filtered=filtered,
            first_page=cursor is None,
            next_query=page["next_cursor"] and _query_string(values, cursor=page["next_cursor"]),
            newest_query=_query_string(values),
            kinds=_words(request, KIND_NAMES),
            phase_names=_words(request, PHASE_NAMES),
            layer_names=_words(request, LAYER_NAMES),
        )

    @get("/{tx_id:uuid}", opt=READ)
    async def transaction(self, request: Request, tx_id: uuid.UUID) -> Response[Any]:
        principal = web.principal(request)
        async with web.engine(request).connect() as conn:
            tx = await ledger.journal_transaction(conn, principal, tx_id)
            log = await proofs.inclusion(conn, principal.community_id, tx_id)
            names = await _party_names(conn, principal.community_id, tx["accounts"])
        accounts = _holders(request, tx["accounts"], names)
        return render(
            request,
            "ops/transaction.html",
            tx=tx,
            log=log,
            accounts=accounts,
            kinds=_words(request, KIND_NAMES),
            phase_names=_words(request, PHASE_NAMES),
            status_names=_words(request, STATUS_NAMES),
            layer_names=_words(request, LAYER_NAMES),
        )


PAGES: list[ControllerRouterHandler] = [OperationsPages, JournalPages]
