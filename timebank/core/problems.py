"""Domain errors and their RFC 9457 problem+json form.

Services raise ``DomainError`` subclasses; the app turns each into an
``application/problem+json`` response whose ``type`` is stable (documented in
``docs/api.md``). Every error is raised before anything is written, or inside a
database transaction that is then rolled back, so an error changes nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://timebank.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


def a(noun: str) -> str:
    """The noun with its article, as a message says it: "an auditor", "a resident"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def problem_type(slug: str) -> str:
    return PROBLEM_BASE + slug


class DomainError(Exception):
    slug: ClassVar[str] = "domain-error"
    status: ClassVar[int] = 422
    title: ClassVar[str] = "The request breaks a rule of the bank"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        return problem_body(self.slug, self.title, self.status, self.detail, instance, **self.extra)


def problem_body(
    slug: str, title: str, status: int, detail: str | None = None, instance: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": problem_type(slug), "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


class BadRequest(DomainError):
    slug, status, title = "invalid-request", 400, "The request is not valid"


class NotFound(DomainError):
    # Also what a key sees for another community's objects: never 403, never a hint.
    slug, status, title = "not-found", 404, "No such resource"


class Forbidden(DomainError):
    slug, status, title = "forbidden", 403, "This key may not do that"


class Conflict(DomainError):
    slug, status, title = "conflict", 409, "The request conflicts with the current state"


class IdempotencyKeyRequired(DomainError):
    slug, status, title = "idempotency-key-required", 400, "An Idempotency-Key header is required"


class IdempotencyConflict(DomainError):
    slug, status, title = "idempotency-conflict", 409, "This Idempotency-Key was used for another request"


class InsufficientFunds(DomainError):
    slug, status, title = "insufficient-funds", 422, "Not enough funds"


class HoldAlreadyResolved(DomainError):
    slug, status, title = "hold-already-resolved", 409, "The hold was already posted, voided or expired"


class HoldExpired(DomainError):
    slug, status, title = "hold-expired", 422, "The hold has timed out and can no longer be posted"


class NotAHold(DomainError):
    slug, status, title = "not-a-hold", 409, "The transaction is not a pending hold"


class AlreadyReversed(DomainError):
    slug, status, title = "already-reversed", 409, "The transaction was already reversed"


class NotReversible(DomainError):
    slug, status, title = "not-reversible", 409, "The transaction cannot be reversed"


class AssetMismatch(DomainError):
    slug, status, title = "asset-mismatch", 422, "An account does not hold that asset"


class DuplicateExternalRef(DomainError):
    slug, status, title = "duplicate-external-ref", 409, "Another record already has this external_ref"


class LastAdminKey(DomainError):
    slug, status, title = "last-admin-key", 409, "The community's last admin key cannot be revoked"


class CreditLimitBelowUsage(DomainError):
    slug, status, title = "credit-limit-below-usage", 422, "The account already uses more than that limit"
