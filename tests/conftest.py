"""Fixtures: a real PostgreSQL (embedded, started here, stopped at the end), the app
over HTTP in-process, and a fresh community per test so tests never share state.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank import db, embedded
from timebank.app import create_app
from timebank.community.service import create_community
from timebank.core.settings import Settings
from timebank.ledger.posting import close_poster
from timebank.log import integration, keys, registry


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    data_dir = Path(tempfile.mkdtemp(prefix="timebank-test-"))
    # timebank.test is the test client's host; the suite's many deliberate bad keys
    # (all from one address) must not trip the failed-authentication limit.
    settings = Settings(
        data_dir=data_dir,
        key_cache_seconds=0,
        log_level="WARNING",
        log_json=True,
        scheduler=False,
        extra_allowed_hosts=("timebank.test",),
        auth_failure_limit=100_000,
        sign_in_address_limit=100_000,
    )
    keys.generate(settings.key_dir)
    yield settings
    embedded.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(settings: Settings) -> str:
    url = db.resolve_database_url(settings)
    db.upgrade(url)
    return url


@pytest.fixture(scope="session")
def run_cli() -> Any:
    """Run `timebank ARGS...` in a process of its own against a database URL."""

    def run(*args: str, url: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "timebank.cli", *args],
            env={**os.environ, "TIMEBANK_DATABASE_URL": url, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_database_url(database_url: str) -> str:
    """A migrated database of its own (on the same server), for tests that damage data."""
    import asyncpg
    from sqlalchemy.engine import make_url

    name = f"scratch_{uuid.uuid4().hex[:8]}"
    root = make_url(database_url).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(root.render_as_string(hide_password=False))
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(db.upgrade, url)  # Alembic runs its own event loop
    return url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine(database_url: str, settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = db.create_engine(database_url, settings)
    async with eng.begin() as conn:  # what the app's lifespan does
        await registry.register_keys(conn, keys.read_keyring(settings.key_dir))
    yield eng
    await close_poster(eng)
    await eng.dispose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def client(
    database_url: str, settings: Settings, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP into the app in this event loop, so concurrent requests really overlap.

    (Litestar's AsyncTestClient hands each request to a thread and waits for it, which
    serialises them.) The app's lifespan only opens the engine; the fixture's engine
    stands in for it here, and ``timebank serve`` runs the real lifespan in test_serve.
    """
    app = create_app(settings, database_url)
    app.state.engine = engine
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://timebank.test", timeout=60
    ) as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


@dataclass
class Tenant:
    """A fresh community with helpers that call the HTTP API as its admin (or any key)."""

    client: httpx.AsyncClient
    id: str
    admin_key: str
    accounts: dict[str, dict[str, str]] = field(default_factory=dict)

    async def integrate(self) -> int:
        """Run the log integrator for this community now (the app's loop does it every second)."""
        app = self.client.app  # type: ignore[attr-defined]
        size = -1
        while True:
            async with app.state.engine.begin() as conn:
                done = await integration.integrate(
                    conn, uuid.UUID(self.id), app.state.signer, app.state.settings.log_origin
                )
            if done is None:
                return size
            size = done.tree_size

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin_key}"}

    async def member(self, name: str = "居民") -> dict[str, Any]:
        r = await self.client.post("/v1/members", json={"display_name": name}, headers=self.auth())
        assert r.status_code == 201, r.text
        return r.json()

    async def party(self, kind: str, name: str) -> dict[str, Any]:
        r = await self.client.post(f"/v1/{kind}", json={"name": name}, headers=self.auth())
        assert r.status_code == 201, r.text
        return r.json()

    async def key(self, role: str, subject_id: str | None = None) -> str:
        body: dict[str, Any] = {"role": role}
        if subject_id:
            body["subject_id"] = subject_id
        r = await self.client.post("/v1/api-keys", json=body, headers=self.auth())
        assert r.status_code == 201, r.text
        return r.json()["key"]

    async def transfer(self, body: dict[str, Any], key: str | None = None, idem: str | None = None) -> Any:
        headers = {**self.auth(key), "Idempotency-Key": idem or str(uuid.uuid4())}
        return await self.client.post("/v1/transfers", json=body, headers=headers)

    async def fund(self, account_id: str, asset: str, amount: int) -> dict[str, Any]:
        """Issue value to an account from the community's issuance account."""
        r = await self.transfer(
            {
                "from_account": self.accounts["issuance"][asset],
                "to_account": account_id,
                "asset": asset,
                "amount": amount,
                "kind": "adjustment",
            }
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def balance(self, account_id: str, key: str | None = None) -> dict[str, Any]:
        r = await self.client.get(f"/v1/accounts/{account_id}", headers=self.auth(key))
        assert r.status_code == 200, r.text
        return r.json()


@pytest_asyncio.fixture(loop_scope="session")
async def tenant(client: httpx.AsyncClient, engine: AsyncEngine) -> Tenant:
    async with engine.begin() as conn:
        created = await create_community(conn, f"测试社区 {uuid.uuid4().hex[:6]}")
    t = Tenant(client, created["community_id"], created["admin_key"])
    r = await client.get("/v1/community", headers=t.auth())
    assert r.status_code == 200, r.text
    t.accounts = r.json()["accounts"]
    return t


@pytest_asyncio.fixture(loop_scope="session")
async def other_tenant(client: httpx.AsyncClient, engine: AsyncEngine) -> Tenant:
    async with engine.begin() as conn:
        created = await create_community(conn, f"另一社区 {uuid.uuid4().hex[:6]}")
    t = Tenant(client, created["community_id"], created["admin_key"])
    t.accounts = (await client.get("/v1/community", headers=t.auth())).json()["accounts"]
    return t
