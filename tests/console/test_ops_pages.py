"""The operations page and the journal over HTTP: what they show is what the API and the
jobs' own services say; filters, pages by cursor, a transaction's detail and receipt; the
board reads them and has nothing to act with; residents and other communities are refused."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.console.ops import PASSWORD, Ledger
from tests.people.pages import add_person, browser, sign_in
from timebank.jobs.runner import run_once
from timebank.ledger import journal
from timebank.notifications.service import remind_expiring
from timebank.notifications.webhooks import Webhook, deliver_due

ZONE = ZoneInfo("Asia/Shanghai")
ROW_LINK = re.compile(r'href="/staff/journal/([0-9a-f-]{36})"')
NEXT = re.compile(r'href="(/staff/journal\?[^"]*cursor=[^"]+)" rel="next"')
POST_FORM = re.compile(r'<form[^>]*method="post"[^>]*action="([^"]+)"')


@pytest.fixture
async def ledger(tenant: Any) -> Ledger:
    return await Ledger(tenant).setup()


@asynccontextmanager
async def desk(ledger: Ledger, role: str = "admin", lang: str = "en") -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in browser of the admin (or the board member)."""
    async with browser(ledger.t.client, lang) as phone:
        r = await sign_in(phone, ledger.logins[role], PASSWORD)
        assert r.status_code == 303, r.text
        yield phone


def listed(page: str) -> list[str]:
    """The transactions a journal page lists, in order (each row links to its detail once)."""
    return list(dict.fromkeys(ROW_LINK.findall(page)))


def next_link(page: str) -> str | None:
    found = NEXT.search(page)
    return html.unescape(found.group(1)) if found else None


async def all_pages(phone: httpx.AsyncClient, url: str) -> list[str]:
    ids: list[str] = []
    while url:
        r = await phone.get(url)
        assert r.status_code == 200, r.text
        ids += listed(r.text)
        url = next_link(r.text)
    return ids


# --- the journal ---------------------------------------------------------------------------


async def test_the_journal_lists_every_transaction_newest_first(ledger) -> None:
    t = ledger.t
    async with desk(ledger) as phone:
        page = (await phone.get("/staff/journal")).text
    ids = listed(page)
    made = set(ledger.tx.values())
    assert made <= set(ids), made - set(ids)
    # newest first: the order the API's times and sequence numbers give
    views = [(await t.client.get(f"/v1/transactions/{i}", headers=t.auth())).json() for i in ids]
    keys = [(v["created_at"], v["seq"]) for v in views]
    assert keys == sorted(keys, reverse=True)
    # names, not ids: the members and the fund; the memo; the amount in hours
    assert "王秀兰" in page and "李建国" in page and "陪诊" in page
    assert "2.5 h" in page and "Community fund" in page


async def test_the_journal_filters(ledger) -> None:
    t, tx = ledger.t, ledger.tx
    li = ledger.members["李建国"]
    today = datetime.now(ZONE).date()
    async with desk(ledger) as phone:
        reversals = listed((await phone.get("/staff/journal?kind=reversal")).text)
        assert reversals == [tx["reversal"]]
        donations = listed((await phone.get("/staff/journal?kind=donation")).text)
        assert donations == [tx["donation"]]
        # a member: every transaction with an entry on one of their accounts
        theirs = listed((await phone.get(f"/staff/journal?holder={li['id']}")).text)
        assert set(theirs) == {tx[k] for k in ("small", "big", "reversal", "hold", "void")}
        # an account: the same, by its id
        account = listed((await phone.get(f"/staff/journal?holder={li['accounts']['HOUR']}")).text)
        assert account == theirs
        # over 2 hours (or 2 points): the 150-minute transfer, the 600-minute funding, the points lots over 2
        big = set(listed((await phone.get("/staff/journal?over=2")).text))
        assert {tx["big"], tx["fund"], tx["points-1"], tx["points-2"], tx["points-12"]} == big
        assert not big & {tx["small"], tx["donation"], tx["hold"], tx["reversal"], tx["void"]}
        # days, in the community's zone
        assert set(ledger.tx.values()) <= set(
            listed((await phone.get(f"/staff/journal?from={today}&to={today}")).text)
        )
        tomorrow = today + timedelta(days=1)
        assert listed((await phone.get(f"/staff/journal?from={tomorrow}")).text) == []
        # combined: the member's transfers over 2 hours
        both = listed((await phone.get(f"/staff/journal?holder={li['id']}&kind=transfer&over=2")).text)
        assert both == [tx["big"]]
        # wrong filters are explained next to their field, with nothing listed
        for query, field in (
            (f"from={today}&to={today - timedelta(days=1)}", "to"),
            ("from=yesterday", "from"),
            ("holder=王秀兰", "holder"),
            (f"holder={uuid.uuid4()}", "holder"),
            ("over=-1", "over"),
            ("over=lots", "over"),
        ):
            r = await phone.get(f"/staff/journal?{query}")
            assert r.status_code == 400, query
            assert f'id="{field}-error"' in r.text and 'aria-invalid="true"' in r.text, query
            assert listed(r.text) == []
        assert (await phone.get("/staff/journal?cursor=not-a-cursor")).status_code == 400
    # another community's member is not found here
    assert t.id


async def test_the_journal_pages_by_cursor(ledger) -> None:
    t = ledger.t
    wang, li = ledger.account("王秀兰"), ledger.account("李建国")
    for i in range(journal.PAGE + 3):
        await ledger.move(f"many-{i}", {"from_account": li, "to_account": wang, "asset": "HOUR", "amount": 1})
    async with desk(ledger) as phone:
        first = await phone.get("/staff/journal")
        assert len(listed(first.text)) == journal.PAGE
        second = next_link(first.text)
        assert second is not None and "cursor=" in second
        every = await all_pages(phone, "/staff/journal")
        assert len(every) == len(set(every)) == len(ledger.tx)
        assert set(every) == set(ledger.tx.values())
        # the filters go along with the cursor
        transfers = await all_pages(phone, "/staff/journal?kind=transfer")
        assert set(transfers) == {ledger.tx[k] for k in ledger.tx if k.startswith("many-")} | {
            ledger.tx["small"],
            ledger.tx["big"],
            ledger.tx["hold"],
            ledger.tx["void"],  # a hold's release is of the hold's kind
        }
    assert t.id


async def test_a_filter_on_entries_looks_back_a_window_at_a_time(ledger, monkeypatch) -> None:
    """A busy account (more entries than FEW_ENTRIES) and an amount are sifted over a
    window of transactions a page; the page says how far back it looked, and following
    "look further back" finds exactly what one long read would."""
    monkeypatch.setattr(journal, "FEW_ENTRIES", 2)
    monkeypatch.setattr(journal, "WINDOW", 3)
    li = ledger.members["李建国"]
    expected = {ledger.tx[k] for k in ("small", "big", "reversal", "hold", "void")}
    async with desk(ledger) as phone:
        first = await phone.get(f"/staff/journal?holder={li['id']}")
        assert "looked at transactions back to" in first.text
        assert set(await all_pages(phone, f"/staff/journal?holder={li['id']}")) == expected
        over = await all_pages(phone, "/staff/journal?over=2")
        assert set(over) == {ledger.tx[k] for k in ("big", "fund", "points-1", "points-2", "points-12")}
        assert len(over) == len(set(over))


async def test_a_transaction_in_detail_with_its_receipt(ledger) -> None:
    t, tx = ledger.t, ledger.tx
    async with desk(ledger) as phone:
        r = await phone.get(f"/staff/journal/{tx['small']}")
        assert r.status_code == 200, r.text
        page = r.text
        assert "买菜" in page and "王秀兰" in page and "李建国" in page and "1 h" in page
        assert f'href="/staff/journal/{tx["reversal"]}"' in page  # reversed by
        assert "Waiting to enter the public log" in page or "In the public log" in page
        reversal = (await phone.get(f"/staff/journal/{tx['reversal']}")).text
        assert "记错了" in reversal and f'href="/staff/journal/{tx["small"]}"' in reversal
        void = (await phone.get(f"/staff/journal/{tx['void']}")).text
        assert f'href="/staff/journal/{tx["hold"]}"' in void
        hold = (await phone.get(f"/staff/journal/{tx['hold']}")).text
        assert "Released" in hold and f'href="/staff/journal/{tx["void"]}"' in hold
        # in the log once integrated: its index, within the latest checkpoint
        size = await t.integrate()
        page = (await phone.get(f"/staff/journal/{tx['small']}")).text
        assert "In the public log at position" in page
        assert f"checkpoint of {size:,} transactions" in page
        # the receipt the page links to is the API's receipt
        assert f'href="/receipts/{tx["small"]}"' in page
        got = await phone.get(f"/receipts/{tx['small']}")
        assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
        api = await t.client.get(f"/v1/transactions/{tx['small']}/receipt", headers=t.auth())
        assert got.json()["transaction"] == api.json()["transaction"]
        assert got.json()["log"]["tree_size"] == size
        assert (await phone.get(f"/staff/journal/{uuid.uuid4()}")).status_code == 404


# --- operations ---------------------------------------------------------------------------


async def test_operations_at_a_glance(ledger, engine) -> None:
    t = ledger.t
    cid = uuid.UUID(t.id)
    now = datetime.now(UTC)
    today = now.astimezone(ZONE).date().isoformat()

    async def reminders() -> dict[str, Any]:
        return await remind_expiring(engine, cid, now.astimezone(ZONE))

    async def no_expiry() -> dict[str, Any]:
        return {"lots": 0}

    await run_once(engine, "expiry-reminders", t.id, today, reminders)
    await run_once(engine, "points-expiry", t.id, today, no_expiry)
    # the reminders go to a webhook: the first try fails, a later one gets through
    hook = Webhook("http://hooks.test/timebank", "secret")
    refuse = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(503)))
    take = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    failed = await deliver_due(engine, cid, hook, now, refuse, limit=1)
    assert failed == {"delivered": 0, "failed": 1}
    size = await t.integrate()

    async with desk(ledger) as phone:
        r = await phone.get("/staff/operations")
        assert r.status_code == 200, r.text
        page = r.text
        # the jobs: this community's runs, done today, next due tomorrow at midnight
        tomorrow = (now.astimezone(ZONE) + timedelta(days=1)).date()
        assert page.count("✓</span> Done") >= 2
        assert "Never" in page or "Done" in page
        # the audit's verdict, as /health/ready says it
        ready = (await t.client.get("/health/ready")).json()["checks"]["audit"]["status"]
        verdict = {
            "ok": "found nothing wrong",
            "failed": "found problems",
            "not run yet": "has not run yet",
        }[ready]
        assert verdict in page
        # the log: the latest checkpoint's size, as the API lists it
        checkpoints = (await t.client.get(f"/v1/log/checkpoints?community_id={t.id}&limit=500")).json()
        assert checkpoints["items"][-1]["tree_size"] == size
        assert f">{size:,}<" in page
        # the webhook: one failed (HTTP 503), none delivered yet
        assert "HTTP 503" in page
        # points expiring: what the member's lots say
        points = (
            await t.client.get(f"/v1/members/{ledger.members['王秀兰']['id']}/points", headers=t.auth())
        ).json()
        lots = [(datetime.fromisoformat(lot["expires_at"]), lot["remaining"]) for lot in points["lots"]]
        soon = sum(n for when, n in lots if when <= now + timedelta(days=30))
        later = sum(n for when, n in lots if when <= now + timedelta(days=90))
        assert later == 65
        assert f">{soon} points<" in page and f">{later} points<" in page
        assert tomorrow.strftime("%b") in page or str(tomorrow.day) in page

        # a later delivery gets through
        delivered = await deliver_due(engine, cid, hook, now + timedelta(hours=2), take)
        assert delivered["delivered"] >= 1
        page = (await phone.get("/staff/operations")).text
        assert "None waiting for a retry" in page


# --- who may read them --------------------------------------------------------------------


async def test_the_board_reads_everything_and_has_nothing_to_act_with(ledger) -> None:
    tx = ledger.tx
    async with desk(ledger, "auditor") as phone:
        pages = (
            "/staff/operations",
            "/staff/journal",
            "/staff/journal?kind=reversal",
            f"/staff/journal/{tx['big']}",
        )
        for path in pages:
            r = await phone.get(path)
            assert r.status_code == 200, (path, r.text)
            assert set(POST_FORM.findall(r.text)) <= {
                "/settings/language",
                "/settings/text-size",
                "/sign-out",
            }, path
        assert (await phone.get(f"/receipts/{tx['big']}")).status_code == 200
        # the pages take no posts at all
        token = re.search(r'name="_csrf_token" value="([^"]+)"', r.text).group(1)
        for path in ("/staff/operations", "/staff/journal", f"/staff/journal/{tx['big']}"):
            assert (await phone.post(path, data={"_csrf_token": token})).status_code == 405


async def test_residents_and_other_communities_are_refused(ledger, other_tenant) -> None:
    t = ledger.t
    login = f"ops-r-{uuid.uuid4().hex[:8]}"
    await add_person(t, "resident", ledger.members["王秀兰"]["id"], "王秀兰", login, PASSWORD)
    async with browser(t.client) as phone:
        await sign_in(phone, login, PASSWORD)
        for path in ("/staff/operations", "/staff/journal", f"/staff/journal/{ledger.tx['big']}"):
            assert (await phone.get(path)).status_code == 403, path
    theirs = await other_tenant.member()
    r = await other_tenant.fund(theirs["accounts"]["HOUR"], "HOUR", 60)
    async with desk(ledger) as phone:
        assert (await phone.get(f"/staff/journal/{r['id']}")).status_code == 404
        assert r["id"] not in listed((await phone.get("/staff/journal")).text)
        page = await phone.get(f"/staff/journal?holder={theirs['id']}")
        assert page.status_code == 400 and 'id="holder-error"' in page.text
