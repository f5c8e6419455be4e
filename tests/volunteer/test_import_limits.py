"""A CSV import cannot stall the service: it is bounded (rows and bytes: 413), its checks
are linear, its CPU work runs off the event loop (other requests keep answering), and
a cell with a control character is a clear rejection, never a 500 or a stored record."""

from __future__ import annotations

import asyncio
import gc
import random
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from support import problem

from timebank.core.settings import Settings
from timebank.volunteer import checks, records
from timebank.volunteer.csv_import import parse_csv

ROWS = Settings().import_max_rows  # TIMEBANK_IMPORT_MAX_ROWS: 20,000
MAX_BYTES = Settings().import_max_bytes  # TIMEBANK_IMPORT_MAX_BYTES: 6,000,000
assert (ROWS, MAX_BYTES) == (20_000, 6_000_000), "docs/api.md and docs/operations.md name these defaults"
HEADER = "member_ref,activity,category,place,started_at,ended_at,external_ref\n"
FIRST_DAY = date(2019, 1, 1)


def row(ref: str, day: date, start: str, end: str, n: int, activity: str = "陪老人聊天") -> str:
    return f"{ref},{activity},志愿服务,华锦社区日间照料中心,{day} {start},{day} {end},R{n}\n"


def one_volunteer(rows: int, ref: str) -> list[str]:
    """``rows`` hour-long records of one volunteer, ten a day back to back (08:00-18:00 local)."""
    return [
        row(ref, FIRST_DAY + timedelta(days=i // 10), f"{8 + i % 10:02d}:00", f"{9 + i % 10:02d}:00", i)
        for i in range(rows)
    ]


async def setup(t: Any, ref: str) -> tuple[dict[str, Any], str, dict[str, str]]:
    org = await t.party("organisations", "华锦志愿服务队")
    recorder = await t.key("recorder", org["id"])
    r = await t.client.post(
        "/v1/members", json={"display_name": "王阿姨", "external_ref": ref}, headers=t.auth()
    )
    assert r.status_code == 201, r.text
    return r.json(), recorder, {**t.auth(recorder), "Content-Type": "text/csv"}


async def count_records(t: Any, member_id: str) -> int:
    r = await t.client.get(f"/v1/members/{member_id}/service-records?limit=500", headers=t.auth())
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


async def test_twenty_thousand_rows_of_one_volunteer_while_the_service_keeps_answering(tenant):
    t = tenant
    member, recorder, headers = await setup(t, "V-BIG")
    # Already recorded: 08:30-08:45 on day 100 (the file's 08:00 row there overlaps it) and
    # 2.5 h on the evening of day 200 (with it, the file's tenth hour that day is over the cap).
    for start, end in (("08:30", "08:45"), ("20:00", "22:30")):
        day = FIRST_DAY + timedelta(days=100 if start == "08:30" else 200)
        r = await t.client.post(
            "/v1/service-records",
            headers=t.auth(recorder),
            json={
                "member_id": member["id"],
                "activity": "读报",
                "category": "volunteer_service",
                "place": "活动室",
                "started_at": f"{day}T{start}:00+08:00",
                "ended_at": f"{day}T{end}:00+08:00",
            },
        )
        assert r.status_code == 201, r.text
    lines = one_volunteer(ROWS - 1, "V-BIG")
    lines.append(
        row("V-BIG", FIRST_DAY + timedelta(days=5), "07:30", "08:30", ROWS)
    )  # overlaps an earlier row
    body = (HEADER + "".join(lines)).encode()

    r, took, latencies = await while_polling_liveness(
        t.client, t.client.post("/v1/service-records/import", content=body, headers=headers)
    )
    assert r.status_code == 200, r.text[:500]
    result = r.json()
    rejected = {x["line"]: x["reason"] for x in result["rejected"]}
    # Line numbers count the header: row i of the file is line i + 2.
    assert rejected.keys() == {1000 + 2, 2009 + 2, ROWS + 1}, rejected
    assert "overlaps" in rejected[1002] and "overlaps" in rejected[ROWS + 1]
    assert "daily cap" in rejected[2011] and str(FIRST_DAY + timedelta(days=200)) in rejected[2011]
    assert len(result["accepted"]) == ROWS - 3 and not any(a["duplicate"] for a in result["accepted"])
    assert {a["member_id"] for a in result["accepted"]} == {member["id"]}
    assert took < 15, f"the import took {took:.1f} s"  # the quadratic checks took minutes
    assert max(latencies) < 0.2, f"/health/live waited {max(latencies) * 1000:.0f} ms during the import"

    # The same file again: every row is its record, nothing is written twice.
    again, took, latencies = await while_polling_liveness(
        t.client, t.client.post("/v1/service-records/import", content=body, headers=headers)
    )
    assert again.status_code == 200
    assert sum(a["duplicate"] for a in again.json()["accepted"]) == ROWS - 3
    assert [x["line"] for x in again.json()["rejected"]] == sorted(rejected)
    assert took < 15, f"the import again took {took:.1f} s"
    assert max(latencies) < 0.2, f"/health/live waited {max(latencies) * 1000:.0f} ms during the import again"


async def while_polling_liveness(client: Any, request: Any) -> tuple[Any, float, list[float]]:
    """Await ``request`` while polling GET /health/live on the same event loop: (its answer,
    seconds it took, how late each liveness answer came)."""
    done = asyncio.Event()
    latencies: list[float] = []

    async def poll() -> None:
        pause = 0.02
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(pause)
            r = await client.get("/health/live")
            assert r.status_code == 200
            # Measured from when the answer was due: a loop blocked during the pause shows too.
            latencies.append(time.perf_counter() - started - pause)

    # The service's lifespan freezes its start-up heap (gc.freeze() in app.py), so that full
    # collections walk only what came after; this in-process client runs no lifespan. Do
    # the same here, or each full collection would also walk the whole test session's heap.
    gc.collect()
    gc.freeze()
    poller = asyncio.create_task(poll())
    try:
        await asyncio.sleep(0.1)
        began = time.perf_counter()
        answer = await request
        took = time.perf_counter() - began
    finally:
        done.set()
        await poller
        gc.unfreeze()
    assert len(latencies) >= 10, latencies
    return answer, took, latencies


async def test_records_of_a_trusted_organisation_are_approved_in_order_with_their_star_levels(tenant, engine):
    t = tenant
    member, _, headers = await setup(t, "V-STAR")
    org_id = (await t.client.get("/v1/organisations", headers=t.auth())).json()["items"][0]["id"]
    policy = (await t.client.get("/v1/community/policy", headers=t.auth())).json()["policy"]
    policy["star_thresholds_hours"] = [1, 2, 3, 4, 5]
    policy["trusted_organisations"] = [org_id]
    policy["backfilled_points"] = True  # imported records are back-filled (补录): no points by default
    assert (await t.client.put("/v1/community/policy", json=policy, headers=t.auth())).status_code == 200
    body = (HEADER + "".join(one_volunteer(4, "V-STAR"))).encode()
    r = await t.client.post("/v1/service-records/import", content=body, headers=headers)
    assert r.status_code == 200, r.text
    accepted = r.json()["accepted"]
    # Stars 0, 1, 2, 3 before each hour: 10 × 1, 1.05, 1.1, 1.2 points, rounded down.
    assert [(a["status"], a["points"]) for a in accepted] == [("approved", p) for p in (10, 10, 11, 12)]
    assert all(a["transaction_id"] and a["decided_at"] for a in accepted)
    balances = (await t.client.get(f"/v1/members/{member['id']}/balances", headers=t.auth())).json()
    assert balances["HOUR"]["posted"] == 240 and balances["POINT"]["posted"] == 43
    async with engine.connect() as conn:
        lots = (
            await conn.exec_driver_sql(
                "SELECT record_id::text, transaction_id::text FROM points_lots WHERE record_id IS NOT NULL "
                f"AND account_id = '{member['accounts']['POINT']}'"
            )
        ).all()
    assert sorted(lots) == sorted((a["id"], a["transaction_id"]) for a in accepted)
    assert (await t.client.get(f"/v1/members/{member['id']}", headers=t.auth())).json()["star_level"] == 4


async def test_a_file_over_the_row_limit_is_refused_whole(tenant):
    t = tenant
    member, _, headers = await setup(t, "V-ROWS")
    body = (HEADER + "".join(one_volunteer(ROWS + 1, "V-ROWS"))).encode()
    assert len(body) < MAX_BYTES
    body_ = problem(
        await t.client.post("/v1/service-records/import", content=body, headers=headers),
        413,
        "payload-too-large",
    )
    assert f"more than {ROWS} records" in body_["detail"]
    assert await count_records(t, member["id"]) == 0  # nothing of it is recorded


async def test_a_file_over_the_byte_limit_is_refused_whole(tenant):
    t = tenant
    member, _, headers = await setup(t, "V-BYTES")
    valid = (HEADER + "".join(one_volunteer(10, "V-BYTES"))).encode()
    filler = MAX_BYTES - len(valid)  # lines of empty cells: they mean nothing, and parse quickly
    at_limit = valid + (b"," * 999 + b"\n") * (filler // 1000) + b"\n" * (filler % 1000)
    body = at_limit + b"\n"
    assert len(body) == MAX_BYTES + 1
    detail = problem(
        await t.client.post("/v1/service-records/import", content=body, headers=headers),
        413,
        "payload-too-large",
    )["detail"]
    assert f"{MAX_BYTES} bytes" in detail

    async def chunks() -> Any:  # no Content-Length: the file is measured as it is read
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]

    problem(
        await t.client.post("/v1/service-records/import", content=chunks(), headers=headers),
        413,
        "payload-too-large",
    )
    assert await count_records(t, member["id"]) == 0
    # At the limit it is read: the blank lines mean nothing.
    r = await t.client.post("/v1/service-records/import", content=at_limit, headers=headers)
    assert r.status_code == 200 and len(r.json()["accepted"]) == 10


async def test_control_characters_in_cells_are_rejected_rows_never_a_500(tenant):
    t = tenant
    member, _, headers = await setup(t, "V-CTRL")
    day = FIRST_DAY
    csv = (
        HEADER
        + "".join(
            [
                row("V-CTRL", day, "08:00", "09:00", 1, activity="陪老\x00人聊天"),  # NUL
                row("V-CTRL", day, "09:00", "10:00", 2, activity="读\x1b报"),  # ESC
                row("V-C\x00TRL", day, "10:00", "11:00", 3),  # NUL in the volunteer's number
                f'V-CTRL,"两行\n内容",志愿服务,活动室,{day} 11:00,{day} 12:00,R4\n',  # a quoted cell with a line break
                row("V-CTRL", day, "12:00", "13:00", 5).replace(",R5", ",R\x7f5"),  # DEL in the reference
                row("V-CTRL", day, "13:00", "14:00", 6).replace(
                    f"{day} 14:00", f"{day} 14:\x0000"
                ),  # NUL in a time
                # C1 control at a cell's end: trimmed
                f"V-CTRL,义剪,志愿服务,活动室\u0085,{day} 14:00,{day} 15:00,R7\n",
                f"V-CTRL,义剪,志愿服务,活\u0090动室,{day} 15:00,{day} 16:00,R8\n",  # C1 control inside
            ]
        )
    )
    r = await t.client.post("/v1/service-records/import", content=csv.encode(), headers=headers)
    assert r.status_code == 200, r.text
    result = r.json()
    reasons = {x["line"]: x["reason"] for x in result["rejected"]}
    # Lines: the header is 1; the quoted cell of the fifth row spans lines 5 and 6.
    assert sorted(a["line"] for a in result["accepted"]) == [6, 9]
    assert set(reasons) == {2, 3, 4, 7, 8, 10}, reasons
    assert "activity" in reasons[2] and "U+0000" in reasons[2]
    assert "activity" in reasons[3] and "U+001B" in reasons[3]
    assert "member_ref" in reasons[4] and "U+0000" in reasons[4]
    assert "external_ref" in reasons[7] and "U+007F" in reasons[7]
    assert "time" in reasons[8]
    assert "place" in reasons[10] and "U+0090" in reasons[10]
    accepted = {a["line"]: a for a in result["accepted"]}
    assert accepted[6]["activity"] == "两行\n内容" and accepted[9]["place"] == "活动室"
    assert await count_records(t, member["id"]) == 2
    # A cell longer than any field (the csv module's limit): the whole file is a 400, nothing recorded.
    huge = (
        HEADER
        + row("V-CTRL", day, "16:00", "17:00", 9)
        + f'V-CTRL,"{"长" * 200_000}",志愿服务,室,{day} 17:00,{day} 18:00,R10\n'
    )
    body = problem(
        await t.client.post("/v1/service-records/import", content=huge.encode(), headers=headers),
        400,
        "invalid-request",
    )
    assert "line 3" in body["detail"]
    assert await count_records(t, member["id"]) == 2
    # The form refuses a NUL too (422, or the edge's 400 where it checks JSON strings first).
    r = await t.client.post(
        "/v1/service-records",
        headers=t.auth(),
        json={
            "member_id": member["id"],
            "organisation_id": result["accepted"][0]["organisation_id"],
            "activity": "a\x00b",
            "category": "volunteer_service",
            "place": "x",
            "started_at": "2019-02-01T08:00:00+08:00",
            "ended_at": "2019-02-01T09:00:00+08:00",
        },
    )
    assert r.status_code in (400, 422) and r.headers["content-type"].startswith("application/problem+json"), (
        r.text
    )
    assert await count_records(t, member["id"]) == 2


def test_parse_csv_limits_without_the_http_layer():
    tz = ZoneInfo("Asia/Shanghai")
    body = (HEADER + "".join(one_volunteer(5, "V"))).encode()
    rows, unreadable = parse_csv(body, tz, max_rows=5, max_bytes=len(body))
    assert len(rows) == 5 and not unreadable
    with pytest.raises(records.ImportTooLarge, match="more than 4 records"):
        parse_csv(body, tz, max_rows=4)
    with pytest.raises(records.ImportTooLarge, match=f"at most {len(body) - 1} bytes"):
        parse_csv(body, tz, max_bytes=len(body) - 1)
    assert len(parse_csv(body, tz)[0]) == 5  # the CLI: no limit (it imports in chunks)
    spaced = body.replace(b"\n", b"\n\n , ,\n")  # blank lines (and empty cells) are not records
    assert len(parse_csv(spaced, tz, max_rows=5)[0]) == 5


# --- the linear checks give the verdicts of the quadratic ones ----------------------------


def _reference_day_seconds(start: datetime, end: datetime, tz: ZoneInfo) -> dict[date, float]:
    """The replaced implementation, kept here as the specification."""
    out: dict[date, float] = {}
    cursor = start
    while cursor < end:
        local = cursor.astimezone(tz)
        next_midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tz)
        stop = min(end, next_midnight)
        out[local.date()] = out.get(local.date(), 0.0) + (stop - cursor).total_seconds()
        cursor = stop
    return out


def _reference_check(
    fresh: list[Any], stored: list[tuple[Any, datetime, datetime]], tz: ZoneInfo, cap_minutes: int
) -> None:
    """The quadratic overlap and daily-cap checks this change replaced, verbatim in substance."""
    taken: dict[Any, list[tuple[datetime, datetime]]] = defaultdict(list)
    for m, s, e in stored:
        taken[m].append((s, e))
    cap = cap_minutes * 60
    for r in fresh:
        g, mine = r.given, taken[r.member_id]
        if any(s < g.ended_at and g.started_at < e for s, e in mine):
            r.reason = "overlaps another record of this volunteer"
            continue
        per_day: dict[date, float] = defaultdict(float)
        for s, e in mine:
            for d, secs in _reference_day_seconds(s, e, tz).items():
                per_day[d] += secs
        over = [
            d
            for d, secs in _reference_day_seconds(g.started_at, g.ended_at, tz).items()
            if per_day[d] + secs > cap
        ]
        if over:
            r.reason = (
                f"more than the daily cap of {cap_minutes // 60} h "
                f"{cap_minutes % 60} min on {over[0].isoformat()}".replace(" 0 min", "")
            )
            continue
        mine.append((g.started_at, g.ended_at))


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin", "America/Santiago"])
def test_linear_checks_agree_with_the_quadratic_ones(zone):
    tz = ZoneInfo(zone)
    rnd = random.Random(zone)
    members = [uuid.uuid4() for _ in range(3)]
    # Around a daylight-saving change in each hemisphere (23 and 25 hour days).
    bases = [
        datetime(2026, 3, 28, tzinfo=tz),
        datetime(2026, 10, 24, tzinfo=tz),
        datetime(2026, 4, 3, tzinfo=tz),
    ]
    verdicts: set[str] = set()
    for case in range(300):
        base = rnd.choice(bases)

        def interval(base: datetime = base) -> tuple[datetime, datetime]:
            start = base.astimezone(UTC) + timedelta(minutes=15 * rnd.randrange(0, 4 * 24 * 4))
            return start, start + timedelta(minutes=15 * rnd.choice([1, 2, 4, 8, 16, 30, 48, 60, 100, 130]))

        stored = [
            (rnd.choice(members), *interval()) for _ in range(rnd.randrange(0, 8))
        ]  # may overlap (old data)
        items = []
        for n in range(rnd.randrange(1, 40)):
            s, e = interval()
            items.append(records.RecordIn("a", "c", "p", s, e, line=n))
        cap = rnd.choice([60, 4 * 60, 12 * 60, 23 * 60, 24 * 60, rnd.randrange(1, 1441)])
        ours = [checks.RecordRow(i, member_id=rnd.choice(members)) for i in items]
        theirs = [checks.RecordRow(i, member_id=r.member_id) for i, r in zip(items, ours, strict=True)]
        checks.check_times(ours, stored, tz, cap)
        _reference_check(theirs, stored, tz, cap)
        assert [r.reason for r in ours] == [r.reason for r in theirs], (zone, case)
        verdicts |= {"accepted" if r.reason is None else r.reason.split(" ")[0] for r in ours}
    assert verdicts == {"accepted", "overlaps", "more"}  # every kind of verdict was compared
