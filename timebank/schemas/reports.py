"""The reports' shapes (``/v1/reports``): every figure a sum over ledger entries."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec
from litestar.params import Parameter

from timebank.schemas.limits import DATE_PATTERN
from timebank.schemas.openapi import Out

# The period of a report: [from, to), local dates of the community.
PeriodFrom = Annotated[
    date,
    Parameter(query="from", schema_extra={"pattern": DATE_PATTERN}, description="the first day (included)"),
]
PeriodTo = Annotated[
    date,
    Parameter(
        query="to",
        schema_extra={"pattern": DATE_PATTERN},
        description="the day after the last (not included)",
    ),
]


class ServiceGroup(Out):
    """Minutes of approved service credited in the period (and reversed in it) for one
    organisation (key: its id), category (its code) or month (YYYY-MM, local)."""

    key: str
    name: str | None
    credited_minutes: int
    reversed_minutes: int
    net_minutes: int
    records: int


class ServiceTotals(Out):
    credited_minutes: int
    reversed_minutes: int
    net_minutes: int
    records: int
    active_volunteers: int
    new_volunteers: int


class StarLevelCount(Out):
    level: int
    volunteers: int


class StarCrossing(Out):
    """A volunteer whose star level rose in the period (staff only: it names them)."""

    member_id: str
    name: str | None
    from_level: int
    to_level: int


class ServiceReport(Out):
    timezone: str
    generated_at: str
    totals: ServiceTotals
    by_organisation: list[ServiceGroup]
    by_category: list[ServiceGroup]
    by_month: list[ServiceGroup]
    star_levels: list[StarLevelCount]
    star_crossings: list[StarCrossing]
    from_: str = msgspec.field(name="from")
    to: str


class MerchantRedemptions(Out):
    merchant_id: str
    name: str
    redemptions: int
    points: int


class RewardRedemptions(Out):
    reward_id: str
    merchant_id: str
    title: str
    redemptions: int
    points: int


class ExpiringPoints(Out):
    days: int
    points: int


class PointsReport(Out):
    timezone: str
    generated_at: str
    issued: int
    service_reversed: int
    redeemed: int
    expired: int
    donated: int
    adjusted: int
    crossed_in: int  # came from other communities of the district (through the clearing account)
    crossed_out: int  # left for other communities of the district (transfers, redemptions there)
    members_net_change: int
    outstanding_at_start: int
    outstanding: int
    expiring: list[ExpiringPoints]
    redeemed_by_merchant: list[MerchantRedemptions]
    redeemed_by_reward: list[RewardRedemptions]
    from_: str = msgspec.field(name="from")
    to: str


class MerchantActivity(Out):
    merchant_id: str
    name: str
    redemptions: int
    redeemed_points: int
    points_received: int


class MerchantTotals(Out):
    redemptions: int
    redeemed_points: int
    points_received: int


class MerchantsReport(Out):
    timezone: str
    generated_at: str
    merchants: list[MerchantActivity]
    totals: MerchantTotals
    from_: str = msgspec.field(name="from")
    to: str
