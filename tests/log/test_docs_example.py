"""docs/receipts.md shows exactly what scripts/docs/receipt_example.py computes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_worked_example_is_current() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "docs" / "receipt_example.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    doc = (ROOT / "docs" / "receipts.md").read_text()
    for line in out.splitlines():
        if line.startswith("## "):
            continue
        assert line.strip() in doc, f"docs/receipts.md lacks: {line}"
