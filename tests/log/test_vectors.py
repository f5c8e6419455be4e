"""The public RFC 6962 vectors (transparency-dev/merkle, copied in vectors/): every happy
case is accepted, every tampered case rejected, by the verifier `timebank verify` uses."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from timebank.log.verify import VerificationError, verify_consistency, verify_inclusion

VECTORS = Path(__file__).parent / "vectors" / "testdata"


def _cases(kind: str) -> list[tuple[str, dict]]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert len(files) > 80, f"{kind} vectors missing"
    return [(str(f.relative_to(VECTORS)), json.loads(f.read_text())) for f in files]


def _b(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(values: list[str] | None) -> list[str] | None:
    return values  # base64 strings; the verifier decodes strictly and checks lengths


def _expect(case: dict, check: Callable[[], None]) -> None:
    """Accept a happy case, reject a wantErr case."""
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            check()
    else:
        check()


@pytest.mark.parametrize(("name", "case"), _cases("inclusion"), ids=lambda v: v if isinstance(v, str) else "")
def test_inclusion_vector(name: str, case: dict) -> None:
    _expect(
        case,
        lambda: verify_inclusion(
            case["leafIdx"], case["treeSize"], _b(case["leafHash"]), _proof(case["proof"]), _b(case["root"])
        ),
    )


@pytest.mark.parametrize(
    ("name", "case"), _cases("consistency"), ids=lambda v: v if isinstance(v, str) else ""
)
def test_consistency_vector(name: str, case: dict) -> None:
    _expect(
        case,
        lambda: verify_consistency(
            case["size1"], case["size2"], _proof(case["proof"]), _b(case["root1"]), _b(case["root2"])
        ),
    )


def test_both_outcomes_are_represented() -> None:
    for kind in ("inclusion", "consistency"):
        outcomes = [c["wantErr"] for _, c in _cases(kind)]
        assert outcomes.count(False) >= 5 and outcomes.count(True) >= 50, kind
