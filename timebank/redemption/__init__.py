"""Rewards and redemptions at partner merchants (志愿服务爱心兑换).

Modules, by concept:

* ``rules``: may this member redeem this reward now, and at what price (pure).
* ``rewards``: publishing, editing and listing rewards, with each one's eligibility.
* ``redemptions``: redeem (a pending hold and a voucher), confirm, cancel, time out.
* ``redemption_views``: the voucher and what residents, merchants and staff read.
* ``statements``: a merchant's statement of confirmed redemptions (JSON, CSV).
* ``vouchers``: voucher codes and signed tokens (no database).
* ``audit``: what ``timebank audit`` checks of these tables.

Data access: every statement on ``rewards``, ``redemption_counts`` and
``redemptions`` is in ``queries.py``, typed SQLAlchemy Core (``select()``,
``insert()``, ``update()``, PostgreSQL upserts) on the SQLModel tables of
``models.py``, executed on an ``AsyncConnection``; results are ``Row`` objects with
the model's column names (no ORM session). Accounts, balances and holds come from
``timebank.ledger`` (``queries``/``service``), merchants from
``timebank.community.queries``, published keys from ``timebank.log.registry``.
"""
