"""The bottom of the import order: what every package shares and none owns.

Settings, problems (domain errors), the clock, roles, the ledger's terms and the
community policy. Modules here import nothing from ``timebank`` outside ``core``
(``tests/test_architecture.py`` holds that, and that no packages import each other
in a cycle).
"""
