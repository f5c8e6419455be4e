"""A report as titled tables, and those tables as a CSV file or an .xlsx workbook.

``report_tables`` turns a report of ``service.py`` (the API's body) into the tables the
console's page shows and the files hold, with headings in the person's language; the
CSV and the .xlsx writers are two views of the same tables, each with the report's
facts first (``about``): which report, the community, the period (inclusive dates and
the time zone) and when it was generated.

Hours are kept as minutes in the tables; a file gives each such column twice, as
decimal hours and as whole minutes, so a spreadsheet can add either.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from timebank.web.i18n import N_

Gettext = Callable[[str], str]

REPORTS = ("service", "points", "merchants")
REPORT_TITLES = {
    "service": N_("Service report"),
    "points": N_("Points report"),
    "merchants": N_("Merchants report"),
}
CSV_TYPE = "text/csv"  # Litestar adds "; charset=utf-8" to a text type (once)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOM = "\ufeff"

# Kinds of a column: how a page shows its cells and how a file writes them.
TEXT, COUNT, POINTS, MINUTES, MONTH, LEVEL = "text", "count", "points", "minutes", "month", "level"


@dataclass(frozen=True)
class Column:
    heading: str
    kind: str = TEXT
    on_page: bool = True  # False: in the files only (an id is too long for a phone)


@dataclass
class Table:
    """One table of a report: ``rows`` of cells (minutes for hours), an optional total
    row, the column a page draws as a bar chart, and the sentence for an empty table."""

    key: str  # stable, for ids and tests: "by_month", "redeemed_by_merchant"...
    title: str
    columns: list[Column]
    rows: list[list[Any]]
    total: list[Any] | None = None
    chart: int | None = None
    empty: str = ""
    note: str = ""
    figures: bool = False  # one row of headline figures (a page shows it as figures)
    links: list[str] = field(default_factory=list)  # a page's link for each row's name (if any)


@dataclass(frozen=True)
class About:
    """What a file says about itself: (label, value) lines in the person's language."""

    title: str
    community: str
    first: date
    last: date  # inclusive
    timezone: str
    generated: datetime  # in the community's zone
    lines: list[tuple[str, str]]


def about(name: str, report: dict[str, Any], community: str, _: Gettext) -> About:
    """The facts of a report's file: the period as people say it (the last day included)."""
    zone = ZoneInfo(report["timezone"])
    first = date.fromisoformat(report["from"])
    last = date.fromisoformat(report["to"]) - timedelta(days=1)
    generated = datetime.fromisoformat(report["generated_at"]).astimezone(zone)
    title = _(REPORT_TITLES[name])
    return About(
        title,
        community,
        first,
        last,
        zone.key,
        generated,
        [
            (_("Report"), title),
            (_("Community"), community),
            (_("From"), first.isoformat()),
            (_("To (included)"), last.isoformat()),
            (_("Time zone"), zone.key),
            (_("Generated at"), f"{generated:%Y-%m-%d %H:%M:%S} ({zone.key})"),
        ],
    )


# --- a report as tables ------------------------------------------------------------------------------


def _groups(key: str, title: str, what: str, report: dict[str, Any], empty: str, _: Gettext) -> Table:
    """Service by month, category or organisation; its total row is the report's totals."""
    groups, t = report[key], report["totals"]
    kind = MONTH if key == "by_month" else TEXT
    rows = [
        [
            g["key"] if kind == MONTH else (g["name"] or g["key"]),
            g["net_minutes"],
            g["credited_minutes"],
            g["reversed_minutes"],
            g["records"],
        ]
        for g in groups
    ]
    total = [_("Total"), t["net_minutes"], t["credited_minutes"], t["reversed_minutes"], t["records"]]
    return Table(
        key,
        title,
        [
            Column(what, kind),
            Column(_("Net service"), MINUTES),
            Column(_("Credited"), MINUTES),
            Column(_("Reversed"), MINUTES),
            Column(_("Records"), COUNT),
        ],
        rows,
        total if rows else None,
        chart=1,
        empty=empty,
    )


def service_tables(report: dict[str, Any], _: Gettext) -> list[Table]:
    t = report["totals"]
    tables = [
        Table(
            "totals",
            _("Totals"),
            [
                Column(_("Net service"), MINUTES),
                Column(_("Credited"), MINUTES),
                Column(_("Reversed"), MINUTES),
                Column(_("Records"), COUNT),
                Column(_("Active volunteers"), COUNT),
                Column(_("New volunteers"), COUNT),
            ],
            [
                [
                    t["net_minutes"],
                    t["credited_minutes"],
                    t["reversed_minutes"],
                    t["records"],
                    t["active_volunteers"],
                    t["new_volunteers"],
                ]
            ],
            figures=True,
            note=_(
                "Active volunteers served in the period; new volunteers served for the first time in it. "
                "A correction counts in the period it was approved."
            ),
        ),
        _groups(
            "by_month",
            _("Service by month"),
            _("Month"),
            report,
            _("No service was credited in this period."),
            _,
        ),
        _groups(
            "by_category",
            _("Service by category"),
            _("Category"),
            report,
            _("No service was credited in this period."),
            _,
        ),
        _groups(
            "by_organisation",
            _("Service by organisation"),
            _("Organisation"),
            report,
            _("No service was credited in this period."),
            _,
        ),
        Table(
            "star_levels",
            _("Star levels now"),
            [Column(_("Star level"), LEVEL), Column(_("Volunteers"), COUNT)],
            [[s["level"], s["volunteers"]] for s in report["star_levels"]],
            [_("Total"), sum(s["volunteers"] for s in report["star_levels"])],
            chart=1,
            note=_(
                "Every volunteer's star level today, from all their service so far (not only this period)."
            ),
        ),
    ]
    if "star_crossings" in report:
        tables.append(
            Table(
                "star_crossings",
                _("Who reached a new star level"),
                [
                    Column(_("Volunteer")),
                    Column(_("From level"), LEVEL),
                    Column(_("To level"), LEVEL),
                    Column(_("Member id"), on_page=False),
                ],
                [
                    [c["name"] or c["member_id"], c["from_level"], c["to_level"], c["member_id"]]
                    for c in report.get("star_crossings", [])
                ],
                empty=_("Nobody reached a new star level in this period."),
                links=[f"/staff/members/{c['member_id']}" for c in report.get("star_crossings", [])],
            )
        )
    return tables


def points_tables(report: dict[str, Any], _: Gettext) -> list[Table]:
    expiring = {x["days"]: x["points"] for x in report["expiring"]}
    merchants = {m["merchant_id"]: m["name"] for m in report["redeemed_by_merchant"]}
    flows = [
        (_("Issued for service"), report["issued"]),
        (_("Taken back by service corrections"), report["service_reversed"]),
        (_("Redeemed at merchants"), report["redeemed"]),
        (_("Expired"), report["expired"]),
        (_("Donated to the community fund"), report["donated"]),
        (_("Adjusted by admins"), report["adjusted"]),
        (_("Received from other communities"), report["crossed_in"]),
        (_("Sent to other communities"), report["crossed_out"]),
    ]
    by_merchant = [[m["name"], m["points"], m["redemptions"]] for m in report["redeemed_by_merchant"]]
    by_reward = [
        [r["title"], merchants.get(r["merchant_id"], ""), r["points"], r["redemptions"]]
        for r in report["redeemed_by_reward"]
    ]
    none_redeemed = _("No points were redeemed in this period.")
    return [
        Table(
            "outstanding",
            _("Points members hold"),
            [
                Column(_("Outstanding at the start"), POINTS),
                Column(_("Outstanding at the end"), POINTS),
                Column(_("Change in the period"), POINTS),
                Column(_("Expiring in the next 30 days"), POINTS),
                Column(_("Expiring in the next 90 days"), POINTS),
            ],
            [
                [
                    report["outstanding_at_start"],
                    report["outstanding"],
                    report["members_net_change"],
                    expiring.get(30, 0),
                    expiring.get(90, 0),
                ]
            ],
            figures=True,
            note=_(
                "Outstanding points are what the community owes its members (its liability). "
                "Expiring points are counted from today, whatever the period."
            ),
        ),
        Table(
            "flows",
            _("Points in the period"),
            [Column(_("What happened")), Column(_("Points"), POINTS)],
            [[label, value] for label, value in flows],
            chart=1,
            note=_("Adjustments are the admins' corrections: less than zero when they took points back."),
        ),
        Table(
            "redeemed_by_merchant",
            _("Redeemed by merchant"),
            [Column(_("Merchant")), Column(_("Points"), POINTS), Column(_("Redemptions"), COUNT)],
            by_merchant,
            [_("Total"), report["redeemed"], sum(r[2] for r in by_merchant)] if by_merchant else None,
            chart=1,
            empty=none_redeemed,
        ),
        Table(
            "redeemed_by_reward",
            _("Redeemed by reward"),
            [
                Column(_("Reward")),
                Column(_("Merchant")),
                Column(_("Points"), POINTS),
                Column(_("Redemptions"), COUNT),
            ],
            by_reward,
            [_("Total"), "", report["redeemed"], sum(r[3] for r in by_reward)] if by_reward else None,
            chart=2,
            empty=none_redeemed,
        ),
    ]


def merchants_tables(report: dict[str, Any], _: Gettext) -> list[Table]:
    t = report["totals"]
    rows = [
        [m["name"], m["points_received"], m["redeemed_points"], m["redemptions"]] for m in report["merchants"]
    ]
    return [
        Table(
            "totals",
            _("Totals"),
            [
                Column(_("Points received"), POINTS),
                Column(_("Points redeemed"), POINTS),
                Column(_("Redemptions"), COUNT),
                Column(_("Merchants"), COUNT),
            ],
            [[t["points_received"], t["redeemed_points"], t["redemptions"], len(rows)]],
            figures=True,
            note=_(
                "Points received are every point a merchant's account received in the period; "
                "points redeemed are those of confirmed vouchers."
            ),
        ),
        Table(
            "merchants",
            _("Each merchant"),
            [
                Column(_("Merchant")),
                Column(_("Points received"), POINTS),
                Column(_("Points redeemed"), POINTS),
                Column(_("Redemptions"), COUNT),
            ],
            rows,
            [_("Total"), t["points_received"], t["redeemed_points"], t["redemptions"]] if rows else None,
            chart=1,
            empty=_("The community has no merchant yet."),
        ),
    ]


TABLES = {"service": service_tables, "points": points_tables, "merchants": merchants_tables}


def report_tables(name: str, report: dict[str, Any], _: Gettext) -> list[Table]:
    """The report's tables, titled and headed in the person's language."""
    return TABLES[name](report, _)


# --- the files -------------------------------------------------------------------------------------


def _hours(minutes: int) -> float:
    return round(minutes / 60, 2)


def _headings(columns: Sequence[Column], _: Gettext) -> list[str]:
    out: list[str] = []
    for c in columns:
        if c.kind == MINUTES:
            out += [
                _("%(name)s (hours)") % {"name": c.heading},
                _("%(name)s (minutes)") % {"name": c.heading},
            ]
        else:
            out.append(c.heading)
    return out


def _cells(columns: Sequence[Column], row: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for c, value in zip(columns, row, strict=True):
        if c.kind == MINUTES and isinstance(value, int):
            out += [_hours(value), value]
        elif c.kind == MINUTES:
            out += [value, ""]
        else:
            out.append(value)
    return out


def _lines(table: Table, _: Gettext) -> list[list[Any]]:
    """A table's lines in a file: its heading row, its rows, its total."""
    lines = [_headings(table.columns, _)]
    lines += [_cells(table.columns, r) for r in table.rows]
    if table.total:
        lines.append(_cells(table.columns, table.total))
    return lines


def to_csv(facts: About, tables: list[Table], _: Gettext) -> bytes:
    """UTF-8 with a byte order mark (Excel then reads Chinese right): the facts, a blank
    line, then each table (its title, its heading row, its rows), a blank line between."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    for label, value in facts.lines:
        w.writerow([label, value])
    for table in tables:
        w.writerow([])
        w.writerow([table.title])
        if not table.rows:
            w.writerow([table.empty])
            continue
        w.writerows(_lines(table, _))
    return (BOM + out.getvalue()).encode("utf-8")


_SHEET_FORBIDDEN = str.maketrans(dict.fromkeys("[]:*?/\\", " "))


def _sheet_name(title: str, taken: set[str]) -> str:
    base = title.translate(_SHEET_FORBIDDEN).strip()[:31] or "Sheet"
    name, n = base, 2
    while name.lower() in taken:
        suffix = f" {n}"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(name.lower())
    return name


def _width(value: Any) -> int:
    text = str(value) if value is not None else ""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)  # a Chinese character is two wide


def _fit(sheet: Any, rows: list[list[Any]]) -> None:
    from openpyxl.utils import get_column_letter

    widths: dict[int, int] = {}
    for row in rows:
        for i, value in enumerate(row, start=1):
            widths[i] = max(widths.get(i, 0), _width(value))
    for i, w in widths.items():
        sheet.column_dimensions[get_column_letter(i)].width = min(max(w + 2, 10), 60)


def to_xlsx(facts: About, tables: list[Table], _: Gettext) -> bytes:
    """A first sheet "About" with the facts, then a sheet per table: a title line, the
    heading row (bold, frozen), the rows and the total; numbers stay numbers."""
    import openpyxl  # only the downloads need it
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    taken: set[str] = set()
    first = book.active
    first.title = _sheet_name(_("About"), taken)
    for label, value in facts.lines:
        first.append([label, value])
    for row in first.iter_rows(min_col=1, max_col=1):
        row[0].font = Font(bold=True)
    _fit(first, [list(line) for line in facts.lines])
    bold = Font(bold=True)
    for table in tables:
        sheet = book.create_sheet(_sheet_name(table.title, taken))
        sheet.append([table.title])
        sheet["A1"].font = Font(bold=True, size=13)
        if not table.rows:
            sheet.append([table.empty])
            _fit(sheet, [[table.empty]])
            continue
        lines = _lines(table, _)
        for line in lines:
            sheet.append(line)
        for cell in sheet[2]:
            cell.font = bold
        if table.total:
            for cell in sheet[sheet.max_row]:
                cell.font = bold
        kinds: list[str] = []
        for c in table.columns:
            kinds += ["hours", MINUTES] if c.kind == MINUTES else [c.kind]
        for i, kind in enumerate(kinds, start=1):
            if kind == "hours":
                for (cell,) in sheet.iter_rows(min_row=3, min_col=i, max_col=i):
                    cell.number_format = "0.00"
        sheet.freeze_panes = "A3"
        _fit(sheet, lines)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def file_name(name: str, facts: About, extension: str) -> tuple[str, str]:
    """The file's name: ASCII (``filename=``) and in the person's words (``filename*=``)."""
    period = f"{facts.first.isoformat()}_{facts.last.isoformat()}"
    ascii_name = f"timebank-{name}-report-{period}.{extension}"
    words = f"{facts.community}-{facts.title}-{period}.{extension}".replace("/", "-").replace("\\", "-")
    return ascii_name, words


def disposition(name: str, facts: About, extension: str) -> str:
    """``Content-Disposition``: an attachment, with an ASCII name and an RFC 5987 UTF-8 one."""
    ascii_name, words = file_name(name, facts, extension)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(words, safe='')}"
