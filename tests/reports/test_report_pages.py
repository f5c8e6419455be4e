"""The reports' console pages and downloads over HTTP (no browser): an admin and a board
member read the three reports of a period; the figures on the pages and in the CSV and
.xlsx files are the API's (``/v1/reports``); other roles are refused; a wrong period is
explained on the page."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from test_reports import History

from tests.people.pages import add_person, browser, sign_in
from timebank.reports.service import POINT_FLOWS
from timebank.web.i18n import Formats, translations

PASSWORD = "report-password-1"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reports"
ZONE = ZoneInfo("Asia/Shanghai")
zh = translations("zh_CN").gettext  # the pages' words in Chinese (English until translated)


class Tables(HTMLParser):
    """The page's tables (by the id of their heading) as rows of cell texts, and its figures."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.figures: dict[str, str] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._figure: list[str] | None = None
        self._label: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and "report-table" in (a.get("class") or ""):
            self._table = (a.get("aria-labelledby") or "").removesuffix("-heading")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        elif tag == "p" and a.get("class") in ("label", "value"):
            self._figure = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "p" and self._figure is not None:
            text = "".join(self._figure).strip()
            if self._label is None:
                self._label = text
            else:
                self.figures[self._label] = text
                self._label = None
            self._figure = None

    def handle_data(self, data: str) -> None:
        for part in (self._cell, self._figure):
            if part is not None:
                part.append(data)


def parse(html: str) -> Tables:
    t = Tables()
    t.feed(html)
    return t


def today() -> date:
    return datetime.now(ZONE).date()


def days() -> tuple[dict[str, str], dict[str, str]]:
    """A period holding today: the page's (last day included) and the API's (to excluded)."""
    first, last = today() - timedelta(days=2), today() + timedelta(days=1)
    page = {"from": first.isoformat(), "to": last.isoformat()}
    return page, {"from": first.isoformat(), "to": (last + timedelta(days=1)).isoformat()}


async def history(tenant: Any, engine: Any) -> History:
    h = await History(tenant, engine).setup()
    await h.policy(star_thresholds_hours=[1, 3, 6, 10, 15])
    await h.serve(0, 0, "volunteer_service", 120)
    await h.serve(0, 1, "neighbour_aid", 60)
    await h.serve(1, 1, "day_care", 90)
    corrected = await h.serve(1, 0, "day_care", 60)
    assert await h.reverse(corrected["record"]["id"])
    await h.adjust(2, 100)
    assert await h.redeem(2, 0)
    assert await h.redeem(2, 1)
    assert await h.donate(0, 5)
    tag = uuid.uuid4().hex[:8]
    h.logins = {"admin": f"rep-admin-{tag}", "auditor": f"rep-board-{tag}"}  # type: ignore[attr-defined]
    await add_person(tenant, "admin", None, "社工 小陈", h.logins["admin"], PASSWORD)  # type: ignore[attr-defined]
    board = await tenant.member("监事 老李")
    await add_person(tenant, "auditor", board["id"], "监事 老李", h.logins["auditor"], PASSWORD)  # type: ignore[attr-defined]
    return h


@asynccontextmanager
async def signed_in(tenant: Any, login: str, lang: str = "zh-CN") -> AsyncIterator[Any]:
    async with browser(tenant.client, lang) as phone:
        r = await sign_in(phone, login, PASSWORD)
        assert r.status_code == 303, r.text
        yield phone


async def test_staff_see_the_apis_figures_on_the_pages(tenant, engine) -> None:
    h = await history(tenant, engine)
    page_days, api_days = days()
    fmt = Formats("zh_CN", "Asia/Shanghai")
    service = await h.report("service", **api_days)
    points = await h.report("points", **api_days)
    merchants = await h.report("merchants", **api_days)
    for who in ("admin", "auditor"):
        async with signed_in(tenant, h.logins[who]) as phone:  # type: ignore[attr-defined]
            r = await phone.get("/staff/reports", params=page_days)
            assert r.status_code == 200, r.text[:2000]
            assert r.headers["content-security-policy"]
            assert 'style="' not in r.text and "<script>" not in r.text
            page = parse(r.text)
            t = service["totals"]
            assert page.figures[zh("Net service")] == fmt.hours(t["net_minutes"])
            assert page.figures[zh("Active volunteers")] == fmt.number(t["active_volunteers"])
            assert page.figures[zh("New volunteers")] == fmt.number(t["new_volunteers"])
            orgs = {row[0]: row[1:] for row in page.tables["by_organisation"][1:]}
            for g in service["by_organisation"]:
                assert orgs[g["name"]] == [
                    fmt.hours(g["net_minutes"]),
                    fmt.hours(g["credited_minutes"]),
                    fmt.hours(g["reversed_minutes"]),
                    fmt.number(g["records"]),
                ]
            total = page.tables["by_organisation"][-1]
            assert total[1:] == [
                fmt.hours(t["net_minutes"]),
                fmt.hours(t["credited_minutes"]),
                fmt.hours(t["reversed_minutes"]),
                fmt.number(t["records"]),
            ]
            categories = {row[0] for row in page.tables["by_category"][1:]}
            assert {g["name"] for g in service["by_category"]} <= categories
            assert len(page.tables["star_levels"]) == 1 + 6 + 1
            crossings = service.get("star_crossings")
            if crossings is not None:  # who reached a new level: each a link to their page
                assert crossings and len(page.tables["star_crossings"]) == 1 + len(crossings)
                for c in crossings:
                    assert f'href="/staff/members/{c["member_id"]}"' in r.text
            assert r.text.count('role="img"') == 4  # month, category, organisation, star levels
            assert (
                "/staff/reports/service.csv?from=" in r.text and "/staff/reports/service.xlsx?from=" in r.text
            )

            r = await phone.get("/staff/reports/points", params=page_days)
            assert r.status_code == 200, r.text[:2000]
            page = parse(r.text)
            flows = [row[1] for row in page.tables["flows"][1:]]
            assert flows == [fmt.points(points[k]) for k in POINT_FLOWS]
            assert page.figures[zh("Outstanding at the end")] == fmt.points(points["outstanding"])
            shops = {row[0]: row[1:] for row in page.tables["redeemed_by_merchant"][1:]}
            for m in points["redeemed_by_merchant"]:
                assert shops[m["name"]] == [fmt.points(m["points"]), fmt.number(m["redemptions"])]
            assert len(page.tables["redeemed_by_reward"]) == 1 + len(points["redeemed_by_reward"]) + 1

            r = await phone.get("/staff/reports/merchants", params=page_days)
            assert r.status_code == 200, r.text[:2000]
            page = parse(r.text)
            rows = {row[0]: row[1:] for row in page.tables["merchants"][1:]}
            for m in merchants["merchants"]:
                assert rows[m["name"]] == [
                    fmt.points(m["points_received"]),
                    fmt.points(m["redeemed_points"]),
                    fmt.number(m["redemptions"]),
                ]
            assert rows[zh("Total")] == [
                fmt.points(merchants["totals"]["points_received"]),
                fmt.points(merchants["totals"]["redeemed_points"]),
                fmt.number(merchants["totals"]["redemptions"]),
            ]


async def test_this_month_by_default_and_the_quick_choices(tenant, engine) -> None:
    h = await history(tenant, engine)
    async with signed_in(tenant, h.logins["admin"], "en") as phone:  # type: ignore[attr-defined]
        r = await phone.get("/staff/reports/points")
        assert r.status_code == 200, r.text[:2000]
        first = today().replace(day=1)
        assert f'value="{first.isoformat()}"' in r.text
        assert "This month" in r.text and "Last month" in r.text and "Last year" in r.text
        assert re.search(r'aria-current="true"[^>]*>|aria-current="true">', r.text)
        year = today().year
        assert f"from={year - 1}-01-01&amp;to={year - 1}-12-31" in r.text
        r = await phone.get(
            "/staff/reports/merchants", params={"from": f"{year - 1}-01-01", "to": f"{year - 1}-12-31"}
        )
        assert r.status_code == 200
        assert "The community has no merchant yet." not in r.text  # the merchants are listed, with 0


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"from": "2026-11-30", "to": "2026-11-01"}, "The last day is before the first day"),
        ({"from": "2026-13-01", "to": "2026-11-30"}, "Choose a day"),
        ({"from": "yesterday", "to": ""}, "Choose a day"),
        ({"from": "1990-01-01", "to": "2026-11-30"}, "at most ten years"),
    ],
)
async def test_a_wrong_period_is_explained_on_the_page(tenant, given, words) -> None:
    login = f"rep-admin-{uuid.uuid4().hex[:8]}"
    await add_person(tenant, "admin", None, "社工", login, PASSWORD)
    async with signed_in(tenant, login, "en") as phone:
        r = await phone.get("/staff/reports", params=given)
        assert r.status_code == 400
        assert "text/html" in r.headers["content-type"]
        assert words in r.text
        assert 'role="alert"' in r.text and 'aria-invalid="true"' in r.text
        assert 'name="from"' in r.text  # the form again, to correct it
        assert "Download CSV" not in r.text


async def test_other_roles_are_refused(tenant) -> None:
    member = await tenant.member("居民")
    shop = await tenant.party("merchants", "小店")
    people = {"resident": member["id"], "merchant": shop["id"]}
    for role, subject in people.items():
        login = f"rep-{role}-{uuid.uuid4().hex[:8]}"
        await add_person(tenant, role, subject, role, login, PASSWORD)
        async with signed_in(tenant, login) as phone:
            for path in ("/staff/reports", "/staff/reports/points", "/staff/reports/merchants.csv"):
                r = await phone.get(path)
                assert r.status_code == 403, (role, path, r.status_code)
    async with browser(tenant.client) as stranger:
        r = await stranger.get("/staff/reports/service.xlsx")
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


def assert_generation_time(said: str, asked: datetime) -> None:
    """The file says when its report was made, in the community's zone: while it was asked for."""
    when, zone = said.split(" (")
    assert zone == "Asia/Shanghai)"
    made = datetime.strptime(when, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZONE)
    assert asked - timedelta(seconds=1) <= made <= datetime.now(ZONE)


def _csv_tables(text: str) -> tuple[list[list[str]], dict[str, list[list[str]]]]:
    """The facts (before the first blank line) and each table by its title."""
    lines = list(csv.reader(io.StringIO(text)))
    blank = lines.index([])
    facts, tables, current = lines[:blank], {}, None
    for line in lines[blank:]:
        if not line:
            current = None
        elif current is None:
            current = line[0]
            tables[current] = []
        else:
            tables[current].append(line)
    return facts, tables


async def test_the_csv_files_hold_the_apis_figures(tenant, engine) -> None:
    h = await history(tenant, engine)
    page_days, api_days = days()
    service = await h.report("service", **api_days)
    points = await h.report("points", **api_days)
    merchants = await h.report("merchants", **api_days)
    async with signed_in(tenant, h.logins["auditor"]) as phone:  # type: ignore[attr-defined]
        asked = datetime.now(ZONE)
        r = await phone.get("/staff/reports/service.csv", params=page_days)
        assert r.status_code == 200, r.text[:2000]
        assert r.content.startswith(b"\xef\xbb\xbf")
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        disposition = r.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        plain = re.search(r'filename="([^"]+)"', disposition).group(1)
        assert plain.isascii() and plain.endswith(".csv") and page_days["from"] in plain
        words = unquote(re.search(r"filename\*=UTF-8''(\S+)", disposition).group(1))
        assert words.startswith("测试社区") and zh("Service report") in words and page_days["to"] in words

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "service-report-zh.csv").write_bytes(r.content)  # to look at
        facts, tables = _csv_tables(r.content.decode("utf-8-sig"))
        said = dict(facts)
        assert said[zh("Report")] == zh("Service report")
        assert said[zh("Community")].startswith("测试社区")
        assert (said[zh("From")], said[zh("To (included)")]) == (page_days["from"], page_days["to"])
        assert said[zh("Time zone")] == "Asia/Shanghai"
        assert_generation_time(said[zh("Generated at")], asked)
        t = service["totals"]
        by_org = tables[zh("Service by organisation")]
        assert len(by_org[0]) == 1 + 2 * 3 + 1  # name, (hours, minutes) × 3, records
        total = by_org[-1]
        assert total[0] == zh("Total")
        assert [float(total[1]), int(total[2]), int(total[4]), int(total[6]), int(total[7])] == [
            round(t["net_minutes"] / 60, 2),
            t["net_minutes"],
            t["credited_minutes"],
            t["reversed_minutes"],
            t["records"],
        ]
        totals = tables[zh("Totals")]
        assert int(totals[1][-2]) == t["active_volunteers"] and int(totals[1][-1]) == t["new_volunteers"]

        r = await phone.get("/staff/reports/points.csv", params=page_days)
        facts, tables = _csv_tables(r.content.decode("utf-8-sig"))
        flows = [int(row[1]) for row in list(tables.values())[1][1:]]
        assert flows == [points[k] for k in POINT_FLOWS]
        shops = tables[zh("Redeemed by merchant")]
        assert shops[-1][0] == zh("Total") and int(shops[-1][1]) == points["redeemed"]
        held = next(iter(tables.values()))
        assert [int(x) for x in held[1]] == [
            points["outstanding_at_start"],
            points["outstanding"],
            points["members_net_change"],
            *(x["points"] for x in points["expiring"]),
        ]

        r = await phone.get("/staff/reports/merchants.csv", params=page_days)
        facts, tables = _csv_tables(r.content.decode("utf-8-sig"))
        each = list(tables.values())[1]
        assert each[-1][0] == zh("Total")
        assert [int(x) for x in each[-1][1:]] == [
            merchants["totals"]["points_received"],
            merchants["totals"]["redeemed_points"],
            merchants["totals"]["redemptions"],
        ]


async def test_the_xlsx_files_hold_the_apis_figures_as_numbers(tenant, engine) -> None:
    h = await history(tenant, engine)
    page_days, api_days = days()
    service = await h.report("service", **api_days)
    merchants = await h.report("merchants", **api_days)
    async with signed_in(tenant, h.logins["admin"], "en") as phone:  # type: ignore[attr-defined]
        asked = datetime.now(ZONE)
        r = await phone.get("/staff/reports/service.xlsx", params=page_days)
        assert r.status_code == 200, r.text[:2000]
        assert (
            r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        assert "filename*=UTF-8''" in r.headers["content-disposition"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "service-report-en.xlsx").write_bytes(r.content)  # to look at
        book = openpyxl.load_workbook(io.BytesIO(r.content))
        assert book.sheetnames[0] == "About"
        about = {row[0]: row[1] for row in book["About"].iter_rows(values_only=True)}
        assert about["Report"] == "Service report"
        assert (about["From"], about["To (included)"]) == (page_days["from"], page_days["to"])
        assert_generation_time(about["Generated at"], asked)
        assert book["About"].column_dimensions["A"].width >= 10
        assert "Service by organisation" in book.sheetnames
        sheet = book["Service by organisation"]
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[0][0] == "Service by organisation"
        assert rows[1][:3] == ("Organisation", "Net service (hours)", "Net service (minutes)")
        t = service["totals"]
        assert rows[-1][0] == "Total"
        assert rows[-1][2] == t["net_minutes"] and isinstance(rows[-1][2], int)
        assert rows[-1][1] == pytest.approx(t["net_minutes"] / 60, abs=0.01)
        assert isinstance(rows[-1][1], float | int)
        for row in rows[2:-1]:
            assert all(isinstance(v, int | float) for v in row[1:])
        assert sheet.column_dimensions["A"].width >= 10

        r = await phone.get("/staff/reports/merchants.xlsx", params=page_days)
        book = openpyxl.load_workbook(io.BytesIO(r.content))
        rows = list(book["Each merchant"].iter_rows(values_only=True))
        assert rows[-1] == (
            "Total",
            merchants["totals"]["points_received"],
            merchants["totals"]["redeemed_points"],
            merchants["totals"]["redemptions"],
        )
