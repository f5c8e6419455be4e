"""Notifications for members (points about to expire), kept in an outbox and
delivered to the community's webhook (``service``: making and reading them;
``webhooks``: signed delivery with retries).

Data access: ``queries.py``, typed SQLAlchemy Core statements on the SQLModel table
of ``models.py`` (``Row`` results, no ORM session); the lots a reminder is about
come from ``timebank.points.queries``.
"""
