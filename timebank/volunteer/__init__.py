"""Volunteer service: records (志愿服务记录), their approval and corrections, a volunteer's
standing (stars), certificates (志愿服务证明) and the CSV import.

Modules, by concept:

* ``records``: the submitted shape, the views answered and the errors, shared by all.
* ``checks``: the rules a row meets (fields, times, overlap, daily cap), pure CPU.
* ``recording``: ``record_many``, the one path that writes records (form, CSV, CLI).
* ``approval``: approve, reject, trusted organisations' records approved as written.
* ``corrections``: four-eyes reversals of approved records.
* ``standing``: lifetime approved minutes and the star level they give.
* ``reading``: who may read which records, one or a page.
* ``certificates``, ``csv_import``, ``controllers`` (HTTP only).
* ``models`` and ``queries``: the package's tables and every statement on them;
  ``parties``: the few reads of the community package's tables it needs.

Data access: SQLAlchemy Core statements built on the SQLModel table classes
(``select(ServiceRecord)``, ``insert``, ``update``), run on the caller's
``AsyncConnection`` inside its transaction; results are ``Row`` objects with the
model's columns as attributes (no ``AsyncSession``, no ORM instances). The batch
statements of an import go to asyncpg directly (``asyncpg.Record``, same names).
"""
