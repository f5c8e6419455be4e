"""The ledger: accounts, balanced transactions, entries, holds, reversals, idempotency.

Data access: every statement on the ledger's tables is in ``queries.py``, written as
typed SQLAlchemy Core on the SQLModel table classes of ``models.py``
(``select(Account)``, ``select(Entry.id, ...)``, ``insert``/``update``) and executed
on an ``AsyncConnection``; results are ``Row`` objects with the model's column names
(no ORM session). Two exceptions stay SQL, on purpose: the hot path
(``ledger_post_batch``, called through asyncpg in ``posting.py``) and the few asyncpg
statements in ``queries.py`` (locked balances for the expiry job, the record of a
rejected idempotent request, the canonical rows of the log). Balances have one
definition, the ``account_balances`` view (migration 0006). ``service.py`` names
the API other packages use.
"""
