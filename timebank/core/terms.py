"""The ledger's words: assets, system accounts, kinds and phases of transactions, legs.

At the bottom of the import order: the ledger defines what they mean, every other
package (service records, points, redemption, the log) uses them.
"""

from __future__ import annotations

from enum import StrEnum


class Asset(StrEnum):
    HOUR = "HOUR"  # whole minutes of service
    POINT = "POINT"  # whole love points


class SystemRole(StrEnum):
    ISSUANCE = "issuance"  # where new hours and points come from; may go negative
    EXPIRED = "expired"  # sink for expired points
    FUND = "fund"  # community fund, donations
    CLEARING = "clearing"  # a district member's: value that crossed out (credit) and in (debit)
    EXCHANGE = "exchange"  # a district's: where rate differences and settlements balance


class Kind(StrEnum):
    SERVICE_CREDIT = "service_credit"
    TRANSFER = "transfer"
    DONATION = "donation"
    REDEMPTION = "redemption"
    EXPIRY = "expiry"
    REVERSAL = "reversal"
    ADJUSTMENT = "adjustment"
    CROSSING = "crossing"  # one of the three parts of a crossing between communities
    SETTLEMENT = "settlement"  # a district's settlement, and its part in each community


class Phase(StrEnum):
    POSTED = "posted"  # single-phase, final
    PENDING = "pending"  # a hold: reserves the debit until posted, voided or expired
    POST = "post"  # resolves a hold by moving its amount
    VOID = "void"  # resolves a hold by releasing it
    EXPIRE = "expire"  # resolves a timed-out hold by releasing it


class Direction(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class Layer(StrEnum):
    POSTED = "posted"  # moves the posted balance
    PENDING = "pending"  # reserves (adds to the pending balance)
    RELEASE = "release"  # un-reserves what a hold reserved
