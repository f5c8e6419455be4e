"""What a page may show of another person: at a shop counter, or to a neighbour, a
name is masked (李秀英 → 李*英), enough to tell "is this you?" and no more."""

from __future__ import annotations

MASK = "*"


def mask_name(name: str | None) -> str:
    """The first and the last character with ``*`` between them: 李秀英 → 李*英,
    欧阳娜娜 → 欧*娜, 张伟 → 张*, 王 → *, Alice → A*e (by character, not by word).
    Surrounding spaces do not count; an empty name is ``*``."""
    text = (name or "").strip()
    if len(text) <= 1:
        return MASK
    if len(text) == 2:
        return text[0] + MASK
    return text[0] + MASK + text[-1]
