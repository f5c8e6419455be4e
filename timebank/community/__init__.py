"""Communities (tenants), their parties (members, organisations, merchants) and API keys.

Data access: ``queries.py`` holds every statement on ``communities``, ``parties`` and
``api_keys``, as typed SQLAlchemy Core on the SQLModel classes of ``models.py``
executed on an ``AsyncConnection`` (``Row`` results, no ORM session), the same way as
the ledger; accounts are opened and read through ``timebank.ledger.queries``.
"""
