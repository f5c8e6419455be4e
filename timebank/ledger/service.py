"""The ledger's service API, one import for its callers (``from timebank.ledger import service``).

The code lives in focused modules; this module only names what other packages use:

* ``legs``: the shape of a movement (``Leg``, ``Movement``, ``legs_of``, ``Claim``, limits);
* ``movement``: ``post``, the one way value moves (through ``ledger_post``, ``posting.py``),
  and ``post_together``: several transactions, in several ledgers, all or none;
* ``transfers``: client transfers and who may make them;
* ``holds``: resolving holds, reversals, expiring timed-out holds;
* ``accounts``, ``transactions``: reading them as a key may see them;
* ``journal``: the community's transactions, filtered, a page at a time (staff and board);
* ``views``: the JSON shape of transactions, accounts and balances;
* ``queries``: every SQL statement on the ledger's tables (balances: ``account_balances``).

The terms a movement is written in (``Asset``, ``Direction``, ``Kind``, ``Layer``,
``Phase``, from ``timebank.core.terms``) are named here too, as before the split.
"""

from __future__ import annotations

from timebank.core.terms import Asset, Direction, Kind, Layer, Phase
from timebank.ledger.accounts import (
    entries_page,
    get_account,
    history_page,
    load_accounts,
    may_read_account,
    set_credit_limit,
)
from timebank.ledger.holds import expire_holds, resolve_hold, reverse
from timebank.ledger.journal import JournalQuery, journal_page, journal_transaction
from timebank.ledger.legs import MAX_AMOUNT, MAX_LEGS, MAX_MEMO, Claim, KeyAlreadyUsed, Leg, Movement, legs_of
from timebank.ledger.movement import Part, post, post_together
from timebank.ledger.transactions import created_view, get_transaction
from timebank.ledger.transfers import CLIENT_KINDS, reads_accounts, transfer
from timebank.ledger.views import account_view, balance_view, entry_order, status_of, transaction_view

__all__ = [
    "CLIENT_KINDS",
    "MAX_AMOUNT",
    "MAX_LEGS",
    "MAX_MEMO",
    "Asset",
    "Claim",
    "Direction",
    "JournalQuery",
    "KeyAlreadyUsed",
    "Kind",
    "Layer",
    "Leg",
    "Movement",
    "Part",
    "Phase",
    "account_view",
    "balance_view",
    "created_view",
    "entries_page",
    "entry_order",
    "expire_holds",
    "get_account",
    "get_transaction",
    "history_page",
    "journal_page",
    "journal_transaction",
    "legs_of",
    "load_accounts",
    "may_read_account",
    "post",
    "post_together",
    "reads_accounts",
    "resolve_hold",
    "reverse",
    "set_credit_limit",
    "status_of",
    "transaction_view",
    "transfer",
]
