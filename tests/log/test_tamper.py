"""Changing the ledger behind the service's back is caught by `timebank audit` and by
`timebank verify` of the affected receipt, both naming the transaction."""

from __future__ import annotations

import json
import uuid

from timebank import db
from timebank.community.service import create_community, create_party
from timebank.core.access import Principal
from timebank.core.roles import PartyKind, Role
from timebank.core.terms import Asset, Kind, Layer, Phase
from timebank.ledger import service as ledger
from timebank.log import integration, receipts, registry
from timebank.log import keys as signing_keys


async def test_a_changed_entry_fails_audit_and_verification(fresh_database_url, settings, tmp_path, run_cli):
    url = fresh_database_url

    signer = signing_keys.load_signer(settings.key_dir)
    prefix = settings.log_origin
    engine = db.create_engine(url, settings)
    try:
        async with engine.begin() as c:
            await registry.register_keys(c, signing_keys.read_keyring(settings.key_dir))
            created = await create_community(c, "被篡改的社区")
            cid = uuid.UUID(created["community_id"])
            member = await create_party(c, cid, PartyKind.MEMBER, "居民")
            issuance = (
                await c.exec_driver_sql(
                    f"SELECT id FROM accounts WHERE community_id = '{cid}' "
                    "AND system_role = 'issuance' AND asset = 'POINT'"
                )
            ).scalar_one()
        admin = Principal(uuid.UUID(created["admin_key_id"]), cid, Role.ADMIN, None)
        txs = []
        for amount in (30, 40, 50):
            async with engine.begin() as c:
                txs.append(
                    await ledger.post(
                        c,
                        community_id=cid,
                        kind=Kind.ADJUSTMENT,
                        phase=Phase.POSTED,
                        principal_id=admin.key_id,
                        legs=ledger.legs_of(
                            [
                                ledger.Movement(
                                    issuance, uuid.UUID(member["accounts"]["POINT"]), Asset.POINT, amount
                                )
                            ],
                            Layer.POSTED,
                        ),
                    )
                )
        async with engine.begin() as c:
            assert (await integration.integrate(c, cid, signer, prefix)).tree_size == 3
        victim = txs[1]["id"]
        async with engine.connect() as c:
            before = await receipts.receipt(c, admin, uuid.UUID(victim), signer, prefix)
        keys_file = tmp_path / "keys.json"
        keys_file.write_text((settings.key_dir / "keys.json").read_text())
        (tmp_path / "before.json").write_text(json.dumps(before))
        assert (
            run_cli("verify", str(tmp_path / "before.json"), "--keys", str(keys_file), url=url).returncode
            == 0
        )
        assert run_cli("audit", url=url).returncode == 0

        # A superuser changes one amount, with the guarding triggers off.
        async with engine.begin() as c:
            await c.exec_driver_sql("SET LOCAL session_replication_role = replica")
            await c.exec_driver_sql(
                f"UPDATE entries SET amount = amount + 1 WHERE transaction_id = '{victim}' AND direction = 'credit'"
            )
        async with engine.connect() as c:
            after = await receipts.receipt(c, admin, uuid.UUID(victim), signer, prefix)
    finally:
        await engine.dispose()

    audit = run_cli("audit", url=url)
    assert audit.returncode == 1 and "AUDIT FAILED" in audit.stdout
    report = json.loads(run_cli("audit", "--json", url=url).stdout)
    merkle = next(c for c in report["checks"] if c["check"].startswith("each log recomputed"))
    assert not merkle["ok"] and any(d.get("transaction_id") == victim for d in merkle["differences"])
    assert victim in audit.stdout

    (tmp_path / "after.json").write_text(json.dumps(after))
    verify = run_cli("verify", str(tmp_path / "after.json"), "--keys", str(keys_file), url=url)
    assert verify.returncode == 1, verify.stdout
    assert f"FAIL transaction {victim}" in verify.stdout and "leaf hash" in verify.stdout
    # Untouched neighbours still verify: the damage is pinned to one transaction.
    other = txs[2]["id"]
    engine = db.create_engine(url, settings)
    try:
        async with engine.connect() as c:
            fine = await receipts.receipt(c, admin, uuid.UUID(other), signer, prefix)
    finally:
        await engine.dispose()
    (tmp_path / "other.json").write_text(json.dumps(fine))
    assert run_cli("verify", str(tmp_path / "other.json"), "--keys", str(keys_file), url=url).returncode == 0


async def test_references_without_foreign_keys_are_audited(fresh_database_url, settings, run_cli):
    """Idempotent answers and log leaves point at transactions without a foreign key
    (transactions are never deleted); the audit checks what a key would have."""
    url = fresh_database_url
    engine = db.create_engine(url, settings)
    ghost = uuid.uuid4()
    try:
        async with engine.begin() as c:
            cid = (await create_community(c, "幽灵社区"))["community_id"]
            await c.exec_driver_sql(
                "INSERT INTO idempotency_keys (community_id, key, request_hash, status_code, transaction_id) "
                f"VALUES ('{cid}', 'k', '\\x00', 201, '{ghost}')"
            )
            await c.exec_driver_sql(
                f"INSERT INTO log_leaves (community_id, idx, transaction_id) VALUES ('{cid}', 0, '{ghost}')"
            )
    finally:
        await engine.dispose()
    report = json.loads(run_cli("audit", "--json", url=url).stdout)
    failed = {c["check"]: c["differences"] for c in report["checks"] if not c["ok"]}
    assert str(ghost) in json.dumps(failed["every idempotent answer names a transaction of its community"])
    assert str(ghost) in json.dumps(failed["log leaves belong to their community's transactions"])
