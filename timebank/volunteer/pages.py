"""The organisation recorder's pages (志愿服务组织): record a service for several
volunteers from one form, import a spreadsheet (CSV or Excel) after a dry run, and the
organisation's records.

Thin, like the API routes beside them (``controllers.py``): the form records through
``recording.record_many`` as ``POST /v1/service-records`` does (one record per
volunteer, each with a reference made of the form's own id and the volunteer, so a
resend records nothing twice); the import parses with ``csv_import.parse_csv`` (an
.xlsx is read as the same CSV first), shows ``recording.preview_many``'s verdicts
(the same checks, nothing written) and then imports through ``record_many`` as
``POST /v1/service-records/import`` does; the list reads ``reading.records_page`` as
``GET /v1/service-records`` does, with the recorder's principal.

The uploaded file is not kept on the server between the preview and the import: the
preview page carries it back in a hidden field (compressed, with a checksum;
``spreadsheet.pack``). So any replica may import what another one previewed, nothing
has to be cleaned up, and the volunteers' data never rests in a temporary file (a
temporary file would not do: the API replicas of deploy/ share no disk).

The import runs within its request rather than as a background job polled for its
progress: 20,000 rows (100 volunteers, 1.9 MB of CSV) took 3.0 s to preview, 5.2 s to
import and 7.7 s to preview as an .xlsx on the test database, and the CPU work runs
off the event loop (``recording``, ``asyncio.to_thread``). While the file goes up and
is worked on, the page shows a ``<progress>`` (htmx's upload progress events,
``static/org.js``; without JavaScript the browser's own loading indicator).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from timebank import web
from timebank.core.access import access
from timebank.core.communities import community_zone
from timebank.core.policy import current_policy
from timebank.core.problems import BadRequest, DomainError
from timebank.core.roles import Role
from timebank.volunteer import reading, recording, spreadsheet, volunteers
from timebank.volunteer.csv_import import parse_csv
from timebank.volunteer.reasons import reason_words
from timebank.volunteer.records import ImportTooLarge, RecordIn, record_view
from timebank.web import forms, messages, templating
from timebank.web.i18n import N_
from timebank.web.templating import render, see_other

RECORDER = access(Role.RECORDER)
MAX_CHOSEN = 50  # volunteers in one form (a class, a team): more is an import
LISTED = 500  # rows of a preview or a summary listed on the page; all are in the download
STATUS_WORDS = {
    "submitted": N_("Waiting for approval"),
    "approved": N_("Approved"),
    "rejected": N_("Not approved"),
    "reversed": N_("Withdrawn after a correction"),
}


def _now() -> datetime:
    return datetime.now(UTC)


def _htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.scope["auth"].timezone)


async def _categories(request: Request) -> list[Any]:
    """The community's service categories (code and name), as ``GET /v1/community/policy``."""
    async with web.engine(request).connect() as conn:
        _, policy, _ = await current_policy(conn, web.principal(request).community_id)
    return list(policy.categories)


def _status_for(request: Request, status: int) -> int:
    """htmx swaps only 2xx answers: a form that comes back with its mistakes is a 200 to htmx
    (the page says what is wrong), and keeps its 4xx for everyone else."""
    return 200 if _htmx(request) else status


# --- recording one service for several volunteers ------------------------------------------------


@dataclass
class Volunteer:
    """A chosen volunteer: a row of the form with its own minutes and, after a try, why not."""

    id: str
    name: str
    minutes: str = ""
    error: str | None = None


@dataclass
class Sheet:
    """The form: who, what, when; kept as typed when the page comes back."""

    idem: str
    activity: str = ""
    category: str = ""
    place: str = ""
    day: str = ""
    start: str = ""
    end: str = ""
    beneficiary: str = ""
    content: str = ""
    q: str = ""
    chosen: list[Volunteer] = field(default_factory=list)

    @property
    def chosen_ids(self) -> set[str]:
        return {v.id for v in self.chosen}


SHEET_FIELDS = ("activity", "category", "place", "day", "start", "end", "beneficiary", "content", "q")
TIME = re.compile(r"^(\d{1,2})[:：](\d{2})(?::\d{2})?$")

BAD_DAY = N_("Enter the day of the service, for example 2026-11-02.")
BAD_START = N_("Enter the time the service started, for example 09:00.")
BAD_END = N_("Enter the time the service ended, for example 11:30.")
END_BEFORE_START = N_(
    "The end is after the start. For a service past midnight, record one service for each day."
)
NO_VOLUNTEER = N_("Choose at least one volunteer: find them by name, phone number or volunteer number.")
TOO_MANY = N_("At most %(n)s volunteers in one form. Import a file for more.")
NO_CATEGORY = N_("Choose the category of the service.")
BAD_MINUTES = N_(
    "Enter the minutes this volunteer served, from 1 to %(n)s, or leave it empty for the whole time."
)
ALL_REFUSED = N_("Nothing was recorded. See the reason next to each volunteer.")
SOME_REFUSED = N_(
    "Some volunteers could not be recorded. See the reason next to each; change what is wrong and send again."
)


def _new_sheet(request: Request) -> Sheet:
    return Sheet(idem=str(uuid.uuid4()), day=datetime.now(_zone(request)).date().isoformat())


def _clock(text: str) -> time | None:
    found = TIME.match(text.strip())
    if not found or int(found.group(1)) > 23 or int(found.group(2)) > 59:
        return None
    return time(int(found.group(1)), int(found.group(2)))


async def _read_sheet(request: Request) -> Sheet:
    """The posted form (its volunteers among the community's members, in the order chosen)."""
    values = await forms.read_form(request)
    form = await request.form()
    try:
        idem = str(uuid.UUID(values.get("idem", "")))
    except ValueError:
        raise BadRequest("idem is the uuid the form was rendered with") from None
    sheet = Sheet(idem=idem, **{name: values.get(name, "") for name in SHEET_FIELDS})
    ids: list[uuid.UUID] = []
    for raw in form.getall("member_id") if "member_id" in form else []:
        try:
            member = uuid.UUID(str(raw))
        except ValueError:
            raise BadRequest("member_id is a member's id") from None
        if member not in ids:
            ids.append(member)
    if len(ids) > MAX_CHOSEN:
        raise BadRequest(f"at most {MAX_CHOSEN} volunteers in one form")
    async with web.engine(request).connect() as conn:
        names = await volunteers.members_named(conn, web.principal(request), ids)
    sheet.chosen = [
        Volunteer(str(m), names[m], values.get(f"minutes_{m}", "")[:6]) for m in ids if m in names
    ]
    return sheet


async def _search(request: Request, text: str) -> list[dict[str, Any]]:
    async with web.engine(request).connect() as conn:
        return await volunteers.search_members(conn, web.principal(request), text)


async def _sheet_page(
    request: Request,
    sheet: Sheet,
    status: int = 200,
    *,
    results: list[dict[str, Any]] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    recorded: list[dict[str, Any]] | None = None,
) -> Response[Any]:
    return render(
        request,
        "org/record.html",
        status,
        sheet=sheet,
        categories=await _categories(request),
        results=results,
        errors=errors or {},
        error=error,
        recorded=recorded or [],
        max_chosen=MAX_CHOSEN,
        status_words=STATUS_WORDS,
    )


def _when(sheet: Sheet, zone: ZoneInfo, errors: dict[str, str], _: Any) -> tuple[datetime, datetime] | None:
    """The service's start and end (the community's local times), or the fields' mistakes."""
    try:
        day = date.fromisoformat(sheet.day)
    except ValueError:
        errors["day"] = _(BAD_DAY)
        day = None
    start, end = _clock(sheet.start), _clock(sheet.end)
    if start is None:
        errors["start"] = _(BAD_START)
    if end is None:
        errors["end"] = _(BAD_END)
    if day is None or start is None or end is None:
        return None
    if end <= start:
        errors["end"] = _(END_BEFORE_START)
        return None
    return datetime.combine(day, start, zone), datetime.combine(day, end, zone)


def _items(sheet: Sheet, started: datetime, ended: datetime, _: Any) -> list[RecordIn] | None:
    """One record per chosen volunteer (its own minutes, from the start); None when a
    volunteer's minutes are not a number that fits the service (said on its row)."""
    whole = int((ended - started).total_seconds() // 60)
    items = []
    for v in sheet.chosen:
        raw = v.minutes.replace(" ", "")
        if raw and (not raw.isdecimal() or not 1 <= int(raw) <= whole):
            v.error = _(BAD_MINUTES) % {"n": whole}
            continue
        items.append(
            RecordIn(
                activity=sheet.activity,
                category=sheet.category,
                place=sheet.place,
                started_at=started,
                ended_at=started + timedelta(minutes=int(raw)) if raw else ended,
                member_id=uuid.UUID(v.id),
                beneficiary=sheet.beneficiary or None,
                content=sheet.content or None,
                external_ref=f"page:{sheet.idem}:{v.id}",  # a resend of this form records nothing twice
            )
        )
    return None if any(v.error for v in sheet.chosen) else items


class RecordPages(Controller):
    """``/org``: one service (the same activity, place and time) for several volunteers."""

    path = "/org"

    @get("/", opt=RECORDER)
    async def form(self, request: Request) -> Response[Any]:
        return await _sheet_page(request, _new_sheet(request))

    @get("/volunteers", opt=RECORDER)
    async def search(
        self,
        request: Request,
        q: str = Parameter(default="", max_length=volunteers.MAX_TEXT),
        member_id: list[uuid.UUID] | None = Parameter(default=None),
    ) -> Response[Any]:
        """Search as you type (htmx: the results only); without JavaScript, the page with them."""
        results = await _search(request, q)
        if _htmx(request):
            chosen = {str(m) for m in member_id or []}
            return render(request, "org/_results.html", results=results, q=q, chosen_ids=chosen)
        sheet = _new_sheet(request)
        sheet.q = q
        return await _sheet_page(request, sheet, results=results)

    @get("/volunteer-row", opt=RECORDER)
    async def volunteer_row(
        self,
        request: Request,
        add: uuid.UUID,
        member_id: list[uuid.UUID] | None = Parameter(default=None),
    ) -> Response[Any]:
        """htmx: the row of a volunteer just chosen (nothing if chosen already)."""
        chosen = list(dict.fromkeys(member_id or []))
        async with web.engine(request).connect() as conn:
            names = await volunteers.members_named(conn, web.principal(request), [add])
        if add in chosen or add not in names or len(chosen) >= MAX_CHOSEN:
            return Response(content=b"", status_code=204)
        return render(
            request,
            "org/_added.html",
            v=Volunteer(str(add), names[add]),
            count=len(chosen) + 1,
            max_chosen=MAX_CHOSEN,
        )

    @get("/volunteer-removed", opt=RECORDER)
    async def volunteer_removed(
        self,
        request: Request,
        remove: uuid.UUID,
        member_id: list[uuid.UUID] | None = Parameter(default=None),
    ) -> Response[Any]:
        """htmx: a row taken out of the form (the form is only sent with the rows it shows)."""
        left = [m for m in dict.fromkeys(member_id or []) if m != remove]
        return render(request, "org/_removed.html", count=len(left), max_chosen=MAX_CHOSEN)

    @post("/", opt=RECORDER, status_code=200)
    async def send(self, request: Request) -> Response[Any]:
        """Search, add or remove a volunteer (the page without JavaScript), or record."""
        sheet = await _read_sheet(request)
        values = await forms.read_form(request)
        _ = templating.gettext(request)
        if values.get("add"):
            try:
                added = uuid.UUID(values["add"])
            except ValueError:
                raise BadRequest("add is a member's id") from None
            if str(added) not in sheet.chosen_ids:
                if len(sheet.chosen) >= MAX_CHOSEN:
                    return await _sheet_page(request, sheet, 400, error=_(TOO_MANY) % {"n": MAX_CHOSEN})
                async with web.engine(request).connect() as conn:
                    names = await volunteers.members_named(conn, web.principal(request), [added])
                sheet.chosen += [Volunteer(str(m), n) for m, n in names.items()]
            return await _sheet_page(request, sheet, results=await _search(request, sheet.q))
        if values.get("remove"):
            sheet.chosen = [v for v in sheet.chosen if v.id != values["remove"]]
            return await _sheet_page(request, sheet, results=await _search(request, sheet.q))
        if values.get("action") != "record":
            return await _sheet_page(request, sheet, results=await _search(request, sheet.q))
        return await self._record(request, sheet)

    async def _record(self, request: Request, sheet: Sheet) -> Response[Any]:
        _ = templating.gettext(request)
        fmt = templating.formats(request)
        errors: dict[str, str] = {}
        if not sheet.chosen:
            errors["volunteers"] = _(NO_VOLUNTEER)
        if sheet.category not in {c.code for c in await _categories(request)}:
            errors["category"] = _(NO_CATEGORY)
        times = _when(sheet, _zone(request), errors, _)
        items = None if times is None else _items(sheet, *times, _)
        if errors or items is None:
            return await _sheet_page(request, sheet, 400, errors=errors)
        try:
            async with web.engine(request).begin() as conn:
                out = await recording.record_many(conn, web.principal(request), items, now=_now())
        except DomainError as refused:
            return await _sheet_page(request, sheet, refused.status, error=messages.explain(refused, _))
        if not out.rejected:
            return see_other("/org/done?" + urlencode([("r", a["id"]) for a in out.accepted]))
        by_line = {r["line"]: r["reason"] for r in out.rejected}
        names = {v.id: v.name for v in sheet.chosen}
        recorded = [
            {**a, "name": names.get(a["member_id"], ""), "started": datetime.fromisoformat(a["started_at"])}
            for a in out.accepted
        ]
        left = []
        for line, v in enumerate(sheet.chosen, start=1):
            if line in by_line:
                v.error = reason_words(by_line[line], _, fmt)
                left.append(v)
        sheet.chosen = left
        return await _sheet_page(
            request,
            sheet,
            422,
            error=_(SOME_REFUSED) if recorded else _(ALL_REFUSED),
            recorded=recorded,
        )

    @get("/done", opt=RECORDER)
    async def done(self, request: Request) -> Response[Any]:
        """What the form recorded (each record read as ``GET /v1/service-records/{id}`` does)."""
        ids = []
        for raw in request.query_params.getall("r") if "r" in request.query_params else []:
            try:
                ids.append(uuid.UUID(raw))
            except ValueError:
                raise BadRequest("r is a record's id") from None
        if not 1 <= len(ids) <= MAX_CHOSEN:
            return see_other("/org")
        who = web.principal(request)
        async with web.engine(request).connect() as conn:
            records = [record_view(await reading.get_record(conn, who, i)) for i in ids]
            names = await volunteers.members_named(conn, who, [uuid.UUID(r["member_id"]) for r in records])
        items = [
            {
                **r,
                "name": names.get(uuid.UUID(r["member_id"]), ""),
                "started": datetime.fromisoformat(r["started_at"]),
            }
            for r in records
        ]
        return render(
            request,
            "org/done.html",
            items=items,
            approved=sum(1 for r in items if r["status"] == "approved"),
            status_words=STATUS_WORDS,
        )


# --- importing a file ------------------------------------------------------------------------------

FILE_WORDS = {
    "empty": N_("The file is empty. The first line names the columns, one service on each line after it."),
    "utf8": N_(
        "The file is not UTF-8 text. In Excel, save it as “CSV UTF-8”, or upload the .xlsx file itself."
    ),
    "columns": N_(
        "The first line does not name every column needed. Missing: %(columns)s. Download a template to see them."
    ),
    "xlsx": N_(
        "The file could not be read as an Excel workbook (.xlsx). Save it again, or save it as “CSV UTF-8”."
    ),
    "csv": N_("The file could not be read as CSV (line %(line)s). Save it again as “CSV UTF-8”."),
    "large": N_(
        "The file is too large: at most %(rows)s services and %(mb)s MB in one file. Split it into several files."
    ),
    "none": N_("Choose the file to import (CSV or Excel .xlsx)."),
    "damaged": N_("The file could not be sent back for importing. Please upload it again."),
}
COLUMN_WORDS = {
    "activity": "活动名称 (activity)",
    "category": "服务类别 (category)",
    "place": "服务地点 (place)",
    "started_at": "开始时间 (started_at)",
    "ended_at": "结束时间 (ended_at)",
    "member_id or member_ref": "成员ID / 志愿者编号 (member_id / member_ref)",
}


def _file_problem(request: Request, refused: DomainError) -> str:
    """Why a file could not be read at all, in words (the importer's detail is for API clients)."""
    _ = templating.gettext(request)
    cfg = web.settings(request)
    detail = refused.detail or ""
    if refused.status == 413:
        return _(FILE_WORDS["large"]) % {
            "rows": templating.formats(request).number(cfg.import_max_rows),
            "mb": f"{cfg.import_max_bytes / 1_000_000:g}",
        }
    if detail.startswith("the file is empty"):
        return _(FILE_WORDS["empty"])
    if "not UTF-8" in detail:
        return _(FILE_WORDS["utf8"])
    if detail.startswith("columns missing: "):
        missing = detail.removeprefix("columns missing: ").split(" (see", 1)[0].split(", ")
        return _(FILE_WORDS["columns"]) % {"columns": "; ".join(COLUMN_WORDS.get(m, m) for m in missing)}
    if "Excel workbook" in detail or "workbook" in detail:
        return _(FILE_WORDS["xlsx"])
    found = re.match(r"line (\d+) is not CSV", detail)
    if found:
        return _(FILE_WORDS["csv"]) % {"line": found.group(1)}
    if "upload it again" in detail:
        return _(FILE_WORDS["damaged"])
    return messages.explain(refused, _)


async def _import_page(request: Request, status: int = 200, *, error: str | None = None) -> Response[Any]:
    cfg = web.settings(request)
    return render(
        request,
        "org/import.html",
        _status_for(request, status),
        error=error,
        max_rows=cfg.import_max_rows,
        max_mb=f"{cfg.import_max_bytes / 1_000_000:g}",
        headers=spreadsheet.TEMPLATE_HEADERS,
    )


async def _uploaded(request: Request) -> tuple[str, bytes]:
    """The uploaded file's name and content as CSV (an .xlsx read as CSV), within the limits."""
    cfg = web.settings(request)
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise _NoFile
    data = await upload.read(cfg.import_max_bytes + 1)
    await upload.close()
    if not data:
        raise BadRequest("the file is empty; the first row names the columns")
    if len(data) > cfg.import_max_bytes:
        raise ImportTooLarge(f"the file is more than {cfg.import_max_bytes} bytes")
    name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:200]
    if spreadsheet.is_xlsx(name, data):
        data = await asyncio.to_thread(
            spreadsheet.xlsx_as_csv, data, max_rows=cfg.import_max_rows, max_bytes=cfg.import_max_bytes
        )
    return name, data


class _NoFile(Exception):
    pass


async def _parse(request: Request, data: bytes) -> tuple[list[RecordIn], list[dict[str, Any]]]:
    """The rows of a CSV as ``POST /v1/service-records/import`` reads them (off the event loop)."""
    cfg = web.settings(request)
    async with web.engine(request).connect() as conn:
        tz = await community_zone(conn, web.principal(request).community_id)
    return await asyncio.to_thread(
        parse_csv, data, tz, max_rows=cfg.import_max_rows, max_bytes=cfg.import_max_bytes
    )


NO_FACTS: dict[str, Any] = {"who": "", "activity": "", "started": None}  # a line that could not be read


def _row_facts(rows: list[RecordIn], names: Names) -> dict[int, dict[str, Any]]:
    """What each readable line says, to tell the lines apart on the page (by line): the
    volunteer's name where the line names one of the community's, else what it says."""
    by_id, by_ref = names
    facts = {}
    for r in rows:
        who = by_id.get(r.member_id) if r.member_id else by_ref.get(r.member_ref or "")
        facts[r.line or 0] = {
            "who": who or (str(r.member_id) if r.member_id else r.member_ref or ""),
            "activity": r.activity,
            "started": r.started_at,
        }
    return facts


Names = tuple[dict[uuid.UUID, str], dict[str, str]]


async def _names_of(request: Request, rows: list[RecordIn], extra: list[str]) -> Names:
    """The volunteers' names of these lines (by member id and by volunteer number) and of ``extra`` ids."""
    ids = {r.member_id for r in rows if r.member_id} | {uuid.UUID(m) for m in extra}
    refs = {r.member_ref for r in rows if r.member_id is None and r.member_ref}
    who = web.principal(request)
    async with web.engine(request).connect() as conn:
        return await volunteers.members_named(conn, who, ids), await volunteers.members_by_ref(
            conn, who, refs
        )


class ImportPages(Controller):
    """``/org/import``: a file of services, checked row by row before anything is stored."""

    path = "/org/import"

    @get("/", opt=RECORDER)
    async def upload_form(self, request: Request) -> Response[Any]:
        return await _import_page(request)

    @get("/template.csv", opt=RECORDER)
    async def template_csv(self, request: Request) -> Response[bytes]:
        categories = await _categories(request)
        yesterday = datetime.now(_zone(request)).date() - timedelta(days=1)
        return Response(
            spreadsheet.template_csv(categories[0].name, yesterday),
            media_type="text/csv",  # Litestar adds "; charset=utf-8" to a text type
            headers={"Content-Disposition": 'attachment; filename="service-records-template.csv"'},
        )

    @get("/template.xlsx", opt=RECORDER)
    async def template_xlsx(self, request: Request) -> Response[bytes]:
        categories = await _categories(request)
        yesterday = datetime.now(_zone(request)).date() - timedelta(days=1)
        body = await asyncio.to_thread(spreadsheet.template_xlsx, [c.name for c in categories], yesterday)
        return Response(
            body,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": 'attachment; filename="service-records-template.xlsx"'},
        )

    @post("/preview", opt=RECORDER, status_code=200)
    async def preview(self, request: Request) -> Response[Any]:
        """Every row's verdict by ``recording.preview_many`` (the import's own checks); nothing is stored."""
        _ = templating.gettext(request)
        fmt = templating.formats(request)
        try:
            name, data = await _uploaded(request)
            rows, unreadable = await _parse(request, data)
            async with web.engine(request).begin() as conn:
                out = await recording.preview_many(
                    conn,
                    web.principal(request),
                    rows,
                    now=_now(),
                    derive_refs=True,
                    max_rows=web.settings(request).import_max_rows,
                )
        except _NoFile:
            return await _import_page(request, 400, error=_(FILE_WORDS["none"]))
        except DomainError as refused:
            return await _import_page(request, refused.status, error=_file_problem(request, refused))
        verdicts = sorted(
            [{"ok": True, **a} for a in out.accepted]
            + [{"ok": False, **r} for r in out.rejected + unreadable],
            key=lambda v: v["line"],
        )
        listed = verdicts if len(verdicts) <= LISTED else [v for v in verdicts if not v["ok"]][:LISTED]
        lines = {v["line"] for v in listed}
        shown = [r for r in rows if r.line in lines]
        names = await _names_of(request, shown, [v["member_id"] for v in listed if v["ok"]])
        facts = _row_facts(shown, names)
        for v in listed:
            v.update(facts.get(v["line"], NO_FACTS))
            if v["ok"]:
                v["who"] = names[0].get(uuid.UUID(v["member_id"])) or v["who"]
            else:
                v["reason"] = reason_words(v["reason"], _, fmt)
        new = [a for a in out.accepted if not a["duplicate"]]
        return render(
            request,
            "org/preview.html",
            name=name,
            total=len(verdicts),
            new=len(new),
            approved=sum(1 for a in new if a["approved"]),
            duplicates=len(out.accepted) - len(new),
            rejected=len(out.rejected) + len(unreadable),
            verdicts=listed,
            all_listed=len(listed) == len(verdicts),
            packed=spreadsheet.pack(data),
            checksum=spreadsheet.checksum(data),
        )

    @post("/run", opt=RECORDER, status_code=200)
    async def run(self, request: Request) -> Response[Any]:
        """Import the previewed file: ``POST /v1/service-records/import``'s steps. A row recorded
        before (the same file again) is not stored twice.

        The summary is this answer (no redirect): it lives nowhere else, and sending the form
        again imports nothing twice (it then counts every row as recorded before)."""
        _ = templating.gettext(request)
        fmt = templating.formats(request)
        cfg = web.settings(request)
        form = await request.form()
        packed, digest = form.get("upload"), form.get("checksum")
        name = str(form.get("name") or "")[:200]
        try:
            if not isinstance(packed, str) or not isinstance(digest, str):
                raise BadRequest("upload the file again")
            data = spreadsheet.unpack(packed, cfg.import_max_bytes)
            if spreadsheet.checksum(data) != digest:
                raise BadRequest("the file changed on its way back; upload it again")
            rows, unreadable = await _parse(request, data)
            async with web.engine(request).begin() as conn:
                out = await recording.record_many(
                    conn,
                    web.principal(request),
                    rows,
                    now=_now(),
                    derive_refs=True,
                    max_rows=cfg.import_max_rows,
                )
        except DomainError as refused:
            return await _import_page(request, refused.status, error=_file_problem(request, refused))
        refused = sorted(out.rejected + unreadable, key=lambda r: r["line"])
        by_line = {r.line: r for r in rows}
        shown = [by_line[r["line"]] for r in refused[:LISTED] if r["line"] in by_line]
        new = [a for a in out.accepted if not a["duplicate"]]
        names = await _names_of(request, shown, [a["member_id"] for a in new[:LISTED]])
        facts = _row_facts(shown, names)
        rejected = [
            {"line": r["line"], **facts.get(r["line"], NO_FACTS), "reason": reason_words(r["reason"], _, fmt)}
            for r in refused
        ]
        recorded = [
            {
                **a,
                "name": names[0].get(uuid.UUID(a["member_id"]), ""),
                "started": datetime.fromisoformat(a["started_at"]),
            }
            for a in new[:LISTED]
        ]
        download = None
        if rejected:
            table = spreadsheet.rejected_rows_csv(data, rejected, _("Line"), _("Reason"))
            download = spreadsheet.pack(table)
        return render(
            request,
            "org/imported.html",
            name=name,
            new=len(new),
            approved=sum(1 for a in new if a["status"] == "approved"),
            duplicates=len(out.accepted) - len(new),
            rejected=rejected[:LISTED],
            rejected_count=len(rejected),
            recorded=recorded,
            download=download,
            status_words=STATUS_WORDS,
        )

    @post("/rejected.csv", opt=RECORDER, status_code=200)
    async def rejected_csv(self, request: Request) -> Response[bytes]:
        """The rejected rows of the import just made, with their reasons (the summary carries them)."""
        form = await request.form()
        packed = form.get("rejected")
        if not isinstance(packed, str):
            raise BadRequest("rejected is the field of the summary page")
        return Response(
            spreadsheet.unpack(packed, web.settings(request).import_max_bytes * 2),
            media_type="text/csv",  # Litestar adds "; charset=utf-8" to a text type
            headers={"Content-Disposition": 'attachment; filename="rejected-rows.csv"'},
        )


# --- the organisation's records -------------------------------------------------------------------

BAD_DATES = N_("Enter the days as dates, for example 2026-11-01.")
NO_MATCH = N_("No volunteer matches “%(text)s”.")
PICK_ONE = N_("Several volunteers match “%(text)s”. Choose one:")


def _day_range(first: str, last: str, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """From the start of the first day to the end of the last (either may be empty)."""
    since = datetime.combine(date.fromisoformat(first), time(0), zone) if first else None
    until = datetime.combine(date.fromisoformat(last) + timedelta(days=1), time(0), zone) if last else None
    return since, until


class RecordsPages(Controller):
    """``/org/records``: the organisation's records, newest first, by status, category, days, volunteer."""

    path = "/org/records"

    @get("/", opt=RECORDER)
    async def records(
        self,
        request: Request,
        status: str = Parameter(default="", max_length=20),
        category: str = Parameter(default="", max_length=50),
        first: str = Parameter(query="from", default="", max_length=10),
        last: str = Parameter(query="to", default="", max_length=10),
        member: str = Parameter(default="", max_length=volunteers.MAX_TEXT),
        cursor: str | None = Parameter(default=None, max_length=80),
    ) -> Response[Any]:
        _ = templating.gettext(request)
        who = web.principal(request)
        categories = await _categories(request)
        status = status if status in STATUS_WORDS else ""
        category = category if category in {c.code for c in categories} else ""
        error, notice, choices, member_id, member_name = None, None, [], None, None
        try:
            since, until = _day_range(first, last, _zone(request))
        except ValueError:
            since = until = None
            error = _(BAD_DATES)
        member = " ".join(member.split())
        if member:
            found = await _search(request, member)
            exact = [m for m in found if m["by"] in ("id", "phone")]
            if len(exact) == 1 or len(found) == 1:
                chosen = (exact or found)[0]
                member_id, member_name = uuid.UUID(chosen["id"]), chosen["name"]
            elif not found:
                notice = _(NO_MATCH) % {"text": member}
            else:
                choices = found
        items: list[dict[str, Any]] = []
        nxt = None
        if not choices and not (member and member_id is None):
            async with web.engine(request).connect() as conn:
                items, nxt = await reading.records_page(
                    conn,
                    who,
                    member_id=member_id,
                    status=status or None,
                    category=category or None,
                    since=since,
                    until=until,
                    cursor=cursor,
                    limit=web.settings(request).page_default,
                )
                names = await volunteers.members_named(conn, who, {uuid.UUID(r["member_id"]) for r in items})
            for r in items:
                r["name"] = names.get(uuid.UUID(r["member_id"]), "")
                r["started"] = datetime.fromisoformat(r["started_at"])
        filters = {"status": status, "category": category, "from": first, "to": last, "member": member}
        kept = {k: v for k, v in filters.items() if v}
        return render(
            request,
            "org/records.html",
            400 if error else 200,
            items=items,
            next_url=f"/org/records?{urlencode({**kept, 'cursor': nxt})}" if nxt else None,
            first_url=f"/org/records?{urlencode(kept)}" if cursor else None,
            filters=filters,
            categories=categories,
            category_names={c.code: c.name for c in categories},
            status_words=STATUS_WORDS,
            error=error,
            notice=notice,
            choices=[{**c, "url": f"/org/records?{urlencode({**kept, 'member': c['id']})}"} for c in choices],
            choice_text=_(PICK_ONE) % {"text": member} if choices else None,
            member_name=member_name,
            filtered=bool(kept),
        )


PAGES: list[ControllerRouterHandler] = [RecordPages, ImportPages, RecordsPages]
