"""The `timebank` command: one group, its commands in modules by what they work on."""

from timebank.cli import background, data, keys, serve, tour  # noqa: F401 - each registers its commands
from timebank.cli.base import main

__all__ = ["main"]
