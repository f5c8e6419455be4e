"""The ledger's pages: none of its own.

The staff journal (``/staff/journal``) reads the ledger through ``ledger.journal`` but
names the parties of each transaction (``community``) and says where it is in the
transparency log (``log``); both of those packages import the ledger, so the journal's
pages live in ``timebank.jobs.pages``, beside the operations page (a page here that
imported them would make an import cycle, see tests/test_architecture.py).
"""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

PAGES: list[ControllerRouterHandler] = []
