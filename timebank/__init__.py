"""timebank: a community public-welfare bank on a double-entry ledger."""

__version__ = "0.1.0"
