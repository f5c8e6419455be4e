"""The README's tour (`timebank tour`) against a fresh `serve`: twice in a row on the same
data, and with the whole system's clock five years ahead (libfaketime preloaded into
`serve`, its embedded PostgreSQL and the tour), every step answering as the README documents."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support import free_port, stop, wait_ready

FIVE_YEARS_AHEAD = "+1826d"


def environment(data_dir: Path, fake: bool = False) -> dict[str, str]:
    """The process's environment; ``fake``: with libfaketime preloaded (straight into the
    process, not through the `faketime` wrapper, so SIGTERM reaches serve itself)."""
    env = {k: v for k, v in os.environ.items() if k != "TIMEBANK_DATABASE_URL"}
    env["TIMEBANK_DATA_DIR"] = str(data_dir)
    if fake:
        found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
        assert found, (
            "libfaketime is missing: `python3 scripts/dev.py test` installs it (Debian package faketime)"
        )
        env["LD_PRELOAD"] = found[0]
        env["FAKETIME"] = FIVE_YEARS_AHEAD
    return env


@contextmanager
def serving(data_dir: Path, fake: bool = False) -> Iterator[str]:
    port = free_port()
    log = (data_dir.parent / f"serve-{port}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "timebank.cli", "serve", "--port", str(port)],
        env=environment(data_dir, fake),
        stdout=log,
        stderr=subprocess.STDOUT,  # to the file: an unread pipe fills up with request logs and blocks serve
        text=True,
    )
    try:
        wait_ready(port, proc, seconds=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        log.close()


def tour(url: str, data_dir: Path, scratch: Path, cwd: Path, fake: bool = False) -> str:
    where = ("--url", url, "--scratch", str(scratch))
    done = subprocess.run(
        [sys.executable, "-m", "timebank.cli", "tour", *where],
        env=environment(data_dir, fake),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done: 12 steps answered as documented" in done.stdout, done.stdout
    for name in ("receipt.json", "keys.json", "cert.pdf"):
        assert (scratch / name).stat().st_size > 0, name
    return done.stdout


def test_the_tour_answers_as_documented_twice_on_the_same_data(tmp_path):
    data, cwd = tmp_path / "data", tmp_path / "cwd"
    cwd.mkdir()
    with serving(data) as url:
        first = tour(url, data, tmp_path / "one", cwd)
        second = tour(url, data, tmp_path / "two", cwd)
    runs = [re.search(r"\(run (\w+);", out).group(1) for out in (first, second)]  # type: ignore[union-attr]
    assert runs[0] != runs[1]  # new keys, names and titles each time: no idempotency conflict
    assert "Idempotent-Replayed: true" in second and "eligibility.may_redeem True" in second
    assert list(cwd.iterdir()) == []  # files go to the scratch folder, not where it was run


def test_the_tour_answers_as_documented_five_years_from_now(tmp_path):
    data, cwd = tmp_path / "data", tmp_path / "cwd"
    cwd.mkdir()
    with serving(data, fake=True) as url:
        out = tour(url, data, tmp_path / "later", cwd, fake=True)
    today = re.search(r"today there is (\d{4})-", out)
    assert today and int(today.group(1)) >= 2031, out
