"""HTML building blocks of every page: escaping, number formatting, the page shell and its CSS."""

from __future__ import annotations

import functools
import html
import math
import os
import urllib.parse
from importlib import resources

import numpy as np

from viz.media import lut


@functools.cache
def stylesheet() -> str:
    """The pages' CSS, shipped as viz/style.css, inlined so that a page opens straight from disk."""
    return resources.files("viz").joinpath("style.css").read_text(encoding="utf-8")


def esc(x) -> str:
    """Any value as text safe inside an element or a quoted attribute."""
    return html.escape(str(x), quote=True)


def url(rel: str) -> str:
    """A relative path as an escaped URL attribute value."""
    return esc(urllib.parse.quote(rel.replace(os.sep, "/")))


def num(v) -> float:
    """A number as float; anything else (None, text, missing) as NaN."""
    return float(v) if isinstance(v, (int, float, np.floating, np.integer)) else float("nan")


def fmt(v, digits: int = 2, unit: str = "") -> str:
    """A metric for display: a dash when missing, signed infinities, a true minus sign."""
    v = num(v)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "+∞" if v > 0 else "−∞"
    return f"{v:.{digits}f}{unit}".replace("-", "−")


def gradient(cmap: str) -> str:
    """A CSS linear gradient through a colormap, for the legends' colour bars."""
    stops = ", ".join("rgb({},{},{})".format(*lut(cmap)[i]) for i in range(0, 256, 32))
    return f"linear-gradient(to right, {stops}, rgb({','.join(map(str, lut(cmap)[255]))}))"


def render_page(title: str, head_html: str, body_html: str, extra_css: str = "") -> str:
    """A whole self-contained HTML document: the dark header, then the main column."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>\n{stylesheet()}{extra_css}</style></head>\n<body>\n"
        f"<header>{head_html}</header>\n<main>\n{body_html}\n</main>\n</body></html>\n"
    )
