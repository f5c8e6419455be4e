"""The approval queue and the corrections queue over HTTP (no browser): filters, sorts and
pages; approving a selection record by record (each its own idempotent approval, with
its receipt, a partial failure told per record); rejecting with a reason; corrections
with four eyes; the supervisory board reads everything and changes nothing."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.console.approvals import CSRF, IDEM, PASSWORD, Desk, local
from tests.people.pages import browser, sign_in
from timebank.volunteer import approval_pages

FORM = re.compile(r"<form\b([^>]*)>")


def order(page: str, within: str = 'id="records"') -> list[str]:
    """The records a page lists, in its order (``data-record`` after ``within``)."""
    if within not in page:
        return []
    start = page.index(within)
    ends = [i for i in (page.find("</section>", start), page.find("</form>", start)) if i > 0]
    return re.findall(r'data-record="([^"]+)"', page[start : min(ends, default=len(page))])


def post_forms(page: str) -> list[str]:
    """The actions of the page's POST forms."""
    actions = []
    for attrs in FORM.findall(page):
        if 'method="post"' in attrs:
            found = re.search(r'action="([^"]+)"', attrs)
            actions.append(found.group(1) if found else "")
    return actions


CHROME = ["/settings/language", "/settings/text-size", "/sign-out"]  # every signed-in page has them


@pytest.fixture
async def desk(tenant: Any) -> Desk:
    d = await Desk(tenant).setup()
    for name in ("王阿姨", "李大爷", "张小妹"):
        await d.member(name)
    return d


async def waiting_records(desk: Desk) -> dict[str, str]:
    """Four waiting records: two hours, a long day, a night and an afternoon."""
    r1 = await desk.record("王阿姨", local(3, 9), 2)
    r2 = await desk.record("王阿姨", local(2, 9), 7, activity="社区大扫除")
    r3 = await desk.record(
        "李大爷", local(4, 23), 1, org="阳光助老队", activity="夜间陪护", category="neighbour_aid"
    )
    r4 = await desk.record("张小妹", local(1, 14), 1.5, org="阳光助老队", activity="读报")
    return {"r1": r1["id"], "r2": r2["id"], "r3": r3["id"], "r4": r4["id"]}


class Staff:
    """A signed-in person on a phone of their own (HTTP only)."""

    def __init__(self, phone: Any) -> None:
        self.phone = phone

    async def get(self, path: str, status: int = 200) -> str:
        r = await self.phone.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:3000])
        return r.text

    async def post(self, page: str, action: str, **fields: Any) -> Any:
        """Post ``fields`` to ``action`` with the CSRF token of ``page`` (a path or its HTML)."""
        html = page if page.lstrip().startswith("<") else await self.get(page)
        token = CSRF.search(html)
        assert token, "no CSRF field"
        return await self.phone.post(action, data={"_csrf_token": token.group(1), **fields})


@asynccontextmanager
async def signed_in(
    desk: Desk, role: str, name: str, subject_id: str | None = None, lang: str = "en"
) -> AsyncIterator[Any]:
    """A person of ``role`` signed in on a phone of their own (an httpx client with its cookies)."""
    login = await desk.staff(role, name, subject_id)
    async with browser(desk.t.client, lang) as phone:
        r = await sign_in(phone, login, PASSWORD)
        assert r.status_code == 303, r.text
        yield phone


async def test_the_queue_filters_sorts_flags_and_pages(desk, monkeypatch) -> None:
    ids = await waiting_records(desk)
    r1, r2, r3, r4 = ids["r1"], ids["r2"], ids["r3"], ids["r4"]
    approved = await desk.record("张小妹", local(6, 9), 1)
    await desk.approve_by_api(approved["id"])  # not waiting: never listed
    org2 = desk.orgs["阳光助老队"]["id"]
    async with signed_in(desk, "admin", "社工 小周") as phone:
        staff = Staff(phone)
        page = await staff.get("/staff/approvals")
        assert order(page) == [r3, r1, r2, r4]  # oldest service first
        assert "4 records are waiting" in page
        assert "王阿姨" in page and "华锦志愿服务队" in page and "邻里互助" in page  # names, not ids
        assert "20 points" in page and "70 points" in page and "15 points" in page  # points_for at star 0
        assert 'href="/staff/corrections"' in page
        assert page.count('type="checkbox" id="pick-') == 4
        # why a record is flagged, in words: r2 is long (7 h ≥ half the 12 h cap), r3 at night
        flagged = await staff.get("/staff/approvals?flagged=1")
        assert order(flagged) == [r3, r2]
        assert "Long: half the daily cap or more" in flagged and "At night (22:00 to 06:00)" in flagged
        assert order(await staff.get("/staff/approvals?sort=newest")) == [r4, r2, r1, r3]
        assert order(await staff.get("/staff/approvals?sort=longest")) == [r2, r1, r4, r3]
        assert order(await staff.get(f"/staff/approvals?organisation={org2}")) == [r3, r4]
        assert order(await staff.get("/staff/approvals?category=neighbour_aid")) == [r3]
        assert order(await staff.get("/staff/approvals?hours=2")) == [r1, r2]
        day = local(2, 0).date().isoformat()
        one_day = await staff.get(f"/staff/approvals?from={day}&to={day}")
        assert order(one_day) == [r2] and "1 waiting record matches" in one_day
        # mistakes in the filters are told, and the list still shows
        wrong = await staff.get("/staff/approvals?hours=99&from=yesterday", 400)
        assert "Hours are a whole number from 1 to 24." in wrong and "Enter the days as dates" in wrong
        assert order(wrong) == [r3, r1, r2, r4]
        # htmx asks for the list alone
        partial = await phone.get("/staff/approvals?sort=longest", headers={"HX-Request": "true"})
        assert (
            partial.status_code == 200
            and "<html" not in partial.text
            and order(partial.text) == [r2, r1, r4, r3]
        )
        # pages by cursor, in each order, the filters kept
        monkeypatch.setattr(approval_pages, "PAGE_SIZE", 3)
        for sort, expected in (
            ("", [r3, r1, r2, r4]),
            ("longest", [r2, r1, r4, r3]),
            ("newest", [r4, r2, r1, r3]),
        ):
            first = await staff.get(f"/staff/approvals?sort={sort}")
            assert order(first) == expected[:3]
            nxt = re.search(r'rel="next" href="([^"]+)"', first)
            assert nxt, sort
            second = await staff.get(nxt.group(1).replace("&amp;", "&"))
            assert order(second) == expected[3:] and 'rel="next"' not in second
            assert "Back to the first page" in second
        await staff.get("/staff/approvals?sort=longest&cursor=nonsense", 400)
        # "select every record on this page" ticks them all, without a script
        picked = await staff.get("/staff/approvals?all=1")
        assert picked.count(" checked aria-describedby") == 3


async def test_an_admin_approves_a_selection_and_rejects_one(desk) -> None:
    ids = await waiting_records(desk)
    r1, r2, r3, r4 = ids["r1"], ids["r2"], ids["r3"], ids["r4"]
    # stars at 1, 5, 10, 20 and 40 hours: 王阿姨 passes two levels with these records
    r = await desk.t.client.put(
        "/v1/community/policy",
        json={"star_thresholds_hours": [1, 5, 10, 20, 40], "backfilled_points": True},
        headers=desk.t.auth(),
    )
    assert r.status_code == 200, r.text
    assert (await desk.standing("王阿姨"))["star_level"] == 0
    async with signed_in(desk, "admin", "社工 小周") as phone:
        staff = Staff(phone)
        queue = await staff.get("/staff/approvals")
        # nothing chosen: said so, on the queue
        none = await staff.post(queue, "/staff/approvals/confirm", do="approve", back="/staff/approvals")
        assert none.status_code == 303
        assert "Choose at least one record first." in await staff.get(none.headers["location"])
        confirm = await staff.post(
            queue, "/staff/approvals/confirm", record=[r1, r2, r4], do="approve", back="/staff/approvals"
        )
        assert confirm.status_code == 200, confirm.text[:2000]
        assert "Approve 3 records?" in confirm.text and order(confirm.text, 'id="chosen"') == [r1, r2, r4]
        assert "10.5 h" in confirm.text and "105 points" in confirm.text  # 2 + 7 + 1.5 h; 20 + 70 + 15
        assert (await desk.balances("王阿姨")) == {"HOUR": 0, "POINT": 0}  # nothing moved yet
        idem = IDEM.search(confirm.text).group(1)
        await desk.approve_by_api(r4)  # another admin was quicker with this one
        done = await staff.post(
            confirm.text, "/staff/approvals/approve", record=[r1, r2, r4], idem=idem, back="/staff/approvals"
        )
        assert done.status_code == 200, done.text[:2000]
        outcomes = dict(re.findall(r'data-record="([^"]+)" data-outcome="(\w+)"', done.text))
        assert outcomes == {r1: "ok", r2: "ok", r4: "failed"}
        assert "2 records approved." in done.text and "1 record was not changed" in done.text
        assert "This record was already approved, rejected or corrected. Nothing was changed." in done.text
        first, second = await desk.record_status(r1), await desk.record_status(r2)
        assert first["status"] == second["status"] == "approved"
        # each its own transaction and receipt; the second at the star level the first gave
        assert first["transaction_id"] != second["transaction_id"]
        assert first["points"] == 20 and second["points"] == 73  # 7 h × 10 × 1.05 (one star)
        for tx in (first["transaction_id"], second["transaction_id"]):
            assert f'href="/receipts/{tx}"' in done.text
            receipt = await phone.get(f"/receipts/{tx}")
            assert receipt.status_code == 200 and receipt.json()["transaction"]["id"] == tx
        assert await desk.balances("王阿姨") == {"HOUR": 540, "POINT": 93}
        standing = await desk.standing("王阿姨")
        assert standing["lifetime_minutes"] == 540 and standing["star_level"] == 2
        # the same form sent again: the same answers, nothing credited twice
        again = await staff.post(
            confirm.text, "/staff/approvals/approve", record=[r1, r2, r4], idem=idem, back="/staff/approvals"
        )
        assert dict(re.findall(r'data-record="([^"]+)" data-outcome="(\w+)"', again.text)) == outcomes
        assert await desk.balances("王阿姨") == {"HOUR": 540, "POINT": 93}

        # reject one: the reason is required, and told plainly when missing
        queue = await staff.get("/staff/approvals")
        assert order(queue) == [r3]
        ask = await staff.post(queue, "/staff/approvals/confirm", reject_one=r3, back="/staff/approvals")
        assert ask.status_code == 200 and "Reject 1 record?" in ask.text and 'name="reason"' in ask.text
        empty = await staff.post(
            ask.text, "/staff/approvals/reject", record=r3, reason="   ", back="/staff/approvals"
        )
        assert empty.status_code == 400 and "Write why, in 1 to 500 characters." in empty.text
        assert (await desk.record_status(r3))["status"] == "submitted"
        rejected = await staff.post(
            ask.text,
            "/staff/approvals/reject",
            record=r3,
            reason="当天没有安排夜间陪护",
            back="/staff/approvals",
        )
        assert rejected.status_code == 200 and "1 record rejected." in rejected.text
        assert "当天没有安排夜间陪护" in rejected.text
        r3_now = await desk.record_status(r3)
        assert r3_now["status"] == "rejected" and r3_now["reject_reason"] == "当天没有安排夜间陪护"
        assert (await desk.balances("李大爷")) == {"HOUR": 0, "POINT": 0}
        assert "No record is waiting." in await staff.get("/staff/approvals")

        # the record's own page: its history of decisions and the receipt
        page = await staff.get(f"/staff/approvals/records/{r1}")
        assert "Approved" in page and "Recorded" in page and "By you" in page
        assert f'href="/receipts/{first["transaction_id"]}"' in page
        page = await staff.get(f"/staff/approvals/records/{r3}")
        assert "Rejected" in page and "当天没有安排夜间陪护" in page
        await staff.get(f"/staff/approvals/records/{uuid.uuid4()}", 404)


async def test_a_correction_needs_a_second_admin(desk) -> None:
    rec = await desk.record("王阿姨", local(3, 9), 2)
    other = await desk.record("王阿姨", local(2, 9), 1)
    await desk.approve_by_api(rec["id"])
    await desk.approve_by_api(other["id"])
    assert await desk.balances("王阿姨") == {"HOUR": 180, "POINT": 30}
    path = f"/staff/approvals/records/{rec['id']}"
    async with (
        signed_in(desk, "admin", "社工 小周") as first_phone,
        signed_in(desk, "admin", "站长 老陈") as second_phone,
    ):
        first, second = Staff(first_phone), Staff(second_phone)
        page = await first.get(path)
        assert f"{path}/reversal" in post_forms(page)
        empty = await first.post(page, f"{path}/reversal", reason="")
        assert empty.status_code == 400 and "Write why, in 1 to 500 characters." in empty.text
        asked = await first.post(page, f"{path}/reversal", reason="志愿者当天请假")
        assert asked.status_code == 303 and asked.headers["location"] == f"{path}?done=requested"
        page = await first.get(asked.headers["location"])
        assert "Another admin must approve or refuse it." in page and 'id="not-yours"' in page
        assert f"{path}/reversal/approve" not in post_forms(page)  # no buttons for the one who asked
        assert f"{path}/reversal/reject" not in post_forms(page)
        # a forged decision by the one who asked: refused with the sentence, nothing changed
        forged = await first.post(page, f"{path}/reversal/approve", idem=str(uuid.uuid4()))
        assert (
            forged.status_code == 403
            and "The admin who asked for a correction cannot decide it." in forged.text
        )
        forged = await first.post(page, f"{path}/reversal/reject")
        assert forged.status_code == 403
        assert (await desk.record_status(rec["id"]))["status"] == "approved"
        # asking twice is refused too
        twice = await first.post(page, f"{path}/reversal", reason="再问一次")
        assert (
            twice.status_code == 409 and "Only an approved record without a waiting correction" in twice.text
        )

        # the second admin sees it in the queue, with the buttons, and approves it
        queue = await second.get("/staff/corrections")
        assert order(queue, 'id="waiting"') == [rec["id"]]
        assert "志愿者当天请假" in queue and "社工 小周" in queue
        assert f"{path}/reversal/approve" in post_forms(queue)
        mine = await first.get("/staff/corrections")
        assert f"{path}/reversal/approve" not in post_forms(mine) and "You asked for this correction" in mine
        idem = IDEM.search(queue).group(1)
        done = await second.post(queue, f"{path}/reversal/approve", idem=idem)
        assert done.status_code == 303 and done.headers["location"] == f"{path}?done=reversed"
        again = await second.post(queue, f"{path}/reversal/approve", idem=idem)  # a resend: the same answer
        assert again.status_code == 303
        assert (await desk.record_status(rec["id"]))["status"] == "reversed"
        assert await desk.balances("王阿姨") == {"HOUR": 60, "POINT": 10}
        assert (await desk.standing("王阿姨"))["lifetime_minutes"] == 60
        page = await second.get(done.headers["location"])
        assert "Correction approved: the credit was reversed" in page
        assert page.count('href="/receipts/') == 2  # the credit and its reversal

        # another correction, refused by the second admin: the record stays approved
        other_path = f"/staff/approvals/records/{other['id']}"
        page = await first.get(other_path)
        assert (await first.post(page, f"{other_path}/reversal", reason="时长有误")).status_code == 303
        page = await second.get(other_path)
        refused = await second.post(page, f"{other_path}/reversal/reject")
        assert refused.status_code == 303 and refused.headers["location"] == f"{other_path}?done=refused"
        assert (await desk.record_status(other["id"]))["status"] == "approved"
        page = await second.get(refused.headers["location"])
        assert "Correction refused" in page and "The correction is refused." in page
        assert order(await second.get("/staff/corrections"), 'id="waiting"') == []


async def test_the_board_reads_and_changes_nothing(desk) -> None:
    ids = await waiting_records(desk)
    approved = await desk.record("张小妹", local(6, 9), 1)
    await desk.approve_by_api(approved["id"])
    board_member = await desk.member("监事 刘老师")
    async with signed_in(desk, "auditor", "监事 刘老师", board_member["id"]) as phone:
        board = Staff(phone)
        for path in (
            "/staff/approvals",
            "/staff/approvals?flagged=1&sort=longest",
            f"/staff/approvals/records/{ids['r1']}",
            f"/staff/approvals/records/{approved['id']}",
            "/staff/corrections",
        ):
            page = await board.get(path)
            assert post_forms(page) == CHROME, (path, post_forms(page))
            assert 'type="checkbox" id="pick-' not in page
        assert len(order(await board.get("/staff/approvals"))) == 4
        # forged posts: refused (403), nothing changed
        page = await board.get("/staff/approvals")
        for action, fields in (
            ("/staff/approvals/confirm", {"record": ids["r1"], "do": "approve"}),
            ("/staff/approvals/approve", {"record": [ids["r1"], ids["r2"]], "idem": str(uuid.uuid4())}),
            ("/staff/approvals/reject", {"record": ids["r1"], "reason": "no"}),
            (f"/staff/approvals/records/{approved['id']}/reversal", {"reason": "no"}),
        ):
            forged = await board.post(page, action, **fields)
            assert forged.status_code == 403, (action, forged.status_code)
        for key in ("r1", "r2"):
            assert (await desk.record_status(ids[key]))["status"] == "submitted"
        assert (await desk.api(f"/v1/service-records/{approved['id']}"))["status"] == "approved"
        assert await desk.balances("王阿姨") == {"HOUR": 0, "POINT": 0}


async def test_only_staff_and_the_board_see_the_queues(desk) -> None:
    org = desk.orgs["华锦志愿服务队"]["id"]
    async with signed_in(desk, "recorder", "记录员 小林", org) as phone:
        for path in ("/staff/approvals", "/staff/corrections", f"/staff/approvals/records/{uuid.uuid4()}"):
            r = await phone.get(path)
            assert r.status_code == 403 and "text/html" in r.headers["content-type"], path
    async with browser(desk.t.client, "en") as signed_out:
        r = await signed_out.get("/staff/approvals")
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")
