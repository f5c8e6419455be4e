"""Scheduled jobs: what each does (``definitions``), running each once per period
whatever the replicas (``runner``), the scheduler (``scheduler``) and reading the
runs (``service``).

Data access: ``queries.py`` holds every statement on ``job_runs`` and the advisory
locks, typed SQLAlchemy Core on the SQLModel table of ``models.py`` (``Row``
results, no ORM session). The jobs reach other packages' tables only through their
``queries`` and services.
"""
