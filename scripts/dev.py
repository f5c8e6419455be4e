#!/usr/bin/env python3
"""One entry point for a fresh machine with only Python 3.11+:

    python3 scripts/dev.py serve [timebank serve options]   # run the service
    python3 scripts/dev.py test  [pytest options]           # run the whole test suite
    python3 scripts/dev.py lint  [paths, default .]         # ruff check and ruff format --check

Each makes (or refreshes) the virtual environment in .venv, installs the project with
its dev extras when pyproject.toml changed, then runs the command inside it. The
database is the embedded PostgreSQL that the project installs from PyPI. The browser
tests (tests/web) drive Debian's chromium through Playwright's driver; `test` installs
chromium and fonts-noto-cjk with apt-get when they are missing (as root, or with
`sudo -n`). $TIMEBANK_CHROMIUM names another Chromium to use instead of /usr/bin/chromium.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".timebank-installed"
# The browser tests' Chromium: Debian's package, never one Playwright downloads (tests/web/conftest.py
# reads the same variable). fonts-noto-cjk gives it Chinese glyphs for the screenshots.
CHROMIUM = Path(os.environ.get("TIMEBANK_CHROMIUM") or "/usr/bin/chromium")
CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")  # from fonts-noto-cjk


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
    for step in (["--upgrade", "pip"], ["-e", f"{ROOT}[dev]"]):
        # pip's and the build backend's chatter (an editable install's advice, the
        # machine's index settings) is shown only if the install fails: a first start
        # should say what it does, not what it did not need.
        done = subprocess.run([*pip, "install", "--quiet", *step], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"pip install {' '.join(step)} failed:\n{done.stdout}{done.stderr}")
    STAMP.write_text(wanted)


def _has_chinese_font() -> bool:
    if CJK_FONT.exists():
        return True
    if shutil.which("fc-list") is None:
        return False
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True)
    return listed.returncode == 0 and bool(listed.stdout.strip())


def ensure_chromium() -> None:
    """Install Debian's chromium (and Chinese fonts) for the browser tests when missing, and
    faketime, which runs the README's tour in another year (tests/test_tour.py)."""
    packages = [
        *([] if CHROMIUM.exists() else ["chromium"]),
        *([] if _has_chinese_font() else ["fonts-noto-cjk"]),
        *([] if shutil.which("faketime") else ["faketime"]),
    ]
    if not packages:
        return
    wanted = " ".join(packages)
    by_hand = (
        f"the browser tests (tests/web) need the Debian packages {wanted} (as root: apt-get install "
        f"--no-install-recommends {wanted}) or TIMEBANK_CHROMIUM set to a Chromium or Chrome executable"
    )
    if os.name != "posix" or shutil.which("apt-get") is None:
        sys.exit(f"no apt-get here; {by_hand}")
    if os.geteuid() == 0:
        sudo: list[str] = []
    elif shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        sudo = ["sudo", "-n"]
    else:
        sys.exit(f"not root, and no password-less `sudo -n` to install with; {by_hand}")
    print(f"installing {wanted} with apt-get for the browser tests (tests/web)", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait_for_lock = ["-o", "DPkg::Lock::Timeout=600"]  # another apt run (unattended-upgrades) may hold it
    for step in (
        ["apt-get", *wait_for_lock, "update"],
        ["apt-get", *wait_for_lock, "install", "-y", "--no-install-recommends", *packages],
    ):
        done = subprocess.run([*sudo, *step], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{' '.join(step)} failed:\n{done.stdout}{done.stderr}\n{by_hand}")
    if not CHROMIUM.exists():
        sys.exit(f"chromium is installed but {CHROMIUM} (TIMEBANK_CHROMIUM) does not exist; {by_hand}")


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
        ensure_chromium()
        args = [str(BIN / "python"), "-m", "pytest", *rest]
    if os.name == "nt":
        sys.exit(subprocess.call(args))
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
