"""QR codes drawn on the server as inline SVG (no script, no image host, no style
attribute: the page's CSP allows none). A phone camera opens the URL it holds."""

from __future__ import annotations

import io
import re

import qrcode
import qrcode.image.svg
from markupsafe import Markup, escape


def qr_svg(text: str, label: str) -> Markup:
    """An accessible SVG QR code of ``text``; ``label`` says what it is for screen readers."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    out = io.BytesIO()
    image.save(out)
    svg = out.getvalue().decode()
    svg = svg[svg.index("<svg") :]
    # Size by the page's CSS (class qr), black on white whatever the theme.
    svg = re.sub(
        r'<svg width="[^"]*" height="[^"]*"',
        f'<svg class="qr" role="img" aria-label="{escape(label)}"',
        svg,
        count=1,
    )
    svg = re.sub(r' id="[^"]*"', "", svg)  # two codes on one page must not share an id
    svg = svg.replace("<path ", '<rect width="100%" height="100%" fill="#fff"/><path fill="#000" ', 1)
    return Markup(svg)
