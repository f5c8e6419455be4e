"""The reports' console pages, for the community's admins and its board (read-only):

* ``GET /staff/reports`` (service), ``/staff/reports/points``, ``/staff/reports/merchants``:
  a report of a period (this month unless chosen), as headline figures, tables and bar
  charts; the same reports as ``GET /v1/reports/...`` (``service.py``, one snapshot by
  ``snapshot.report_snapshot``).
* ``GET /staff/reports/{service,points,merchants}.csv`` and ``.xlsx``: the same tables
  as files (``downloads.py``).

People choose a period by its first and last day (both included); the service's period
ends the day after the last.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from litestar import Controller, Request, Response, get
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from timebank import web
from timebank.core.access import access
from timebank.core.problems import BadRequest
from timebank.core.roles import Role
from timebank.reports import downloads, service
from timebank.reports.downloads import COUNT, LEVEL, MINUTES, MONTH, POINTS, Table
from timebank.reports.snapshot import report_snapshot
from timebank.web import charts, i18n, templating
from timebank.web.i18n import N_
from timebank.web.templating import render

READ = access(Role.ADMIN, Role.AUDITOR)

REPORTS = {
    "service": service.service_report,
    "points": service.points_report,
    "merchants": service.merchants_report,
}
PATHS = {
    "service": "/staff/reports",
    "points": "/staff/reports/points",
    "merchants": "/staff/reports/merchants",
}
TABS = {"service": N_("Service"), "points": N_("Points"), "merchants": N_("Merchants")}
INTRO = {
    "service": N_(
        "Approved service of the period: hours by month, category and organisation; "
        "active and new volunteers; star levels."
    ),
    "points": N_(
        "Love points of the period: issued, redeemed, expired, donated; what members hold "
        "(the community's liability) and what will expire soon."
    ),
    "merchants": N_("Each merchant's confirmed redemptions and the points it received in the period."),
}

NOT_A_DAY = N_("Choose a day, or type it as 2026-11-30.")
DAYS_ORDER = N_("The last day is before the first day. Choose a last day on or after the first.")
TOO_LONG = N_("A report covers at most ten years. Choose a shorter period.")
NO_DATES = N_("The report could not be made for these days. Please check them.")
QUICK = {
    "this-month": N_("This month"),
    "last-month": N_("Last month"),
    "this-year": N_("This year"),
    "last-year": N_("Last year"),
}


# --- the period ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # included

    @property
    def end(self) -> date:
        """The service's ``to``: the day after the last."""
        return self.last + timedelta(days=1)

    @property
    def query(self) -> str:
        return urlencode({"from": self.first.isoformat(), "to": self.last.isoformat()})


def quick_periods(today: date) -> dict[str, Period]:
    """This month, last month, this year and last year, for a day in the community's zone."""
    month = today.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    last_month = (month - timedelta(days=1)).replace(day=1)
    return {
        "this-month": Period(month, next_month - timedelta(days=1)),
        "last-month": Period(last_month, month - timedelta(days=1)),
        "this-year": Period(date(today.year, 1, 1), date(today.year, 12, 31)),
        "last-year": Period(date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),
    }


def _today(request: Request) -> date:
    return datetime.now(ZoneInfo(request.scope["auth"].timezone)).date()


def read_period(request: Request, first: str, last: str) -> tuple[Period | None, dict[str, str]]:
    """The period asked for (this month if none), or a sentence for each wrong field."""
    _ = templating.gettext(request)
    if not first and not last:
        return quick_periods(_today(request))["this-month"], {}
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for name, text in (("from", first), ("to", last)):
        try:
            days[name] = date.fromisoformat(text)
        except ValueError:
            errors[name] = _(NOT_A_DAY)
        else:
            if days[name] == date.max:  # it has no day after (the service's end)
                errors[name] = _(NOT_A_DAY)
    if not errors and days["to"] < days["from"]:
        errors["to"] = _(DAYS_ORDER)
    if errors:
        return None, errors
    return Period(days["from"], days["to"]), {}


async def read_report(request: Request, name: str, period: Period) -> dict[str, Any]:
    """The report, as ``GET /v1/reports/{name}`` answers it (the same function and snapshot)."""
    async with report_snapshot(web.engine(request)) as conn:
        return await REPORTS[name](conn, web.principal(request), period.first, period.end)


# --- what the page shows --------------------------------------------------------------------------


def _cell(kind: str, value: Any, fmt: Any, request: Request) -> str:
    if not isinstance(value, int):
        if kind == MONTH and isinstance(value, str) and len(value) == 7:
            return format_skeleton("yMMM", date.fromisoformat(value + "-01"), locale=fmt.locale)
        return "" if value is None else str(value)
    if kind == MINUTES:
        return fmt.hours(value)
    if kind == POINTS:
        return fmt.points(value)
    if kind == LEVEL:
        if value == 0:
            return templating.gettext(request)("No star")
        ngettext = i18n.translations(templating.page_locale(request)).ngettext
        return ngettext("%(num)s star", "%(num)s stars", value) % {"num": fmt.number(value)}
    return fmt.number(value)


@dataclass
class Shown:
    """A table as the page shows it: the cells in words, its chart."""

    table: Table
    headings: list[tuple[str, bool]]  # (heading, a number column)
    rows: list[list[str]]
    total: list[str] | None
    chart: charts.BarChart | None
    cards: bool  # many columns: a card per row on a phone


def _shown(table: Table, request: Request) -> Shown:
    fmt = templating.formats(request)
    _ = templating.gettext(request)
    keep = [i for i, c in enumerate(table.columns) if c.on_page]
    numeric = {i: table.columns[i].kind in (COUNT, POINTS, MINUTES) for i in keep}

    def words(row: list[Any]) -> list[str]:
        return [_cell(table.columns[i].kind, row[i], fmt, request) for i in keep]

    chart = None
    if table.chart is not None and table.rows:
        i = table.chart
        items = [
            (
                _cell(table.columns[0].kind, r[0], fmt, request),
                r[i],
                _cell(table.columns[i].kind, r[i], fmt, request),
            )
            for r in table.rows
        ]
        top = max(items, key=lambda x: abs(x[1]))
        summary = _(
            "Bar chart: %(what)s, %(column)s. The largest is %(label)s: %(value)s. The table gives every figure."
        ) % {"what": table.title, "column": table.columns[i].heading, "label": top[0], "value": top[2]}
        chart = charts.bar_chart(summary, items, large=templating.large_text(request))
    return Shown(
        table=table,
        headings=[(table.columns[i].heading, numeric[i]) for i in keep],
        rows=[words(r) for r in table.rows],
        total=words(table.total) if table.total else None,
        chart=chart,
        cards=len(keep) > 3,
    )


async def _page(request: Request, name: str, first: str, last: str) -> Response[Any]:
    _ = templating.gettext(request)
    who = request.scope["auth"]
    today = _today(request)
    quick = quick_periods(today)
    period, errors = read_period(request, first.strip(), last.strip())
    report = None
    if period is not None:
        try:
            report = await read_report(request, name, period)
        except BadRequest:
            too_long = (period.end - period.first).days > service.MAX_PERIOD_DAYS
            errors["to"] = _(TOO_LONG if too_long else NO_DATES)
    tables = downloads.report_tables(name, report, _) if report else []
    shown = [_shown(t, request) for t in tables]
    form = {
        "from": first.strip() or (period.first.isoformat() if period else ""),
        "to": last.strip() or (period.last.isoformat() if period else ""),
    }
    current = next((k for k, p in quick.items() if p == period), None)
    return render(
        request,
        "reports/report.html",
        400 if errors else 200,
        name=name,
        title=_(downloads.REPORT_TITLES[name]),
        intro=_(INTRO[name]),
        tabs=[(PATHS[k], _(label), k == name) for k, label in TABS.items()],
        here=PATHS[name],
        period=None if errors else period,
        form=form,
        errors=errors,
        quick=[
            (key, _(label), p, key == current) for key, label, p in ((k, QUICK[k], quick[k]) for k in QUICK)
        ],
        figures=[s for s in shown if s.table.figures],
        tables=[s for s in shown if not s.table.figures],
        generated=report and datetime.fromisoformat(report["generated_at"]),
        zone=who.timezone,
    )


async def _file(request: Request, extension: str, first: str, last: str) -> Response[bytes]:
    _ = templating.gettext(request)
    name = request.url.path.rsplit("/", 1)[-1].split(".")[0]
    period, errors = read_period(request, first.strip(), last.strip())
    if period is None:
        raise BadRequest("; ".join(errors.values()))
    report = await read_report(request, name, period)
    tables = downloads.report_tables(name, report, _)
    facts = downloads.about(name, report, request.scope["auth"].community_name, _)
    if extension == "csv":
        body, media_type = downloads.to_csv(facts, tables, _), downloads.CSV_TYPE
    else:
        body = await asyncio.to_thread(downloads.to_xlsx, facts, tables, _)
        media_type = downloads.XLSX_TYPE
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": downloads.disposition(name, facts, extension),
            "Cache-Control": "no-store",
        },
    )


FROM = Parameter(query="from", default="", max_length=40)
TO = Parameter(query="to", default="", max_length=40)


class ReportPages(Controller):
    path = "/staff/reports"

    @get("/", opt=READ)
    async def service_page(self, request: Request, first: str = FROM, last: str = TO) -> Response[Any]:
        return await _page(request, "service", first, last)

    @get("/points", opt=READ)
    async def points_page(self, request: Request, first: str = FROM, last: str = TO) -> Response[Any]:
        return await _page(request, "points", first, last)

    @get("/merchants", opt=READ)
    async def merchants_page(self, request: Request, first: str = FROM, last: str = TO) -> Response[Any]:
        return await _page(request, "merchants", first, last)

    @get(["/service.csv", "/points.csv", "/merchants.csv"], opt=READ)
    async def csv_file(self, request: Request, first: str = FROM, last: str = TO) -> Response[bytes]:
        return await _file(request, "csv", first, last)

    @get(["/service.xlsx", "/points.xlsx", "/merchants.xlsx"], opt=READ)
    async def xlsx_file(self, request: Request, first: str = FROM, last: str = TO) -> Response[bytes]:
        return await _file(request, "xlsx", first, last)


PAGES: list[ControllerRouterHandler] = [ReportPages]
