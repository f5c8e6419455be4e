"""Signing keys, and verifying receipts and certificates offline."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from timebank.cli.base import emit, main
from timebank.core.settings import get_settings


@main.group()
def keys() -> None:
    """Ed25519 signing keys of receipts and checkpoints (TIMEBANK_SIGNING_KEY_DIR)."""


def _key_row(k: Any) -> dict[str, Any]:
    return {
        "kid": k.kid,
        "created_at": k.created_at,
        "retired_at": k.retired_at,
        "status": "retired" if k.retired_at else "current",
    }


@keys.command("generate")
def keys_generate() -> None:
    """Make the first signing key (refused if one exists; see rotate)."""
    from timebank.log import keys as k

    settings = get_settings()
    try:
        made = k.generate(settings.key_dir)
    except k.SigningKeyError as err:
        raise click.ClickException(str(err)) from None
    emit({**_key_row(made), "key_dir": str(settings.key_dir)})


@keys.command("list")
def keys_list() -> None:
    """List signing keys, current and retired (public data only)."""
    from timebank.log import keys as k

    emit([_key_row(x) for x in k.read_keyring(get_settings().key_dir)])


@keys.command("rotate")
def keys_rotate() -> None:
    """Make a new current key; the old one is retired (still published, never used again).

    Restart the service (every replica) to sign with the new key.
    """
    from timebank.log import keys as k

    try:
        retired, new = k.rotate(get_settings().key_dir)
    except k.SigningKeyError as err:
        raise click.ClickException(str(err)) from None
    emit({"retired": _key_row(retired), "current": _key_row(new)})


def _read_json(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read {what} {path}: {exc}") from None


@main.command()
@click.argument("receipt", type=click.Path(dir_okay=False))
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(dir_okay=False),
    help="JWK set of the bank's public keys (GET /v1/log/keys); default: keys.json in the key directory.",
)
@click.option(
    "--checkpoint", type=click.Path(dir_okay=False), help="Check inclusion against this checkpoint."
)
@click.option(
    "--previous-checkpoint",
    type=click.Path(dir_okay=False),
    help="An older checkpoint that must be consistent with the newer one.",
)
@click.option(
    "--consistency",
    type=click.Path(dir_okay=False),
    help="Consistency proof JSON (GET /v1/log/proof/consistency) between the two.",
)
def verify(
    receipt: str,
    keys_file: str | None,
    checkpoint: str | None,
    previous_checkpoint: str | None,
    consistency: str | None,
) -> None:
    """Verify a receipt (or a certificate of service) offline: signature, leaf hash, inclusion,
    checkpoint signature, consistency.

    Needs no database and no network. Exit status 0 only if every check passed.
    """
    from timebank.log import verify as v

    if (previous_checkpoint is None) != (consistency is None):
        raise click.UsageError("--previous-checkpoint and --consistency go together")
    if keys_file is None:
        from timebank.log.keys import KEYRING

        keys_file = str(get_settings().key_dir / KEYRING)
    document = _read_json(receipt, "receipt")
    try:
        keyset = v.load_jwks(_read_json(keys_file, "key set"))
        if isinstance(document, dict) and "certificate" in document:  # a certificate of service
            cert = v.verify_certificate(document, keyset)
            click.echo(f"ok   certificate {cert.get('number')} signed by {document['kid']}")
            click.echo(
                f"     {cert.get('volunteer', {}).get('name')}: {cert.get('total_hours')} h of approved "
                f"service {cert.get('period', {}).get('from')} to {cert.get('period', {}).get('to')}, "
                f"issued by {cert.get('issuer')} at {cert.get('issued_at')}"
            )
            click.echo("certificate verified")
            return
        report = v.verify_receipt(
            document,
            keyset,
            checkpoint=None if checkpoint is None else open(checkpoint, encoding="utf-8").read(),
            previous_checkpoint=None
            if previous_checkpoint is None
            else open(previous_checkpoint, encoding="utf-8").read(),
            consistency=None if consistency is None else _read_json(consistency, "consistency proof"),
        )
    except v.VerificationError as err:
        click.echo(f"FAIL {err}")
        sys.exit(1)
    click.echo(f"transaction {report.transaction_id}")
    for line in report.checked:
        click.echo(f"ok   {line}")
    for line in report.skipped:
        click.echo(f"skip {line}")
    click.echo("receipt verified" + (" (not yet in the log)" if report.skipped else ""))
