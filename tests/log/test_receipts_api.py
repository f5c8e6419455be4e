"""Receipts, checkpoints and proofs through the HTTP API, verified offline."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from timebank.cli import main as cli
from timebank.db import driver
from timebank.ledger.posting import post_batch
from timebank.log import integration, registry
from timebank.log import keys as signing_keys
from timebank.log.canonical import canonical_transaction
from timebank.log.verify import (
    VerificationError,
    b64,
    checkpoint_body,
    jcs,
    leaf_hash,
    load_jwks,
    note_signature_line,
    unb64,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_receipt,
    verify_set,
)


async def published(client) -> dict[str, Any]:
    r = await client.get("/v1/log/keys")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    return r.json()


async def receipt_of(tenant, tx_id: str, key: str | None = None) -> dict[str, Any]:
    r = await tenant.client.get(f"/v1/transactions/{tx_id}/receipt", headers=tenant.auth(key))
    assert r.status_code == 200, r.text
    return r.json()


def verify_cli(tmp: Path, receipt: dict[str, Any], jwks: dict[str, Any], *extra: str) -> Any:
    (tmp / "receipt.json").write_text(json.dumps(receipt, ensure_ascii=False))
    (tmp / "keys.json").write_text(json.dumps(jwks))
    return CliRunner().invoke(
        cli, ["verify", str(tmp / "receipt.json"), "--keys", str(tmp / "keys.json"), *extra]
    )


async def funded_pair(tenant) -> tuple[dict[str, Any], dict[str, Any]]:
    a, b = await tenant.member("甲"), await tenant.member("乙")
    await tenant.fund(a["accounts"]["POINT"], "POINT", 100)
    return a, b


async def test_a_transfer_answers_with_its_signed_entry_timestamp(tenant):
    a, b = await funded_pair(tenant)
    idem = str(uuid.uuid4())
    body = {
        "from_account": a["accounts"]["POINT"],
        "to_account": b["accounts"]["POINT"],
        "asset": "POINT",
        "amount": 7,
        "memo": "谢谢帮忙",
    }
    first = await tenant.transfer(body, idem=idem)
    assert first.status_code == 201, first.text
    tx = first.json()
    payload = verify_set(tx["set"], load_jwks(await published(tenant.client)))
    canonical = canonical_transaction(tx)
    assert payload["leaf_hash"] == b64(leaf_hash(jcs(canonical)))
    assert payload["transaction_id"] == tx["id"] and payload["community_id"] == tenant.id
    assert payload["integrated_at"] == tx["created_at"] and payload["log_origin"].endswith(tenant.id)
    # A replay answers the same bytes (Ed25519 is deterministic); a rejection has no set.
    again = await tenant.transfer(body, idem=idem)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json()["set"] == tx["set"]
    too_much = await tenant.transfer({**body, "amount": 10_000})
    assert too_much.status_code == 422 and "set" not in too_much.json()


async def test_receipts_of_a_transfer_a_hold_its_post_and_a_reversal_verify_offline(tenant, tmp_path):
    a, b = await funded_pair(tenant)
    resident = await tenant.key("resident", a["id"])
    move = {"from_account": a["accounts"]["POINT"], "to_account": b["accounts"]["POINT"], "asset": "POINT"}
    transfer = (await tenant.transfer({**move, "amount": 5}, key=resident)).json()
    hold = (
        await tenant.transfer({**move, "amount": 9, "pending": {"timeout_seconds": 600}}, key=resident)
    ).json()
    posted = await tenant.client.post(
        f"/v1/transactions/{hold['id']}/post", headers={**tenant.auth(), "Idempotency-Key": str(uuid.uuid4())}
    )
    assert posted.status_code == 201, posted.text
    reversal = await tenant.client.post(
        f"/v1/transactions/{transfer['id']}/reverse",
        json={"reason": "记错了"},
        headers={**tenant.auth(), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert reversal.status_code == 201, reversal.text
    ids = [transfer["id"], hold["id"], posted.json()["id"], reversal.json()["id"]]

    # Before integration a receipt carries the promise (set) but no inclusion proof yet.
    early = await receipt_of(tenant, ids[0], resident)
    assert "log" not in early
    jwks = await published(tenant.client)
    result = verify_cli(tmp_path, early, jwks)
    assert result.exit_code == 0 and "not yet in the log" in result.output, result.output

    await tenant.integrate()
    for tx_id in ids:
        receipt = await receipt_of(tenant, tx_id)
        assert receipt["transaction"]["id"] == tx_id and receipt["log"]["tree_size"] >= 5
        result = verify_cli(tmp_path, receipt, jwks)
        assert result.exit_code == 0, result.output
        assert f"transaction {tx_id}" in result.output and "included at index" in result.output
    # What each leaf says, by kind: the hold's post and the reversal reference their originals.
    post_receipt = await receipt_of(tenant, ids[2])
    assert post_receipt["transaction"]["pending_id"] == hold["id"]
    assert post_receipt["transaction"]["phase"] == "post"
    reversal_receipt = await receipt_of(tenant, ids[3])
    assert reversal_receipt["transaction"]["reverses_id"] == transfer["id"]
    assert reversal_receipt["transaction"]["reason"] == "记错了"

    # The verifier needs nothing but files: a separate process without database settings.
    (tmp_path / "receipt.json").write_text(json.dumps(reversal_receipt, ensure_ascii=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env["TIMEBANK_DATA_DIR"] = str(tmp_path / "nothing-here")
    offline = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "timebank.cli",
            "verify",
            str(tmp_path / "receipt.json"),
            "--keys",
            str(tmp_path / "keys.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert not (tmp_path / "nothing-here").exists()


async def test_receipts_are_only_for_keys_that_may_read_the_transaction(tenant, other_tenant):
    a, b = await funded_pair(tenant)
    c = await tenant.member("丙")
    tx = (
        await tenant.transfer(
            {
                "from_account": a["accounts"]["POINT"],
                "to_account": b["accounts"]["POINT"],
                "asset": "POINT",
                "amount": 1,
            }
        )
    ).json()
    stranger = await tenant.key("resident", c["id"])
    auditor = await tenant.key("auditor", (await tenant.member("监事"))["id"])
    assert (
        await tenant.client.get(f"/v1/transactions/{tx['id']}/receipt", headers=tenant.auth(stranger))
    ).status_code == 404
    assert (
        await tenant.client.get(f"/v1/transactions/{tx['id']}/receipt", headers=other_tenant.auth())
    ).status_code == 404
    assert (await tenant.client.get(f"/v1/transactions/{tx['id']}/receipt")).status_code == 401
    await receipt_of(tenant, tx["id"], auditor)


@pytest.mark.parametrize("tamper", ["amount", "signature", "checkpoint", "proof", "kid"])
async def test_a_changed_receipt_fails_verification(tenant, tamper):
    a, b = await funded_pair(tenant)
    for amount in (1, 2, 3):
        tx = (
            await tenant.transfer(
                {
                    "from_account": a["accounts"]["POINT"],
                    "to_account": b["accounts"]["POINT"],
                    "asset": "POINT",
                    "amount": amount,
                }
            )
        ).json()
    await tenant.integrate()
    receipt = await receipt_of(tenant, tx["id"])
    keys = load_jwks(await published(tenant.client))
    verify_receipt(receipt, keys)
    if tamper == "amount":
        receipt["transaction"]["entries"][0]["amount"] += 1
    elif tamper == "signature":
        sig = bytearray(unb64(receipt["set"]["signature"]))
        sig[0] ^= 1
        receipt["set"]["signature"] = b64(bytes(sig))
    elif tamper == "checkpoint":
        lines = receipt["log"]["checkpoint"].split("\n")
        lines[1] = str(int(lines[1]) + 1)
        receipt["log"]["checkpoint"] = "\n".join(lines)
    elif tamper == "proof":
        receipt["log"]["inclusion_proof"][0] = b64(bytes(32))
    elif tamper == "kid":
        receipt["set"]["kid"] = "not-a-published-key"
    with pytest.raises(VerificationError, match=tx["id"]):
        verify_receipt(receipt, keys)


async def test_public_log_endpoints(tenant, other_tenant):
    a, b = await funded_pair(tenant)
    tx = (
        await tenant.transfer(
            {
                "from_account": a["accounts"]["POINT"],
                "to_account": b["accounts"]["POINT"],
                "asset": "POINT",
                "amount": 2,
            }
        )
    ).json()
    size = await tenant.integrate()
    assert size == 2  # the funding and the transfer
    keys = load_jwks(await published(tenant.client))
    client = tenant.client
    # No key needed: the log is named by community_id; with a key, its community is the default.
    note = await client.get(f"/v1/log/checkpoint?community_id={tenant.id}")
    assert note.status_code == 200 and note.headers["content-type"].startswith("text/plain")
    cp = verify_checkpoint(note.text, keys)
    assert cp.size == size and cp.origin.endswith(tenant.id)
    assert (await client.get("/v1/log/checkpoint", headers=tenant.auth())).text == note.text
    assert (await client.get("/v1/log/checkpoint")).status_code == 400
    assert (await client.get(f"/v1/log/checkpoint?community_id={uuid.uuid4()}")).status_code == 404
    other = await client.get(f"/v1/log/checkpoint?community_id={other_tenant.id}")
    assert other.status_code in (200, 404) and other.text != note.text

    by_tx = (
        await client.get(f"/v1/log/proof/inclusion?community_id={tenant.id}&transaction_id={tx['id']}")
    ).json()
    by_index = (
        await client.get(
            f"/v1/log/proof/inclusion?community_id={tenant.id}&index={by_tx['index']}&size={size}"
        )
    ).json()
    assert by_tx == by_index and by_tx["tree_size"] == size
    verify_inclusion(by_tx["index"], size, unb64(by_tx["leaf_hash"]), by_tx["proof"], cp.root)

    listing = (await client.get(f"/v1/log/checkpoints?community_id={tenant.id}")).json()
    sizes = [c["tree_size"] for c in listing["items"]]
    assert sizes[-1] == size and sizes == sorted(sizes)
    kept = await client.get(f"/v1/log/checkpoints?community_id={tenant.id}&size={size}")
    assert kept.text == note.text
    assert (
        await client.get(f"/v1/log/checkpoints?community_id={tenant.id}&size={size + 1}")
    ).status_code == 404

    first = sizes[1] if len(sizes) > 1 else 1
    proof = (
        await client.get(f"/v1/log/proof/consistency?community_id={tenant.id}&first={first}&second={size}")
    ).json()
    assert proof["first"] == first and proof["second"] == size
    bad = [
        f"/v1/log/proof/consistency?community_id={tenant.id}&first={size}&second={size + 1}",
        f"/v1/log/proof/consistency?community_id={tenant.id}&first=0&second={size}",
        f"/v1/log/proof/consistency?community_id={tenant.id}&first=3&second=2",
        f"/v1/log/proof/inclusion?community_id={tenant.id}&index=0&transaction_id={tx['id']}",
        f"/v1/log/proof/inclusion?community_id={tenant.id}&index={size}",
        "/v1/log/proof/consistency?community_id=nope&first=1&second=1",
    ]
    for url in bad:
        r = await client.get(url)
        assert r.status_code in (400, 404), url
        assert r.headers["content-type"].startswith("application/problem+json"), url


async def test_two_integrators_at_once_append_each_transaction_once(tenant, engine, client):
    a, b = await funded_pair(tenant)
    for n in range(1, 6):
        await tenant.transfer(
            {
                "from_account": a["accounts"]["POINT"],
                "to_account": b["accounts"]["POINT"],
                "asset": "POINT",
                "amount": n,
            }
        )
    signer, prefix = client.app.state.signer, client.app.state.settings.log_origin

    async def one() -> Any:
        async with engine.begin() as conn:
            result = await integration.integrate(conn, uuid.UUID(tenant.id), signer, prefix)
            await asyncio.sleep(0.2)  # hold the community while the other tries
            return result

    results = await asyncio.gather(one(), one())
    assert sum(r is not None for r in results) == 1
    assert await tenant.integrate() == -1  # nothing left
    async with engine.connect() as conn:
        rows = (
            await conn.exec_driver_sql(
                "SELECT count(*), count(DISTINCT transaction_id), max(idx) FROM log_leaves "
                f"WHERE community_id = '{tenant.id}'"
            )
        ).one()
    assert rows[0] == rows[1] == rows[2] + 1 == 6  # the funding and 5 transfers, once each, indexes 0..5


async def test_consistency_between_every_pair_of_kept_checkpoints(tenant, engine, client):
    """A log of a few thousand transactions, integrated in irregular steps."""
    a, b = await funded_pair(tenant)
    cid = uuid.UUID(tenant.id)
    legs_ab = [
        (uuid.UUID(a["accounts"]["POINT"]), "POINT", "debit", "posted", 1),
        (uuid.UUID(b["accounts"]["POINT"]), "POINT", "credit", "posted", 1),
    ]
    legs_ba = [
        (legs_ab[1][0], "POINT", "debit", "posted", 1),
        (legs_ab[0][0], "POINT", "credit", "posted", 1),
    ]
    for _ in range(30):
        async with engine.begin() as conn:
            requests = [
                (
                    uuid.uuid4(),
                    cid,
                    "transfer",
                    "posted",
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    legs_ab if i % 2 else legs_ba,
                )
                for i in range(100)
            ]
            rows = await post_batch(await driver(conn), requests)
            assert {r["code"] for r in rows} <= {"ok", "insufficient_funds"}
    signer, prefix = client.app.state.signer, client.app.state.settings.log_origin
    step = 1
    while True:
        async with engine.begin() as conn:
            done = await integration.integrate(conn, cid, signer, prefix, max_batch=step)
        if done is None:
            break
        step = step * 2 + 1 if step < 600 else 37
    listing = (await client.get(f"/v1/log/checkpoints?community_id={tenant.id}&limit=500")).json()
    sizes = [c["tree_size"] for c in listing["items"] if c["tree_size"] > 0]
    assert sizes[-1] >= 3000 and len(sizes) >= 12
    keys = load_jwks(await published(client))
    notes = {}
    for s in sizes:
        text = (await client.get(f"/v1/log/checkpoints?community_id={tenant.id}&size={s}")).text
        notes[s] = verify_checkpoint(text, keys)
    pairs = 0
    for i, first in enumerate(sizes):
        for second in sizes[i:]:
            proof = (
                await client.get(
                    f"/v1/log/proof/consistency?community_id={tenant.id}&first={first}&second={second}"
                )
            ).json()
            verify_consistency(first, second, proof["proof"], notes[first].root, notes[second].root)
            pairs += 1
    assert pairs == len(sizes) * (len(sizes) + 1) // 2

    # A forged older checkpoint fails: another root for a kept size, even if signed with
    # the bank's own key (a bank rewriting its history), and an altered note is unsigned.
    old, new = sizes[len(sizes) // 2], sizes[-1]
    proof = (
        await client.get(f"/v1/log/proof/consistency?community_id={tenant.id}&first={old}&second={new}")
    ).json()
    forged_root = bytes(32)
    forged_note = signer.checkpoint(notes[old].origin, old, forged_root)
    forged = verify_checkpoint(forged_note, keys)  # validly signed...
    with pytest.raises(VerificationError):  # ...but not an ancestor of the published log
        verify_consistency(old, new, proof["proof"], forged.root, notes[new].root)
    altered = notes[old].text.replace(b64(notes[old].root), b64(forged_root))
    with pytest.raises(VerificationError, match="no valid signature"):
        verify_checkpoint(altered, keys)
    # Also end to end through `timebank verify --previous-checkpoint`.
    tx_id = (await client.get(f"/v1/log/proof/inclusion?community_id={tenant.id}&index=5")).json()[
        "transaction_id"
    ]
    receipt = await receipt_of(tenant, tx_id)
    assert receipt["log"]["tree_size"] == new
    runner_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"tb-{uuid.uuid4().hex[:6]}"
    runner_dir.mkdir()
    try:
        (runner_dir / "prev.txt").write_text(notes[old].text)
        (runner_dir / "forged.txt").write_text(forged_note)
        (runner_dir / "proof.json").write_text(json.dumps(proof))
        jwks = await published(client)
        (runner_dir / "latest.txt").write_text(notes[new].text)
        own = verify_cli(runner_dir, receipt, jwks, "--checkpoint", str(runner_dir / "latest.txt"))
        assert own.exit_code == 0, own.output
        other_size = verify_cli(runner_dir, receipt, jwks, "--checkpoint", str(runner_dir / "prev.txt"))
        assert other_size.exit_code == 1 and f"checkpoint is of size {old}" in other_size.output
        good = verify_cli(
            runner_dir,
            receipt,
            jwks,
            "--previous-checkpoint",
            str(runner_dir / "prev.txt"),
            "--consistency",
            str(runner_dir / "proof.json"),
        )
        assert good.exit_code == 0 and "consistent with size" in good.output, good.output
        bad = verify_cli(
            runner_dir,
            receipt,
            jwks,
            "--previous-checkpoint",
            str(runner_dir / "forged.txt"),
            "--consistency",
            str(runner_dir / "proof.json"),
        )
        assert bad.exit_code == 1 and "FAIL" in bad.output
    finally:
        shutil.rmtree(runner_dir)


async def test_old_receipts_verify_after_a_key_rotation(tenant, engine, client, settings, tmp_path):
    a, b = await funded_pair(tenant)
    move = {"from_account": a["accounts"]["POINT"], "to_account": b["accounts"]["POINT"], "asset": "POINT"}
    before = (await tenant.transfer({**move, "amount": 1})).json()
    hold = (await tenant.transfer({**move, "amount": 4, "pending": {"timeout_seconds": 600}})).json()
    idem = {**tenant.auth(), "Idempotency-Key": str(uuid.uuid4())}
    posted = (await client.post(f"/v1/transactions/{hold['id']}/post", headers=idem)).json()
    reversal = (
        await client.post(
            f"/v1/transactions/{posted['id']}/reverse",
            json={"reason": "退回"},
            headers={**tenant.auth(), "Idempotency-Key": str(uuid.uuid4())},
        )
    ).json()
    await tenant.integrate()
    old_receipt = await receipt_of(tenant, before["id"])
    kept_before = [await receipt_of(tenant, t["id"]) for t in (hold, posted, reversal)]
    old_kid = old_receipt["set"]["kid"]

    key_dir = tmp_path / "keys"
    shutil.copytree(settings.key_dir, key_dir)
    retired, current = signing_keys.rotate(key_dir)
    assert retired.kid == old_kid and not (key_dir / f"{old_kid}.pem").exists()
    app = client.app
    original = app.state.signer
    app.state.signer = signing_keys.load_signer(key_dir)  # what a restart after `keys rotate` does
    try:
        async with engine.begin() as conn:
            await registry.register_keys(conn, signing_keys.read_keyring(key_dir))
        after = (await tenant.transfer({**move, "amount": 2})).json()
        assert after["set"]["kid"] == current.kid
        await tenant.integrate()
        jwks = await published(client)
        listed = {k["kid"]: k for k in jwks["keys"]}
        assert listed[old_kid].get("retired_at") and not listed[current.kid].get("retired_at")
        keys = load_jwks(jwks)
        for kept in [old_receipt, *kept_before]:  # a transfer, a hold, its post, a reversal: kept from before
            verify_receipt(kept, keys)
            assert kept["set"]["kid"] == old_kid
        new_receipt = await receipt_of(tenant, after["id"])
        assert new_receipt["set"]["kid"] == current.kid
        verify_receipt(new_receipt, keys)
        verify_receipt(
            await receipt_of(tenant, before["id"]), keys
        )  # fetched again: now signed by the new key
        # The older checkpoint (old key) is consistent with the newer one (new key).
        proof = (
            await client.get(
                f"/v1/log/proof/consistency?first={old_receipt['log']['tree_size']}"
                f"&second={new_receipt['log']['tree_size']}",
                headers=tenant.auth(),
            )
        ).json()
        verify_receipt(
            new_receipt, keys, previous_checkpoint=old_receipt["log"]["checkpoint"], consistency=proof
        )
        # Without the retired key, the old receipt no longer verifies: the key set matters.
        with pytest.raises(VerificationError):
            verify_receipt(old_receipt, {current.kid: keys[current.kid]})
    finally:
        app.state.signer = original


def test_signing_key_files_are_checked(tmp_path):
    key_dir = tmp_path / "keys"
    made = signing_keys.generate(key_dir)
    assert (key_dir / f"{made.kid}.pem").stat().st_mode & 0o777 == 0o600
    with pytest.raises(signing_keys.SigningKeyError, match="rotate"):
        signing_keys.generate(key_dir)
    (key_dir / f"{made.kid}.pem").chmod(0o644)
    with pytest.raises(signing_keys.SigningKeyError, match="chmod 600"):
        signing_keys.load_signer(key_dir)
    (key_dir / f"{made.kid}.pem").chmod(0o600)
    signer = signing_keys.load_signer(key_dir)
    assert made.kid not in repr(signer._key) and "PRIVATE" not in repr(signer)
    # libsodium signs, OpenSSL (cryptography) verifies: Ed25519 is deterministic, same bytes
    for message in (b"", b"receipt", bytes(range(256)) * 9):
        assert signer.sign(message) == signer._key.sign(message)
        signer._key.public_key().verify(signer.sign(message), message)
    # keys.json is a JWK set whose kids are RFC 7638 thumbprints
    assert list(load_jwks(json.loads((key_dir / "keys.json").read_text()))) == [made.kid]
    # a checkpoint note by this key has the C2SP shape
    note = signer.checkpoint("example.org/log", 3, bytes(32))
    assert note.startswith(checkpoint_body("example.org/log", 3, bytes(32)) + "\n\u2014 example.org/log ")
    assert note == checkpoint_body("example.org/log", 3, bytes(32)) + "\n" + note_signature_line(
        "example.org/log",
        signer.public_key,
        signer.sign(checkpoint_body("example.org/log", 3, bytes(32)).encode()),
    )


def test_keys_commands(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env["TIMEBANK_SIGNING_KEY_DIR"] = str(tmp_path / "k")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "timebank.cli", "keys", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    made = run("generate")
    assert made.returncode == 0, made.stderr
    kid = json.loads(made.stdout)["kid"]
    assert run("generate").returncode != 0
    rotated = json.loads(run("rotate").stdout)
    assert rotated["retired"]["kid"] == kid and rotated["current"]["kid"] != kid
    listed = json.loads(run("list").stdout)
    assert [k["status"] for k in listed] == ["retired", "current"]
    assert "PRIVATE" not in made.stdout + made.stderr + run("list").stdout


async def test_log_integrate_command(tenant, database_url, settings, run_cli):
    a, b = await funded_pair(tenant)
    tx = (
        await tenant.transfer(
            {
                "from_account": a["accounts"]["POINT"],
                "to_account": b["accounts"]["POINT"],
                "asset": "POINT",
                "amount": 3,
            }
        )
    ).json()
    done = run_cli(
        "log", "integrate", "--once", url=database_url, TIMEBANK_SIGNING_KEY_DIR=str(settings.key_dir)
    )
    assert done.returncode == 0, done.stderr
    mine = [d for d in json.loads(done.stdout) if d["community_id"] == tenant.id]
    assert mine and mine[0]["tree_size"] >= 2
    assert "log" in await receipt_of(tenant, tx["id"])
