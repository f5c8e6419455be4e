"""The organisation recorder's pages over HTTP (no JavaScript): one service for several
volunteers from one form, a spreadsheet imported after a dry run, the records list.
What the pages did is checked through the API."""

from __future__ import annotations

import base64
import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.console.recorder import (
    ZONE,
    at,
    csv_of,
    day,
    desk,
    new_login,
    team,
    text_of,
    xlsx_of,
)
from tests.people.pages import add_person, browser, sign_in
from timebank.core.access import Principal
from timebank.core.problems import BadRequest
from timebank.core.roles import Role
from timebank.volunteer import recording, spreadsheet
from timebank.volunteer.csv_import import parse_csv
from timebank.volunteer.reasons import reason_words
from timebank.volunteer.records import ImportTooLarge
from timebank.web.i18n import Formats

HX = {"HX-Request": "true"}


def _form(idem: str, members: list[str], **fields: str) -> list[tuple[str, str]]:
    """The record form's fields (the volunteers as hidden rows, minutes_<id> per row)."""
    base = {
        "idem": idem,
        "activity": "陪老人聊天",
        "category": "volunteer_service",
        "place": "日间照料中心",
        "day": day(1).isoformat(),
        "start": "09:00",
        "end": "11:00",
        "action": "record",
    }
    base.update(fields)
    return [*base.items(), *(("member_id", m) for m in members)]


# --- recording one service for several volunteers ----------------------------------------------------


async def test_one_form_records_three_volunteers_and_says_which_one_broke_a_rule_next_to_it(tenant) -> None:
    async with desk(tenant) as (crew, me):
        wang = await crew.volunteer("王芳", ref="V-101")
        li = await crew.volunteer("李强", phone=(phone := new_login()))
        zhao = await crew.volunteer("赵敏")
        assert (await crew.record("赵敏", at(1, 10), 60)).status_code == 201  # 赵敏 is busy 10:00–11:00

        page = await me.page("/org")
        assert 'name="idem"' in page and 'hx-get="/org/volunteers"' in page
        assert '<option value="volunteer_service"' in page  # the community's categories
        # search as you type (htmx: the results only): by name, phone, member id, volunteer number
        found = await me.page("/org/volunteers?q=王", **HX)
        assert "<html" not in found and "王芳" in found and f'"add": "{wang["id"]}"' in found
        assert "李强" in await me.page(f"/org/volunteers?q={phone}", **HX)
        assert "赵敏" in await me.page(f"/org/volunteers?q={zhao['id']}", **HX)
        assert "王芳" in await me.page("/org/volunteers?q=V-101", **HX)
        assert "No volunteer matches" in await me.page("/org/volunteers?q=nobody-here", **HX)
        # a volunteer added (htmx): its row, the result marked chosen, the count
        row = await me.page(f"/org/volunteer-row?add={wang['id']}", **HX)
        assert f'name="member_id" value="{wang["id"]}"' in row and 'hx-swap-oob="true"' in row
        again = await me.phone.get(f"/org/volunteer-row?add={wang['id']}&member_id={wang['id']}", headers=HX)
        assert again.status_code == 204  # chosen already: nothing added twice

        _, idem = await me.record_form()
        fields = _form(idem, [wang["id"], li["id"], zhao["id"]], **{f"minutes_{wang['id']}": "60"})
        r = await me.post("/org", fields)
        assert r.status_code == 422, r.text[:3000]
        # 赵敏's row comes back with the reason next to it; the two others are recorded
        zhao_row = re.search(rf'<li class="card volunteer" id="chosen-{zhao["id"]}">.*?</li>', r.text, re.S)
        assert zhao_row and 'class="alert"' in zhao_row.group(0)
        assert "already has service recorded at this time" in zhao_row.group(0)
        assert f'id="chosen-{wang["id"]}"' not in r.text and f'id="chosen-{li["id"]}"' not in r.text
        assert "Recorded for 2 volunteers" in text_of(r.text)
        assert f'name="idem" value="{idem}"' in r.text  # the same form: a resend records nothing twice

        records = await crew.records()
        mine = {x["member_id"]: x for x in records if x["activity"] == "陪老人聊天"}
        assert set(mine) == {wang["id"], li["id"]}
        assert mine[wang["id"]]["minutes"] == 60 and mine[li["id"]]["minutes"] == 120
        assert datetime.fromisoformat(mine[wang["id"]]["started_at"]) == at(1, 9)
        assert all(x["status"] == "submitted" for x in mine.values())

        # the whole form sent again (a double tap, a resend): nothing is recorded twice
        r = await me.post("/org", fields)
        assert r.status_code == 422
        assert len(await crew.records()) == len(records)

        # 赵敏 in the afternoon instead: recorded, and the page goes to what was recorded
        r = await me.post("/org", _form(idem, [zhao["id"]], start="14:00", end="16:00"))
        assert r.status_code == 303, r.text[:3000]
        done = await me.page(r.headers["location"])
        assert "赵敏" in done and "Waiting for approval" in done
        assert len(await crew.records()) == len(records) + 1


async def test_without_javascript_the_form_finds_adds_and_removes_volunteers(tenant) -> None:
    async with desk(tenant) as (crew, me):
        a = await crew.volunteer("孙丽")
        b = await crew.volunteer("孙伟")
        _, idem = await me.record_form()
        base = [("idem", idem), ("activity", "清扫"), ("q", "孙")]
        r = await me.post("/org", [*base, ("action", "search")])
        assert r.status_code == 200 and "<html" in r.text
        assert f'name="add" value="{a["id"]}"' in r.text and f'name="add" value="{b["id"]}"' in r.text
        r = await me.post("/org", [*base, ("add", a["id"])])
        assert f'name="member_id" value="{a["id"]}"' in r.text
        assert 'value="清扫"' in r.text  # what was typed stays
        r = await me.post("/org", [*base, ("member_id", a["id"]), ("add", b["id"])])
        assert r.text.count('name="member_id"') == 2
        r = await me.post(
            "/org", [*base, ("member_id", a["id"]), ("member_id", b["id"]), ("remove", a["id"])]
        )
        assert r.text.count('name="member_id"') == 1 and f'name="member_id" value="{b["id"]}"' in r.text
        # a bare search page (GET) works too
        assert "孙丽" in await me.page("/org/volunteers?q=孙丽")
        assert await crew.records() == []


async def test_mistakes_in_the_form_are_marked_and_nothing_is_recorded(tenant) -> None:
    async with desk(tenant, "zh-CN") as (crew, me):
        v = await crew.volunteer("周杰")
        _, idem = await me.record_form()
        r = await me.post("/org", _form(idem, []))
        assert r.status_code == 400 and 'id="err-volunteers"' in r.text
        r = await me.post("/org", _form(idem, [v["id"]], start="11:00", end="09:00", category=""))
        assert r.status_code == 400 and 'id="err-end"' in r.text and 'id="err-category"' in r.text
        r = await me.post("/org", _form(idem, [v["id"]], day="not a day"))
        assert r.status_code == 400 and 'id="err-day"' in r.text
        r = await me.post("/org", _form(idem, [v["id"]], **{f"minutes_{v['id']}": "500"}))
        assert r.status_code == 400 and f'id="error-{v["id"]}"' in r.text
        # the service's own refusal (in the future), on the volunteer's row
        tomorrow = (datetime.now(ZONE).date() + timedelta(days=1)).isoformat()
        r = await me.post("/org", _form(idem, [v["id"]], day=tomorrow))
        assert r.status_code == 422 and f'id="error-{v["id"]}"' in r.text
        # a member of another community is not offered, nor recorded
        r = await me.post("/org", _form(idem, [str(uuid.uuid4())]))
        assert r.status_code == 400 and 'id="err-volunteers"' in r.text
        assert await crew.records() == []


async def test_a_trusted_organisation_sees_its_service_approved_at_once(tenant) -> None:
    async with desk(tenant) as (crew, me):
        await crew.trust()
        v = await crew.volunteer("钱多多")
        _, idem = await me.record_form()
        r = await me.post("/org", _form(idem, [v["id"]]))
        assert r.status_code == 303, r.text[:2000]
        done = text_of(await me.page(r.headers["location"]))
        assert "Approved" in done and "trusted" in done
        (record,) = await crew.records()
        assert record["status"] == "approved" and record["transaction_id"]


async def test_only_recorders_use_these_pages_and_each_sees_its_own_records(tenant) -> None:
    async with desk(tenant) as (crew, me):
        v = await crew.volunteer("吴悠")
        assert (await crew.record("吴悠", at(2, 9), 60)).status_code == 201
        other = await team(tenant, "阳光助老队")
        other.volunteers = crew.volunteers
        assert (await other.record("吴悠", at(3, 9), 60)).status_code == 201
        listed = await me.page("/org/records")
        assert listed.count("<tr>") == 2  # the header and our one record
        # another organisation's record is not shown, even by its id
        theirs = (await other.records())[0]
        assert (await me.phone.get(f"/org/done?r={theirs['id']}")).status_code == 404
    resident, staff = new_login(), f"staff-{uuid.uuid4().hex[:8]}"
    await add_person(tenant, "resident", v["id"], "吴悠", resident, "a-good-password")
    await add_person(tenant, "admin", None, "社工 小周", staff, "a-good-password")
    for login in (resident, staff):  # the pages are the organisation's: staff have their own
        async with browser(tenant.client) as phone:
            await sign_in(phone, login, "a-good-password")
            for path in (
                "/org",
                "/org/import",
                "/org/records",
                "/org/volunteers?q=吴",
                "/org/import/template.csv",
            ):
                assert (await phone.get(path)).status_code == 403, (login, path)


# --- importing a file --------------------------------------------------------------------------------


def _lines(ref_ok: str, ref_other: str) -> list[str]:
    d1, d2 = day(1).isoformat(), day(2).isoformat()
    return [
        f"{ref_ok},陪老人聊天,志愿服务,日间照料中心,{d1} 09:00,{d1} 11:00,李爷爷",  # 2: ok
        f"{ref_other},读报,志愿服务,日间照料中心,{d1} 09:00,{d1} 10:00,",  # 3: ok
        f"{ref_ok},清扫,志愿服务,小区,{d1} 10:00,{d1} 12:00,",  # 4: overlaps line 2
        f"{ref_ok},清扫,不存在的类别,小区,{d2} 10:00,{d2} 12:00,",  # 5: no such category
        f"NOBODY,清扫,志愿服务,小区,{d2} 10:00,{d2} 12:00,",  # 6: no such volunteer
        f"{ref_other},清扫,志愿服务,小区,昨天上午,{d2} 12:00,",  # 7: not a time
    ]


async def test_a_csv_is_checked_line_by_line_then_imported_once_even_if_uploaded_again(tenant) -> None:
    async with desk(tenant) as (crew, me):
        await crew.volunteer("王芳", ref="V-1")
        await crew.volunteer("李强", ref="V-2")
        data = csv_of(_lines("V-1", "V-2"))

        preview = await me.upload("本周.csv", data)
        assert preview.status_code == 200, preview.text[:3000]
        words = text_of(preview.text)
        assert await crew.records() == []  # the dry run stored nothing
        for line, words_of in (
            (4, "already has service recorded at this time"),
            (5, "is not one of the community's service categories"),
            (6, "No volunteer of the community has the id or number NOBODY"),
            (7, "is not a time"),
        ):
            assert f'class="card line refused" data-line="{line}"' in preview.text, line
            assert words_of in words
        assert preview.text.count('class="card line ok"') == 2
        assert "Record 2 services" in words

        done = await me.run(preview)
        assert done.status_code == 200, done.text[:3000]
        assert len(await crew.records()) == 2
        assert re.search(r"Recorded</p><p class=\"value\">2<", done.text)
        assert re.search(r"Not recorded</p><p class=\"value\">4<", done.text)
        # the rejected lines, each as it was with its reason, to correct and import again
        token = re.search(r'name="rejected" value="([^"]+)"', done.text).group(1)
        download = await me.phone.post(
            "/org/import/rejected.csv",
            data={"_csrf_token": await me.token()},
            files={"rejected": (None, token)},
        )
        assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
        assert rows[0][-2:] == ["Line", "Reason"] and [r[-2] for r in rows[1:]] == ["4", "5", "6", "7"]
        assert rows[1][:2] == ["V-1", "清扫"]

        # the same file again: every good line is "recorded before", nothing is stored twice
        again = await me.upload("本周.csv", data)
        assert "Recorded before: not stored again" in text_of(again.text)
        assert "There is nothing new to record" in text_of(again.text)
        r = await me.phone.post(
            "/org/import/run",
            data={"_csrf_token": await me.token()},
            files={k: (None, v) for k, v in _hidden(preview.text).items()},
        )
        assert r.status_code == 200 and re.search(r"Recorded before</p><p class=\"value\">2<", r.text)
        assert len(await crew.records()) == 2


def _hidden(page: str) -> dict[str, str]:
    import html

    found = re.findall(r'<input type="hidden" name="(upload|checksum|name)" value="([^"]*)"', page)
    return {k: html.unescape(v) for k, v in found}


async def test_an_excel_workbook_is_read_like_the_csv(tenant) -> None:
    async with desk(tenant) as (crew, me):
        await crew.volunteer("王芳", ref="1024")
        d1 = day(1)
        rows = [
            [
                1024,
                "陪老人聊天",
                "志愿服务",
                "日间照料中心",
                at(1, 9).replace(tzinfo=None),
                at(1, 11).replace(tzinfo=None),
                "李爷爷",
            ],
            [1024, "清扫", "志愿服务", "小区", f"{d1} 10:00", f"{d1} 12:00", None],  # overlaps
            [None, None, None, None, None, None, None],  # a blank line means nothing
            ["9999", "清扫", "志愿服务", "小区", f"{d1} 13:00", f"{d1} 14:00", None],  # nobody
        ]
        data = xlsx_of(rows)
        kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        preview = await me.upload("本周.xlsx", data, kind)
        assert preview.status_code == 200, preview.text[:3000]
        assert (
            preview.text.count('class="card line ok"') == 1
            and preview.text.count('class="card line refused"') == 2
        )
        assert 'class="card line refused" data-line="3"' in preview.text
        assert 'class="card line refused" data-line="5"' in preview.text
        done = await me.run(preview)
        assert done.status_code == 200
        (record,) = await crew.records()
        assert record["minutes"] == 120 and record["beneficiary"] == "李爷爷"
        # uploaded again: nothing new
        again = await me.upload("本周.xlsx", data, kind)
        assert "There is nothing new to record" in text_of(again.text)
        assert len(await crew.records()) == 1


async def test_files_that_cannot_be_read_are_explained(tenant) -> None:
    async with desk(tenant) as (crew, me):
        cases = [
            ("a.csv", "活动名称,服务地点\n陪聊,中心\n".encode(), "Missing:"),
            ("a.csv", "志愿者编号,活动名称\n".encode("gbk"), "not UTF-8"),
            ("a.xlsx", b"PK\x03\x04 not really a workbook", "Excel workbook"),
            ("a.csv", b"", "empty"),
        ]
        for name, content, says in cases:
            r = await me.upload(name, content)
            assert r.status_code == 400, (name, r.status_code)
            assert says in text_of(r.text), (says, text_of(r.text)[:500])
        r = await me.post("/org/import/preview", [])
        assert r.status_code == 400 and "Choose the file" in text_of(r.text)
        r = await me.upload("big.csv", csv_of([]) + b"x" * 6_000_000)  # TIMEBANK_IMPORT_MAX_BYTES
        assert r.status_code == 413 and "Split it into several files" in text_of(r.text)
        # htmx swaps only 2xx: the same page, as a 200
        r = await me.phone.post(
            "/org/import/preview",
            data={"_csrf_token": await me.token()},
            files={"file": ("a.csv", b"", "text/csv")},
            headers=HX,
        )
        assert r.status_code == 200 and 'role="alert"' in r.text
        # a preview's file that comes back changed is not imported
        preview = await me.upload("ok.csv", csv_of([]))
        fields = _hidden(preview.text) or {"name": "ok.csv"}
        fields.update(upload=spreadsheet.pack(csv_of(["X,Y,志愿服务,Z,2020-01-01 09:00,2020-01-01 10:00,"])))
        fields.setdefault("checksum", "0" * 32)
        r = await me.phone.post(
            "/org/import/run",
            data={"_csrf_token": await me.token()},
            files={k: (None, v) for k, v in fields.items()},
        )
        assert r.status_code == 400
        assert await crew.records() == []


async def test_the_templates_have_the_importers_chinese_headers_and_an_example(tenant, engine) -> None:
    async with desk(tenant) as (_, me):
        r = await me.phone.get("/org/import/template.csv")
        assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
        header, example = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert header == spreadsheet.TEMPLATE_HEADERS and header[:3] == ["成员ID", "志愿者编号", "活动名称"]
        assert example[3] == "志愿服务"
        rows, unreadable = parse_csv(r.content, ZONE)
        assert unreadable == [] and rows[0].member_ref == "V0001" and rows[0].category == "志愿服务"
        x = await me.phone.get("/org/import/template.xlsx")
        assert x.status_code == 200 and x.content[:4] == b"PK\x03\x04"
        as_csv = spreadsheet.xlsx_as_csv(x.content, max_rows=10, max_bytes=10_000)
        xrows, xunreadable = parse_csv(as_csv, ZONE)
        assert xunreadable == [] and xrows[0].started_at == rows[0].started_at


async def test_the_dry_run_judges_every_line_as_the_import_does(tenant, engine) -> None:
    """``preview_many`` and ``record_many`` share their checks: the same lines pass, with the same reasons."""
    crew = await team(tenant)
    await crew.volunteer("王芳", ref="V-1")
    await crew.volunteer("李强", ref="V-2")
    rows, _ = parse_csv(csv_of(_lines("V-1", "V-2")), ZONE)
    who = Principal(uuid.uuid4(), uuid.UUID(tenant.id), Role.RECORDER, uuid.UUID(crew.org["id"]))
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        preview = await recording.preview_many(conn, who, rows, now=now, derive_refs=True)
    rows, _ = parse_csv(csv_of(_lines("V-1", "V-2")), ZONE)
    async with engine.begin() as conn:
        done = await recording.record_many(conn, who, rows, now=now, derive_refs=True)
    assert preview.rejected == done.rejected
    assert [(a["line"], a["member_id"], a["minutes"]) for a in preview.accepted] == [
        (a["line"], a["member_id"], a["minutes"]) for a in done.accepted
    ]


# --- the records --------------------------------------------------------------------------------------


async def test_the_records_are_filtered_and_paged_by_cursor(tenant) -> None:
    async with desk(tenant) as (crew, me):
        await crew.volunteer("王芳", ref="V-1")
        await crew.volunteer("李强", ref="V-2", phone=(phone := new_login()))
        lines = []
        for n in range(55):  # more than a page (50), one a day
            d = day(n + 1).isoformat()
            lines.append(f"V-1,巡逻,志愿服务,小区,{d} 09:00,{d} 10:00,")
        d3 = day(3).isoformat()
        lines.append(f"V-2,义诊,文体健康,社区中心,{d3} 14:00,{d3} 16:00,")
        r = await crew.t.client.post(
            "/v1/service-records/import",
            content=csv_of(lines),
            headers={**crew.t.auth(crew.key), "Content-Type": "text/csv"},
        )
        assert r.status_code == 200 and not r.json()["rejected"], r.text[:500]

        first = await me.page("/org/records")
        assert first.count("<tr>") == 51  # the header and 50
        nxt = re.search(r'href="(/org/records\?cursor=[^"]+)" rel="next"', first).group(1)
        second = await me.page(nxt.replace("&amp;", "&"))
        assert second.count("<tr>") == 7 and 'rel="next"' not in second and "Back to the newest" in second

        by_category = await me.page("/org/records?category=culture_health")
        assert by_category.count("<tr>") == 2 and "义诊" in by_category
        by_phone = await me.page(f"/org/records?member={phone}")
        assert by_phone.count("<tr>") == 2 and "Records of 李强" in text_of(by_phone)
        by_days = await me.page(f"/org/records?from={day(5).isoformat()}&to={day(3).isoformat()}")
        assert by_days.count("<tr>") == 5  # three days of 王芳, and 李强's
        waiting = await me.page("/org/records?status=approved")
        assert "No records match" in waiting
        # several volunteers match: choose one
        await crew.volunteer("王小芳")
        several = await me.page("/org/records?member=芳")
        assert "Several volunteers match" in text_of(several) and several.count('class="card"') == 2
        nobody = await me.page("/org/records?member=nobody")
        assert "No volunteer matches" in text_of(nobody)
        bad = await me.page("/org/records?from=yesterday", status=400)
        assert 'role="alert"' in bad


# --- the words of the service's reasons ---------------------------------------------------------------


@pytest.mark.parametrize(
    "reason, words",
    [
        ("overlaps another record of this volunteer", "already has service recorded"),
        ("more than the daily cap of 12 h on 2026-11-02", "daily limit of 12 h of service on Nov 2, 2026"),
        ("more than the daily cap of 7 h 30 min on 2026-11-02", "daily limit of 7.5 h"),
        ("the service cannot end in the future", "cannot end in the future"),
        ("ended_at must be after started_at", "The end must be after the start"),
        ("shorter than the community's rounding unit (15 min)", "Shorter than 15 minutes"),
        ("category 'x' is not one of the community's categories (a, b)", "“x” is not one of"),
        ("member V-9 is not a member of this community", "id or number V-9"),
        ("activity is required", "The activity is missing"),
        ("member_id (or member_ref) is required", "The volunteer is missing"),
        ("place is longer than 200 characters", "The place is longer than 200 characters"),
        ("activity contains the control character U+0000, which no field accepts", "(U+0000)"),
        ("external_ref 'csv:0123abcd' appears twice (also line 3)", "The same service appears twice"),
        ("external_ref 'A-1' appears twice (also line 3)", "The record number A-1 appears twice"),
        ("a recorder records for its own organisation only", "your own organisation"),
        ("9 cells, the header has 7", "This line has 9 cells"),
        ("'昨天' is not a time (use 2026-11-01 09:30 or RFC 3339)", "“昨天” is not a time"),
        ("not an id: badly formed hexadecimal UUID string", "is not an id"),
        ("something new", "something new"),
    ],
)
def test_each_reason_of_the_service_has_words(reason: str, words: str) -> None:
    assert words in reason_words(reason, lambda s: s, Formats("en", "Asia/Shanghai"))


def test_the_file_carried_in_the_page_unpacks_within_the_limit_only() -> None:
    data = "志愿者编号,活动名称\n".encode() * 1000
    assert spreadsheet.unpack(spreadsheet.pack(data), len(data)) == data
    with pytest.raises(ImportTooLarge):  # a small field that would unpack to far more
        spreadsheet.unpack(spreadsheet.pack(b"a" * 10_000_000), 6_000_000)
    packed = spreadsheet.pack(data)
    cut = packed[: len(packed) // 8 * 4]  # a stream that stops early
    for damaged in ("not base64!", base64.b64encode(b"not zlib at all").decode(), cut, ""):
        with pytest.raises(BadRequest):
            spreadsheet.unpack(damaged, len(data))
