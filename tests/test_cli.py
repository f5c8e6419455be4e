"""The `timebank` command against the test database: community create, audit, db upgrade."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from tests.people.pages import browser, csrf
from timebank import db
from timebank.community.service import create_community


async def test_community_create_prints_id_admin_key_and_a_sign_in_link(database_url, client, run_cli):
    result = run_cli("community", "create", "--name", "华锦社区", url=database_url)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"community_id", "admin_key", "staff"}
    r = await client.get("/v1/community", headers={"Authorization": f"Bearer {out['admin_key']}"})
    assert r.status_code == 200 and r.json()["id"] == out["community_id"] and r.json()["name"] == "华锦社区"
    # the first staff member signs in with the one-time link, once, as the community's admin
    path = urlsplit(out["staff"]["sign_in_link"]).path
    async with browser(client) as phone:
        token = await csrf(phone, path)
        signed = await phone.post(path, data={"_csrf_token": token})
        assert signed.status_code == 303 and signed.headers["location"] == "/staff"
        account = await phone.get("/account")
        assert out["staff"]["login"] in account.text and "华锦社区" in account.text
    async with browser(client) as other:
        assert (await other.get(path)).status_code == 410
    bad = run_cli("community", "create", "--name", "  ", url=database_url)
    assert bad.returncode != 0 and "name" in bad.stderr


async def test_audit_is_clean_on_a_busy_ledger(database_url, tenant, run_cli):
    a = await tenant.member()
    b = await tenant.member()
    await tenant.fund(a["accounts"]["POINT"], "POINT", 50)
    await tenant.transfer(
        {
            "from_account": a["accounts"]["POINT"],
            "to_account": b["accounts"]["POINT"],
            "asset": "POINT",
            "amount": 5,
            "pending": {"timeout_seconds": 60},
        }
    )
    result = run_cli("audit", url=database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit clean" in result.stdout
    as_json = json.loads(run_cli("audit", "--json", url=database_url).stdout)
    assert as_json["ok"] is True and all(c["ok"] for c in as_json["checks"])


async def test_audit_fails_loudly_on_any_difference(fresh_database_url, settings, run_cli):
    url = fresh_database_url  # a database of its own, so the corruption does not leak into other tests
    upgrade = run_cli("db", "upgrade", url=url)  # already at head: the command says so and changes nothing
    assert upgrade.returncode == 0, upgrade.stderr

    engine = db.create_engine(url, settings)
    try:
        async with engine.begin() as c:
            created = await create_community(c, "被篡改的社区")
        assert run_cli("audit", url=url).returncode == 0
        keys = {"TIMEBANK_SIGNING_KEY_DIR": str(settings.key_dir)}
        for _ in range(2):  # asked for by hand, the audit runs every time (never "skipped")
            asked = run_cli("jobs", "run", "audit", url=url, **keys)
            assert asked.returncode == 0, asked.stderr
            assert [(o["status"], o["counts"]["ok"]) for o in json.loads(asked.stdout)] == [("done", True)]
        # A hand edit with the guarding triggers switched off (what only a superuser can do).
        async with engine.begin() as c:
            await c.exec_driver_sql("SET LOCAL session_replication_role = replica")
            await c.exec_driver_sql(
                "UPDATE accounts SET credits_posted = credits_posted + 7 "
                f"WHERE community_id = '{created['community_id']}' AND system_role = 'fund' AND asset = 'POINT'"
            )
    finally:
        await engine.dispose()
    asked = run_cli("jobs", "run", "audit", url=url, **keys)  # the same period: it runs again, and says so
    assert asked.returncode == 1 and json.loads(asked.stdout)[0]["counts"]["ok"] is False, asked.stderr
    result = run_cli("audit", url=url)
    assert result.returncode == 1, result.stdout
    assert "AUDIT FAILED" in result.stdout
    assert "cached balances equal the sum of entries" in result.stdout
    report = json.loads(run_cli("audit", "--json", url=url).stdout)
    failed = {c["check"] for c in report["checks"] if not c["ok"]}
    assert failed == {
        "cached balances equal the sum of entries",
        "the balances view agrees with the entries",  # the view reads the cached sums
        "every asset of every community sums to zero",
    }
