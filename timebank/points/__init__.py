"""Love points lots: each credit to a member, spent oldest-expiry first, and their expiry.

The lots move with the ledger inside the database (migration 0004); ``service``
reads them for members and staff, ``expiry`` is the daily job that posts what is left
of expired lots to the ``expired`` account, ``seed`` makes many lots for benchmarks
and tests, ``audit`` checks lots against entries.

Data access: ``queries.py``, typed SQLAlchemy Core ``select()`` on the SQLModel tables
of ``models.py`` (``Row`` results, no ORM session), and the expiry job's two asyncpg
reads, which run beside ``ledger_post_batch``. Accounts and balances come from
``timebank.ledger.queries``.
"""
