"""A community's policy: how service turns into hours, points and stars.

Versioned: every change is a new row in ``community_policies`` (who, when), and an
approval records the version it applied. A community without a stored policy uses
the defaults below.

This module owns that table (``CommunityPolicy``, exactly as migration 0003 makes it)
and is the only reader of it: every package asks ``current_policy``. Statements are
SQLAlchemy Core on the model's columns, run on the caller's connection; results are
rows with the model's columns as attributes. Whether a trusted organisation is an
organisation of the community is the caller's check (``set_policy`` takes the set of
known organisations): the parties table belongs to a package above ``core``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any, Literal

import msgspec
from sqlalchemy import Column, DateTime, ForeignKey, Integer, Uuid, func, insert, select
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel

from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest


class Rounding(msgspec.Struct, forbid_unknown_fields=True):
    """How a record's duration becomes its minutes: to a unit, down, nearest or up."""

    unit_minutes: int = 1
    mode: Literal["down", "nearest", "up"] = "down"


class PointsExpiry(msgspec.Struct, forbid_unknown_fields=True):
    """When a points lot expires: N months after its credit, or at the end of the next calendar year."""

    kind: Literal["months_after_credit", "end_of_next_year"] = "months_after_credit"
    months: int = 12


class Category(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    name: str


# The five mutual-aid centres (五大互助中心).
DEFAULT_CATEGORIES = [
    Category("volunteer_service", "志愿服务"),
    Category("neighbour_aid", "邻里互助"),
    Category("day_care", "日间照料"),
    Category("legal_aid", "法律援助"),
    Category("culture_health", "文体健康"),
]
# VIP love-exchange: volunteers with more stars earn on better terms.
DEFAULT_MULTIPLIERS = {"0": "1", "1": "1.05", "2": "1.1", "3": "1.2", "4": "1.3", "5": "1.5"}


class Policy(msgspec.Struct, forbid_unknown_fields=True):
    points_per_hour: int = 10
    tier_multipliers: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_MULTIPLIERS))
    star_thresholds_hours: list[int] = msgspec.field(default_factory=lambda: [100, 300, 600, 1000, 1500])
    daily_cap_minutes: int = 12 * 60
    rounding: Rounding = msgspec.field(default_factory=Rounding)
    points_expiry: PointsExpiry = msgspec.field(default_factory=PointsExpiry)
    categories: list[Category] = msgspec.field(default_factory=lambda: list(DEFAULT_CATEGORIES))
    # Organisations whose records are approved as they are recorded.
    trusted_organisations: list[uuid.UUID] = msgspec.field(default_factory=list)
    # How long a redemption voucher (code and QR, and the points hold) stays valid.
    voucher_seconds: int = 15 * 60
    # The community's public page (/p/{community}): its figures, log and verifier.
    public_page: bool = True
    # Activities: a withdrawal later than this many hours before the start is a no-show.
    withdraw_deadline_hours: int = 24
    # Whether back-filled records (补录: entered without a check-in) earn points; their
    # hours are credited either way.
    backfilled_points: bool = False

    def check(self) -> Policy:
        """Refuse a policy that cannot be applied (a clear 400 naming the field)."""
        if not 0 <= self.points_per_hour <= 1000:
            raise BadRequest("points_per_hour is from 0 to 1000")
        t = self.star_thresholds_hours
        if len(t) != 5 or any(h <= 0 for h in t) or any(a >= b for a, b in pairwise(t)):
            raise BadRequest("star_thresholds_hours is five increasing positive whole hours (stars 1 to 5)")
        if set(self.tier_multipliers) != {str(s) for s in range(6)}:
            raise BadRequest('tier_multipliers names every star level "0" to "5"')
        for star, value in self.tier_multipliers.items():
            try:
                m = Decimal(value)
            except InvalidOperation:
                raise BadRequest(
                    f"tier_multipliers[{star}] is a decimal number written as a string"
                ) from None
            if not Decimal(0) < m <= Decimal(10) or m.as_tuple().exponent < -4:  # type: ignore[operator]
                raise BadRequest(f"tier_multipliers[{star}] is above 0, at most 10, with up to 4 decimals")
        if not 1 <= self.daily_cap_minutes <= 24 * 60:
            raise BadRequest("daily_cap_minutes is from 1 to 1440")
        if not 1 <= self.rounding.unit_minutes <= 60:
            raise BadRequest("rounding.unit_minutes is from 1 to 60")
        if not 1 <= self.points_expiry.months <= 120:
            raise BadRequest("points_expiry.months is from 1 to 120")
        codes = [c.code for c in self.categories]
        if (
            not 1 <= len(codes) <= 50
            or len(set(codes)) != len(codes)
            or not all(1 <= len(c.code) <= 50 and 1 <= len(c.name) <= 50 for c in self.categories)
        ):
            raise BadRequest("categories: 1 to 50, each with a unique code and a name of 1 to 50 characters")
        if not 1 <= self.voucher_seconds <= 24 * 3600:
            raise BadRequest("voucher_seconds is from 1 to 86400")
        if not 0 <= self.withdraw_deadline_hours <= 30 * 24:
            raise BadRequest("withdraw_deadline_hours is from 0 to 720")
        return self

    def multiplier(self, star_level: int) -> Decimal:
        return Decimal(self.tier_multipliers[str(star_level)])

    def category_code(self, given: str) -> str | None:
        """A category by its code or its name."""
        for c in self.categories:
            if given in (c.code, c.name):
                return c.code
        return None

    def star_level(self, lifetime_minutes: int) -> int:
        return sum(1 for h in self.star_thresholds_hours if lifetime_minutes >= h * 60)

    def minutes_to_next_level(self, lifetime_minutes: int) -> int | None:
        level = self.star_level(lifetime_minutes)
        return None if level == 5 else self.star_thresholds_hours[level] * 60 - lifetime_minutes

    def round_minutes(self, seconds: float) -> int:
        unit = self.rounding.unit_minutes * 60
        whole, rest = divmod(int(seconds), unit)
        if self.rounding.mode == "up" and rest:
            whole += 1
        elif self.rounding.mode == "nearest" and rest * 2 >= unit:
            whole += 1
        return whole * self.rounding.unit_minutes

    def points_for(self, minutes: int, star_level: int) -> int:
        """Points for approved minutes: minutes × points_per_hour / 60 × the tier multiplier, rounded down."""
        return int(Decimal(minutes) * self.points_per_hour * self.multiplier(star_level) / 60)

    def record_points(self, minutes: int, star_level: int, back_filled: bool) -> int:
        """The points an approved record earns: none for a back-filled one (补录) unless
        the policy says so (``backfilled_points``). The one home of that rule: every
        approval, and every estimate of one, asks here."""
        if back_filled and not self.backfilled_points:
            return 0
        return self.points_for(minutes, star_level)


def decode_policy(body: bytes) -> Policy:
    try:
        return msgspec.json.decode(body, type=Policy, strict=True).check()
    except msgspec.ValidationError as exc:
        raise BadRequest(str(exc)) from None
    except msgspec.DecodeError:
        raise BadRequest("the body is not JSON") from None


class CommunityPolicy(SQLModel, table=True):
    """One version of a community's policy (append-only: a trigger refuses UPDATE and DELETE)."""

    __tablename__ = "community_policies"

    community_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("communities.id"), primary_key=True, autoincrement=False)
    )
    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    policy: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    changed_by: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid))
    changed_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=sql("now()"))
    )


_VERSIONS = select(CommunityPolicy)


async def current_policy(conn: AsyncConnection, community_id: uuid.UUID) -> tuple[int, Policy, Any]:
    """(version, policy, row) of the community's policy; version 0 means the defaults."""
    row = (
        await conn.execute(
            _VERSIONS.where(CommunityPolicy.community_id == community_id)
            .order_by(CommunityPolicy.version.desc())  # type: ignore[attr-defined]
            .limit(1)
        )
    ).first()
    if row is None:
        return 0, Policy(), None
    return row.version, msgspec.convert(row.policy, Policy), row


def policy_view(version: int, policy: Policy, row: Any) -> dict[str, Any]:
    return {
        "version": version,
        "policy": msgspec.to_builtins(policy),
        "changed_by": None if row is None or row.changed_by is None else str(row.changed_by),
        "changed_at": None if row is None else rfc3339(row.changed_at),
    }


async def lock_policy(conn: AsyncConnection, community_id: uuid.UUID) -> None:
    """Hold the community's policy until the transaction ends: a change that reads the
    current version and writes the next (a page's form, a trust toggle) takes it first,
    so two changes never both build on the same version. (``set_policy`` takes it too;
    taking it twice in one transaction is fine.)"""
    await conn.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"timebank.policy:{community_id}", 0)))
    )


async def set_policy(
    conn: AsyncConnection,
    community_id: uuid.UUID,
    policy: Policy,
    key_id: uuid.UUID,
    organisations: Iterable[uuid.UUID] = (),
) -> dict[str, Any]:
    """Store a new version (the versions stay; a concurrent change gets the next number or fails).

    ``organisations``: those of ``policy.trusted_organisations`` that are organisations
    of the community (the caller looks them up); any other trusted one is a 400.
    """
    policy.check()
    known = set(organisations)
    unknown = [str(o) for o in policy.trusted_organisations if o not in known]
    if unknown:
        raise BadRequest(
            f"trusted_organisations: {', '.join(unknown)} is not an organisation of this community"
        )
    await lock_policy(conn, community_id)
    version, _, _ = await current_policy(conn, community_id)
    row = (
        await conn.execute(
            insert(CommunityPolicy)
            .values(
                community_id=community_id,
                version=version + 1,
                policy=msgspec.to_builtins(policy),
                changed_by=key_id,
            )
            .returning(*CommunityPolicy.__table__.c)  # type: ignore[attr-defined]
        )
    ).one()
    return policy_view(row.version, policy, row)


async def policy_history(conn: AsyncConnection, community_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = (
        await conn.execute(
            _VERSIONS.where(CommunityPolicy.community_id == community_id).order_by(
                CommunityPolicy.version  # type: ignore[arg-type]
            )
        )
    ).all()
    return [policy_view(r.version, msgspec.convert(r.policy, Policy), r) for r in rows]


async def policy_versions_page(
    conn: AsyncConnection, community_id: uuid.UUID, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """The versions below ``before`` (all, if None), newest first, at most ``limit``; and
    the cursor of the next page (the last version shown), or None at the first version."""
    stmt = _VERSIONS.where(CommunityPolicy.community_id == community_id)
    if before is not None:
        stmt = stmt.where(CommunityPolicy.version < before)  # type: ignore[arg-type]
    rows = (
        await conn.execute(stmt.order_by(CommunityPolicy.version.desc()).limit(limit + 1))  # type: ignore[attr-defined]
    ).all()
    items = [policy_view(r.version, msgspec.convert(r.policy, Policy), r) for r in rows[:limit]]
    return items, (rows[limit - 1].version if len(rows) > limit else None)


async def policy_version(
    conn: AsyncConnection, community_id: uuid.UUID, version: int
) -> dict[str, Any] | None:
    """One version as ``policy_view`` shows it (version 0: the defaults), or None."""
    if version == 0:
        return policy_view(0, Policy(), None)
    row = (
        await conn.execute(
            _VERSIONS.where(
                CommunityPolicy.community_id == community_id,
                CommunityPolicy.version == version,  # type: ignore[arg-type]
            )
        )
    ).first()
    return None if row is None else policy_view(row.version, msgspec.convert(row.policy, Policy), row)
