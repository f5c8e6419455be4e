"""QR codes drawn on the server as inline SVG (no script, no image host, no style
attribute: the page's CSP allows none). A phone camera opens the URL it holds.

A voucher's QR holds its signed token (about 640 characters, a version 20 code), and
choosing the best mask for it takes ~60 ms of CPU: codes are cached by their text (a
voucher shows the same token every time) and drawn as one path with a segment per run
of dark modules (half the bytes of one square per module).
"""

from __future__ import annotations

from functools import lru_cache

import qrcode
from markupsafe import Markup, escape


@lru_cache(maxsize=1024)
def _drawing(text: str) -> tuple[int, str]:
    """(size in modules, the path of the dark modules) of the QR code of ``text``."""
    code = qrcode.QRCode(border=2)
    code.add_data(text)
    code.make(fit=True)
    rows = code.get_matrix()
    runs = []
    for y, row in enumerate(rows):
        x = 0
        while x < len(row):
            if row[x]:
                start = x
                while x < len(row) and row[x]:
                    x += 1
                runs.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return len(rows), "".join(runs)


def qr_svg(text: str, label: str) -> Markup:
    """An accessible SVG QR code of ``text``; ``label`` says what it is for screen readers."""
    size, path = _drawing(text)
    return Markup(
        f'<svg class="qr" role="img" aria-label="{escape(label)}" viewBox="0 0 {size} {size}" '
        f'xmlns="http://www.w3.org/2000/svg" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d="{path}"/></svg>'
    )
