"""The first start is quiet: building the package as `scripts/dev.py` does before the
first `serve` (pip, in an isolated build environment) prints no setuptools deprecation,
and the licence is an SPDX expression with its text in the distribution."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_building_the_package_warns_of_nothing_deprecated(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "-w",
            str(tmp_path),
            "-v",
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "Deprecat" not in said and "deprecated" not in said, said
    (wheel,) = tmp_path.glob("timebank-*.whl")
    with zipfile.ZipFile(wheel) as z:
        metadata = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    assert "Apache License" in (ROOT / "LICENSE").read_text()
