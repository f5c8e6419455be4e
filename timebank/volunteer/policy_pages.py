"""Console pages of the community's policy (issue 15): the policy editor (each setting
with its meaning, checked as it is typed, a preview of its effect), its version history
with a field-by-field comparison of any two versions, and the organisations (list,
register, trusted for approval as recorded or not).

The policy is changed through the service ``PUT /v1/community/policy`` calls
(``approval.set_policy``, which checks the trusted organisations are the community's),
from a body read by the API's own ``decode_policy``: the same validation, field by
field. A change that reads the current version and writes the next holds the policy's
lock first (``policies.lock_policy``), so two changes never build on the same version.

Staff (admin) act; the supervisory board (auditor) reads the same pages without forms,
and its forged posts are refused by the routes' ``opt`` (403). The member pages live in
``member_pages`` (they read volunteer records and standing) and are listed here too.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from timebank import web
from timebank.community import service as community
from timebank.community.pages import PAGE_SIZE, SEARCH_MAX, is_htmx, party_errors
from timebank.core import policy as policies
from timebank.core.access import access
from timebank.core.policy import Policy
from timebank.core.problems import BadRequest, DomainError, NotFound
from timebank.core.roles import PartyKind, Role
from timebank.people import accounts
from timebank.volunteer.approval import set_policy
from timebank.volunteer.member_pages import MemberPages
from timebank.web import forms, templating
from timebank.web.i18n import N_
from timebank.web.templating import render, see_other

ADMIN = access(Role.ADMIN)
READ = access(Role.ADMIN, Role.AUDITOR)
STARS = range(6)
VERSIONS_PAGE = 20
SPARE_CATEGORY_ROWS = 2
MAX_CATEGORY_ROWS = 60
EXAMPLE_MINUTES = 120  # the preview's "a 2-hour service"
EXAMPLE_SECONDS = 107 * 60 + 30  # the preview's rounding example: 1 h 47 min 30 s

# The settings, in the form's order: what each means (docs/api.md, core/policy.py) and
# the sentence shown when the API's validation refuses it.
MEANINGS = {
    "points_per_hour": N_(
        "Love points earned for each approved hour of service, before the multiplier of the volunteer's star level."
    ),
    "tier_multipliers": N_(
        "Volunteers with more stars earn more points for the same hour: the points are multiplied by their "
        "star level's number (the VIP love exchange). Points are rounded down to a whole number."
    ),
    "star_thresholds_hours": N_(
        "The approved hours a volunteer needs in all, over their lifetime, for each star (star volunteers)."
    ),
    "daily_cap_minutes": N_(
        "The most service one volunteer may have recorded on one local day, in minutes; a record over it is refused."
    ),
    "rounding": N_(
        "How a record's length becomes minutes: in units of this many minutes, rounded down, to the nearest "
        "or up. A record shorter than one unit is refused."
    ),
    "points_expiry": N_(
        "When earned points expire: some months after they were earned, or at the end of the next calendar "
        "year. Residents are reminded 30 and 7 days before. Hours never expire."
    ),
    "categories": N_(
        "The kinds of service a record may have. The code is what files and the API use; the name is what "
        "people see. Leave both empty to remove a row."
    ),
    "trusted_organisations": N_(
        "The records of these organisations are approved as they are recorded, without waiting for staff. "
        "Choose them on the organisations page."
    ),
    "voucher_seconds": N_(
        "How long a resident's voucher (its code and QR code) stays valid at a shop's counter, in seconds; "
        "its points are held meanwhile."
    ),
    "public_page": N_(
        "The community's public page shows anyone, without signing in, the figures of the community (totals "
        "only, no names), the signed state of its public log and a checker for receipts and certificates."
    ),
    "withdraw_deadline_hours": N_(
        "A volunteer who withdraws from an activity later than this many hours before it starts counts as "
        "not coming (a no-show)."
    ),
    "backfilled_points": N_(
        "A service record typed in after the fact, without check-in at an activity, always earns hours; "
        "tick this for it to earn love points too."
    ),
}
FIELD_ERRORS = {
    "points_per_hour": N_("Points for an hour: a whole number from 0 to 1000."),
    "tier_multipliers": N_(
        "Each star level's multiplier is a number above 0 and at most 10, with at most 4 decimals, like 1.05."
    ),
    "star_thresholds_hours": N_(
        "The hours for stars 1 to 5 are whole numbers above 0, each more than the one before."
    ),
    "daily_cap_minutes": N_("The daily limit is a whole number of minutes from 1 to 1440 (24 hours)."),
    "rounding": N_(
        "The rounding unit is a whole number of minutes from 1 to 60, rounded down, to the nearest or up."
    ),
    "points_expiry": N_(
        "Points expire after a whole number of months from 1 to 120, or at the end of the next year."
    ),
    "categories": N_(
        "Give 1 to 50 categories, each with a code no other has and a name, each of 1 to 50 characters."
    ),
    "voucher_seconds": N_("A voucher stays valid for a whole number of seconds from 1 to 86400 (a day)."),
    "public_page": N_("The public page is either published or not."),
    "withdraw_deadline_hours": N_("The deadline to withdraw is a whole number of hours from 0 to 720."),
    "backfilled_points": N_("Records typed in after the fact either earn points or not."),
}
# The first field of each setting (where the cursor goes, what an error links to).
FIRST_FIELD = {
    "points_per_hour": "points_per_hour",
    "tier_multipliers": "tier_0",
    "star_thresholds_hours": "star_1",
    "daily_cap_minutes": "daily_cap_minutes",
    "rounding": "rounding_unit",
    "points_expiry": "expiry_kind",
    "categories": "cat_code_0",
    "voucher_seconds": "voucher_seconds",
    "public_page": "public_page",
    "withdraw_deadline_hours": "withdraw_deadline_hours",
    "backfilled_points": "backfilled_points",
}
ROUNDING_MODES = {"down": N_("Down"), "nearest": N_("To the nearest"), "up": N_("Up")}
EXPIRY_KINDS = {
    "months_after_credit": N_("Some months after they are earned"),
    "end_of_next_year": N_("At the end of the next calendar year"),
}
CHANGED_SINCE = N_(
    "Someone changed the policy since you opened this page, so your changes were not saved. The page now "
    "shows your changes over the newest version: check them and save again."
)
NOTHING_CHANGED = N_("Nothing was changed: the policy is already so.")
NOT_SAVED = N_("The policy was not saved. Please correct what is marked below.")
BAD_VERSIONS = N_("Choose two versions that exist.")


# --- the form ↔ the API's JSON ---------------------------------------------------------------------

_DIGITS = str.maketrans("０１２３４５６７８９．，", "0123456789.,")


def _number(raw: str) -> Any:
    """A typed whole number as an int (full-width digits and spaces forgiven); anything
    else stays text, for the API's validation to refuse by name."""
    text = raw.translate(_DIGITS).replace(" ", "")
    return int(text) if text.isdigit() and len(text) <= 12 else raw


def _decimal(raw: str) -> str:
    return raw.translate(_DIGITS).replace(" ", "").replace(",", ".")


def form_of(policy: Policy) -> dict[str, str]:
    """The form's fields for a policy."""
    form = {
        "points_per_hour": str(policy.points_per_hour),
        "daily_cap_minutes": str(policy.daily_cap_minutes),
        "rounding_unit": str(policy.rounding.unit_minutes),
        "rounding_mode": policy.rounding.mode,
        "expiry_kind": policy.points_expiry.kind,
        "expiry_months": str(policy.points_expiry.months),
        "voucher_seconds": str(policy.voucher_seconds),
        "categories": str(len(policy.categories) + SPARE_CATEGORY_ROWS),
    }
    if policy.public_page:
        form["public_page"] = "1"
    form["withdraw_deadline_hours"] = str(policy.withdraw_deadline_hours)
    if policy.backfilled_points:
        form["backfilled_points"] = "1"
    for star in STARS:
        form[f"tier_{star}"] = policy.tier_multipliers.get(str(star), "")
    for n, hours in enumerate(policy.star_thresholds_hours, start=1):
        form[f"star_{n}"] = str(hours)
    for i, c in enumerate(policy.categories):
        form[f"cat_code_{i}"], form[f"cat_name_{i}"] = c.code, c.name
    return form


def category_rows(form: dict[str, str]) -> int:
    """How many category rows the form has (the rows it says, and any filled beyond)."""
    raw = form.get("categories", "0")
    rows = int(raw) if raw.isdigit() and len(raw) < 4 else 0
    filled = [
        int(n) + 1
        for k in form
        if k.startswith("cat_") and (n := k.rsplit("_", 1)[1]).isdigit() and len(n) < 4
    ]
    return min(MAX_CATEGORY_ROWS, max([rows, *filled, 1]))


def body_of(form: dict[str, str], current: Policy) -> dict[str, Any]:
    """The JSON body ``PUT /v1/community/policy`` would get for the form (the trusted
    organisations are kept as they are: the organisations page sets them)."""
    rows = category_rows(form)
    categories = []
    for i in range(rows):
        code, name = form.get(f"cat_code_{i}", ""), form.get(f"cat_name_{i}", "")
        if code or name:
            categories.append({"code": code, "name": name})
    return {
        # Settings this form does not show (set through the API) stay as they are.
        **msgspec.to_builtins(current),
        "points_per_hour": _number(form.get("points_per_hour", "")),
        "tier_multipliers": {str(s): _decimal(form.get(f"tier_{s}", "")) for s in STARS},
        "star_thresholds_hours": [_number(form.get(f"star_{n}", "")) for n in range(1, 6)],
        "daily_cap_minutes": _number(form.get("daily_cap_minutes", "")),
        "rounding": {
            "unit_minutes": _number(form.get("rounding_unit", "")),
            "mode": form.get("rounding_mode", ""),
        },
        "points_expiry": {
            "kind": form.get("expiry_kind", ""),
            "months": _number(form.get("expiry_months", "")),
        },
        "categories": categories,
        "trusted_organisations": [str(o) for o in current.trusted_organisations],
        "voucher_seconds": _number(form.get("voucher_seconds", "")),
        "public_page": form.get("public_page") == "1",  # a checkbox: absent when not ticked
        "withdraw_deadline_hours": _number(form["withdraw_deadline_hours"])
        if "withdraw_deadline_hours" in form
        else current.withdraw_deadline_hours,
        "backfilled_points": form.get("backfilled_points") == "1",
    }


def check(body: dict[str, Any]) -> tuple[Policy | None, dict[str, str]]:
    """The API's validation (``decode_policy``: JSON types, then ``Policy.check``), setting
    by setting (each over the defaults, so every wrong one is named, not only the first);
    the policy if all pass. Values: the API's English detail (the page shows its own words)."""
    errors: dict[str, str] = {}
    defaults = msgspec.to_builtins(Policy())
    for name in FIELD_ERRORS:
        try:
            policies.decode_policy(json.dumps({**defaults, name: body[name]}).encode())
        except BadRequest as refused:
            errors[name] = refused.detail or ""
    if errors:
        return None, errors
    try:
        return policies.decode_policy(json.dumps(body).encode()), {}
    except BadRequest as refused:  # (a rule across settings, if one is ever added)
        return None, {"general": refused.detail or ""}


def preview(policy: Policy, now: Policy) -> dict[str, Any]:
    """What the policy does, computed by its own methods (beside the current one's)."""
    return {
        "stars": [
            {
                "level": k,
                "hours": 0 if k == 0 else policy.star_thresholds_hours[k - 1],
                "multiplier": str(policy.multiplier(k)),
                "points": policy.points_for(EXAMPLE_MINUTES, k),
                "points_now": now.points_for(EXAMPLE_MINUTES, k),
            }
            for k in STARS
        ],
        "example_minutes": EXAMPLE_MINUTES,
        "example_seconds": EXAMPLE_SECONDS,
        "rounded": policy.round_minutes(EXAMPLE_SECONDS),
        "rounded_now": now.round_minutes(EXAMPLE_SECONDS),
        "daily_cap": policy.daily_cap_minutes,
        "expiry": policy.points_expiry,
        "voucher_minutes": policy.voucher_seconds // 60,
        "voucher_rest": policy.voucher_seconds % 60,
    }


# --- comparing two versions ------------------------------------------------------------------------


def flatten(policy: dict[str, Any]) -> dict[str, Any]:
    """A policy's JSON as {field path: value}: objects by key, lists by position, the
    categories by code (a category's row may move), the trusted organisations as a set."""
    out: dict[str, Any] = {}
    for key, value in policy.items():
        if key == "categories":
            for c in value:
                out[f"categories.{c['code']}"] = c["name"]
        elif key == "trusted_organisations":
            out[key] = frozenset(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                out[f"{key}.{k}"] = v
        elif isinstance(value, list):
            for i, v in enumerate(value):
                out[f"{key}.{i}"] = v
        else:
            out[key] = value
    return out


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The fields that differ between two versions' JSON: (path, old, new), in the form's
    order; a field only one of them has is None on the other side."""
    a, b = flatten(old), flatten(new)
    order = list(b) + [k for k in a if k not in b]
    return [(k, a.get(k), b.get(k)) for k in order if a.get(k) != b.get(k)]


def field_label(path: str, _: Any) -> str:
    head, _dot, rest = path.partition(".")
    labels = {
        "points_per_hour": N_("Points for an hour"),
        "daily_cap_minutes": N_("Daily limit (minutes)"),
        "trusted_organisations": N_("Trusted organisations"),
        "voucher_seconds": N_("Voucher valid for (seconds)"),
        "public_page": N_("Public page"),
        "withdraw_deadline_hours": N_("Deadline to withdraw (hours before the start)"),
        "backfilled_points": N_("Records typed in after the fact earn points"),
        "rounding.unit_minutes": N_("Rounding unit (minutes)"),
        "rounding.mode": N_("Rounding"),
        "points_expiry.kind": N_("When points expire"),
        "points_expiry.months": N_("Months until points expire"),
    }
    if path in labels:
        return _(labels[path])
    if head == "tier_multipliers":
        return _("Multiplier at star level %(n)s") % {"n": rest}
    if head == "star_thresholds_hours" and rest.isdigit():
        return _("Hours for star level %(n)s") % {"n": int(rest) + 1}
    if head == "categories":
        return _("Category %(code)s") % {"code": rest}
    return path


def field_value(path: str, value: Any, _: Any, names: dict[str, str]) -> str:
    if value is None:
        return _("(none)")
    if path == "rounding.mode":
        return _(ROUNDING_MODES.get(value, value))
    if path == "points_expiry.kind":
        return _(EXPIRY_KINDS.get(value, value))
    if path == "public_page":
        return _("Published") if value else _("Not published")
    if path == "backfilled_points":
        return _("Yes") if value else _("No")
    if path == "trusted_organisations":
        shown = sorted(names.get(str(o), str(o)) for o in value)
        return "、".join(shown) if shown else _("(none)")
    return str(value)


# --- who changed it --------------------------------------------------------------------------------


async def changer_names(conn: Any, principal: Any, ids: set[str]) -> dict[str, str]:
    """Who made each change: a person of the community (pages) or an API key (its label)."""
    names: dict[str, str] = {}
    keys = None
    for text in ids:
        try:
            names[text] = (await accounts.get_person(conn, principal, uuid.UUID(text))).display_name
            continue
        except NotFound:
            pass
        if keys is None:
            keys = {k["id"]: k for k in await community.list_keys(conn, principal)}
        key = keys.get(text)
        if key is not None:
            names[text] = key["label"] or key["prefix"]
    return names


# --- the pages -------------------------------------------------------------------------------------


class PolicyPages(Controller):
    path = "/staff/policy"

    async def _current(self, request: Request) -> tuple[int, Policy, Any, dict[str, str], dict[str, str]]:
        principal = web.principal(request)
        async with web.engine(request).connect() as conn:
            version, policy, row = await policies.current_policy(conn, principal.community_id)
            changers = await changer_names(
                conn, principal, {str(row.changed_by)} if row is not None and row.changed_by else set()
            )
            trusted = await community.party_names(conn, principal.community_id, policy.trusted_organisations)
        return version, policy, row, changers, {str(k): v for k, v in trusted.items()}

    async def _page(
        self,
        request: Request,
        form: dict[str, str] | None = None,
        status: int = 200,
        partial: bool = False,
        **extra: Any,
    ) -> Response[Any]:
        _ = templating.gettext(request)
        version, current, row, changers, trusted = await self._current(request)
        shown = form if form is not None else form_of(current)
        candidate: Policy | None = current
        errors: dict[str, str] = {}
        if form is not None:
            candidate, raw = check(body_of(form, current))
            errors = {k: _(FIELD_ERRORS.get(k, NOT_SAVED)) for k in raw}
        context = {
            "version": version,
            "row": row,
            "changed_by": changers.get(str(row.changed_by)) if row is not None and row.changed_by else None,
            "current": current,
            "trusted": trusted,
            "form": shown,
            "rows": category_rows(shown),
            "errors": errors,
            "first_field": FIRST_FIELD,
            "meanings": MEANINGS,
            "modes": ROUNDING_MODES,
            "expiry_kinds": EXPIRY_KINDS,
            "preview": None if candidate is None else preview(candidate, current),
            "base_version": shown.get("version", str(version)),
            "notice": None,
            "general_error": None,
            **extra,
        }
        if partial:
            return render(request, "admin/_policy_check.html", **context)
        return render(request, "admin/policy.html", status, **context)

    @get("/", opt=READ)
    async def policy(self, request: Request) -> Response[Any]:
        return await self._page(request)

    @post("/check", opt=ADMIN, status_code=200)
    async def check_form(self, request: Request) -> Response[Any]:
        """The form checked as typed (htmx: the errors and the preview alone); without
        JavaScript, the "preview" button's whole page. Saves nothing."""
        values = await forms.read_form(request)
        return await self._page(request, form=values, partial=is_htmx(request))

    @post("/", opt=ADMIN, status_code=303)
    async def save(self, request: Request) -> Response[Any]:
        """A new version through ``PUT /v1/community/policy``'s service (``set_policy``),
        if the form is still based on the newest version."""
        _ = templating.gettext(request)
        values = await forms.read_form(request)
        principal = web.principal(request)
        async with web.engine(request).begin() as conn:
            await policies.lock_policy(conn, principal.community_id)
            version, current, _row = await policies.current_policy(conn, principal.community_id)
            policy, _errors = check(body_of(values, current))
            saved: Any
            if policy is None:
                saved = "invalid"
            elif values.get("version") != str(version):
                saved = "stale"
            elif msgspec.to_builtins(policy) == msgspec.to_builtins(current):
                saved = "same"
            else:
                saved = await set_policy(conn, principal.community_id, policy, principal.key_id)
        if saved == "invalid":
            return await self._page(request, form=values, status=400, general_error=_(NOT_SAVED))
        if saved == "stale":
            return await self._page(
                request, form={**values, "version": str(version)}, status=409, general_error=_(CHANGED_SINCE)
            )
        if saved == "same":
            return await self._page(request, notice=_(NOTHING_CHANGED))
        number = saved["version"]
        return see_other(f"/staff/policy/versions?from={number - 1}&to={number}&saved={number}#changes")

    @get("/versions", opt=READ)
    async def versions(
        self,
        request: Request,
        cursor: str | None = Parameter(query="cursor", default=None, max_length=12),
        first: str = Parameter(query="from", default="", max_length=12),
        last: str = Parameter(query="to", default="", max_length=12),
        saved: str = Parameter(query="saved", default="", max_length=12),
    ) -> Response[Any]:
        _ = templating.gettext(request)
        principal = web.principal(request)
        before = web.int_cursor(cursor)
        error = None
        compared = None
        async with web.engine(request).connect() as conn:
            newest, _policy, _row = await policies.current_policy(conn, principal.community_id)
            items, next_cursor = await policies.policy_versions_page(
                conn, principal.community_id, before, VERSIONS_PAGE
            )
            # what each version changed from the one before it
            earlier = {}
            for item in items:
                previous = await policies.policy_version(conn, principal.community_id, item["version"] - 1)
                earlier[item["version"]] = diff(previous["policy"], item["policy"]) if previous else []
            if first or last:
                a, b = [
                    await policies.policy_version(conn, principal.community_id, int(n))
                    if n.isdigit() and len(n) < 10
                    else None
                    for n in (first, last)
                ]
                if a is None or b is None:
                    error = _(BAD_VERSIONS)
                else:
                    compared = {"from": a, "to": b, "changes": diff(a["policy"], b["policy"])}
            ids = {i["changed_by"] for i in items if i["changed_by"]}
            if compared:
                ids |= {v["changed_by"] for v in (compared["from"], compared["to"]) if v["changed_by"]}
            changers = await changer_names(conn, principal, ids)
            orgs = set()
            for changes in [*earlier.values(), compared["changes"] if compared else []]:
                for path, old, new in changes:
                    if path == "trusted_organisations":
                        orgs |= {uuid.UUID(str(o)) for o in (old or frozenset()) | (new or frozenset())}
            org_names = {
                str(k): v
                for k, v in (await community.party_names(conn, principal.community_id, orgs)).items()
            }

        def shown(changes: list[tuple[str, Any, Any]]) -> list[dict[str, str]]:
            return [
                {
                    "label": field_label(path, _),
                    "old": field_value(path, old, _, org_names),
                    "new": field_value(path, new, _, org_names),
                }
                for path, old, new in changes
            ]

        return render(
            request,
            "admin/policy_versions.html",
            400 if error else 200,
            items=[
                {
                    **i,
                    "at": None if i["changed_at"] is None else datetime.fromisoformat(i["changed_at"]),
                    "who": changers.get(i["changed_by"] or "", None),
                    "changes": shown(earlier[i["version"]]),
                }
                for i in items
            ],
            next_cursor=next_cursor,
            first_page=before is None,
            newest=newest,
            compared=None
            if compared is None
            else {
                "from": compared["from"]["version"],
                "to": compared["to"]["version"],
                "changes": shown(compared["changes"]),
            },
            first=first if first.isdigit() else str(max(newest - 1, 0)),
            last=last if last.isdigit() else str(newest),
            error=error,
            saved=saved if saved.isdigit() else None,
        )


# --- organisations ---------------------------------------------------------------------------------

TRUST_ON = N_(
    "%(name)s is trusted now: its records are approved as they are recorded (policy version %(v)s)."
)
TRUST_OFF = N_("%(name)s is no longer trusted: its records wait for approval (policy version %(v)s).")
TRUST_SAME = N_("Nothing was changed: %(name)s was already so.")


class OrganisationPages(Controller):
    path = "/staff/organisations"

    async def _page(
        self, request: Request, q: str = "", cursor: str | None = None, status: int = 200, **extra: Any
    ) -> Response[Any]:
        principal = web.principal(request)
        async with web.engine(request).connect() as conn:
            items, next_cursor = await community.search_parties(
                conn, principal, PartyKind.ORGANISATION, q[:SEARCH_MAX], web.uuid_cursor(cursor), PAGE_SIZE
            )
            version, policy, _row = await policies.current_policy(conn, principal.community_id)
        trusted = {str(o) for o in policy.trusted_organisations}
        context = {
            "kind": "organisation",
            "items": [{**p, "trusted": p["id"] in trusted} for p in items],
            "next_cursor": next_cursor,
            "q": q,
            "cursor": cursor or "",
            "first_page": not cursor,
            "version": version,
            "trusted_count": len(trusted),
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
    async def organisations(
        self,
        request: Request,
        q: str = Parameter(query="q", default="", max_length=SEARCH_MAX),
        cursor: str | None = Parameter(query="cursor", default=None, max_length=40),
        added: uuid.UUID | None = Parameter(query="added", default=None),
        changed: uuid.UUID | None = Parameter(query="changed", default=None),
        was: str = Parameter(query="was", default="", max_length=8),
    ) -> Response[Any]:
        _ = templating.gettext(request)
        shown, notice = None, None
        if added is not None or changed is not None:
            principal = web.principal(request)
            async with web.engine(request).connect() as conn:
                party, _accounts = await community.get_party(
                    conn,
                    principal,
                    PartyKind.ORGANISATION,
                    added or changed,  # type: ignore[arg-type]
                )
                version, policy, _row = await policies.current_policy(conn, principal.community_id)
            if added is not None:
                shown = party.display_name
            else:
                on = party.id in policy.trusted_organisations
                message = TRUST_SAME if was == "same" else (TRUST_ON if on else TRUST_OFF)
                notice = _(message) % {"name": party.display_name, "v": version}
        return await self._page(request, q.strip(), cursor, added=shown, notice=notice)

    @post("/", opt=ADMIN, status_code=303)
    async def register(self, request: Request) -> Response[Any]:
        """``POST /v1/organisations``'s service."""
        values = await forms.read_form(request)
        try:
            async with web.engine(request).begin() as conn:
                view = await community.create_party(
                    conn,
                    web.principal(request).community_id,
                    PartyKind.ORGANISATION,
                    values.get("name", ""),
                    values.get("external_ref") or None,
                )
        except DomainError as refused:
            errors = party_errors(request, refused, "name")
            return await self._page(request, status=refused.status, form=values, errors=errors)
        return see_other(f"/staff/organisations?added={view['id']}")

    @post("/{organisation_id:uuid}/trust", opt=ADMIN, status_code=303)
    async def trust(self, request: Request, organisation_id: uuid.UUID) -> Response[Any]:
        """Trust the organisation (``trusted=1``) or stop (``0``): a new policy version
        through ``PUT /v1/community/policy``'s service, the rest of the policy unchanged.
        The form says the state wanted, so sending it twice changes nothing twice."""
        values = await forms.read_form(request)
        wanted = values.get("trusted")
        if wanted not in ("0", "1"):
            raise BadRequest("trusted is 1 or 0")
        principal = web.principal(request)
        async with web.engine(request).begin() as conn:
            await community.get_party(conn, principal, PartyKind.ORGANISATION, organisation_id)
            await policies.lock_policy(conn, principal.community_id)
            _version, current, _row = await policies.current_policy(conn, principal.community_id)
            same = (organisation_id in current.trusted_organisations) == (wanted == "1")
            if not same:
                others = [o for o in current.trusted_organisations if o != organisation_id]
                trusted = [*others, organisation_id] if wanted == "1" else others
                changed = msgspec.structs.replace(current, trusted_organisations=trusted)
                await set_policy(conn, principal.community_id, changed, principal.key_id)
        back = templating.safe_next(values.get("next"), "/staff/organisations")
        joiner = "&" if "?" in back else "?"
        return see_other(f"{back}{joiner}changed={organisation_id}{'&was=same' if same else ''}")


PAGES: list[ControllerRouterHandler] = [MemberPages, OrganisationPages, PolicyPages]
