"""Instrument sprites: each class is a drawn instrument with its own shape and colours."""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 2  # sprites are drawn at this factor and downscaled, for smooth edges
FAINT_ALPHA = 24  # alpha below this blends into the background within a grey level or so


class Canvas:
    """An RGBA drawing in units of the sprite's height: x in [0, aspect], y in [0, 1]."""

    def __init__(self, aspect: float, height_px: float):
        self.scale = height_px * SUPERSAMPLE
        self.size = (max(1, math.ceil(aspect * self.scale)), max(1, math.ceil(self.scale)))
        self.image = Image.new("RGBA", self.size, (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.image)

    def _px(self, points):
        return [(x * self.scale, y * self.scale) for x, y in points]

    def ellipse(self, cx, cy, rx, ry, fill):
        self.draw.ellipse(self._px([(cx - rx, cy - ry), (cx + rx, cy + ry)]), fill=fill)

    def ring(self, cx, cy, rx, ry, colour, width, start=0, end=360):
        self.draw.arc(
            self._px([(cx - rx, cy - ry), (cx + rx, cy + ry)]),
            start,
            end,
            fill=colour,
            width=max(1, round(width * self.scale)),
        )

    def rect(self, x1, y1, x2, y2, fill):
        self.draw.rectangle(self._px([(x1, y1), (x2, y2)]), fill=fill)

    def polygon(self, points, fill):
        self.draw.polygon(self._px(points), fill=fill)

    def line(self, points, colour, width):
        self.draw.line(self._px(points), fill=colour, width=max(1, round(width * self.scale)))

    def erase_ellipse(self, cx, cy, rx, ry):
        self.ellipse(cx, cy, rx, ry, (0, 0, 0, 0))  # ImageDraw replaces RGBA pixels: a cut-out

    def finish(self) -> Image.Image:
        size = (max(1, self.size[0] // SUPERSAMPLE), max(1, self.size[1] // SUPERSAMPLE))
        return self.image.resize(size, Image.Resampling.BOX)


def _bowed_body(c: Canvas, a: float, top: float, bottom: float, colours) -> None:
    """Figure-eight body with C-bout cut-outs, f-holes, fingerboard, tailpiece (violin, cello)."""
    body, edge, dark, light = colours["body"], colours["edge"], colours["dark"], colours["light"]
    h = bottom - top
    x = a / 2
    upper, lower = (top + 0.25 * h, 0.36 * a, 0.25 * h), (bottom - 0.27 * h, 0.46 * a, 0.27 * h)
    for (cy, rx, ry), grow in ((upper, 0.012), (lower, 0.012), (upper, 0), (lower, 0)):
        c.ellipse(x, cy, rx + grow, ry + grow, edge if grow else body)
    c.rect(x - 0.3 * a, top + 0.35 * h, x + 0.3 * a, bottom - 0.35 * h, body)
    for side in (-1, 1):
        c.erase_ellipse(x + side * 0.5 * a, top + 0.5 * h, 0.2 * a, 0.13 * h)
        c.line(
            [(x + side * 0.16 * a, top + 0.42 * h), (x + side * 0.14 * a, top + 0.68 * h)],
            dark,
            0.012,
        )
    c.polygon(
        [
            (x - 0.05 * a, 0.02),
            (x + 0.05 * a, 0.02),
            (x + 0.08 * a, top + 0.62 * h),
            (x - 0.08 * a, top + 0.62 * h),
        ],
        dark,
    )  # fingerboard
    c.ellipse(x, 0.03, 0.07 * a, 0.03, edge)  # scroll
    c.rect(x - 0.14 * a, top + 0.66 * h, x + 0.14 * a, top + 0.68 * h, light)  # bridge
    c.polygon(
        [
            (x - 0.09 * a, top + 0.76 * h),
            (x + 0.09 * a, top + 0.76 * h),
            (x + 0.05 * a, bottom - 0.03 * h),
            (x - 0.05 * a, bottom - 0.03 * h),
        ],
        dark,
    )
    for dx in (-0.03, -0.01, 0.01, 0.03):
        c.line([(x + dx * a, 0.04), (x + dx * a * 1.5, top + 0.78 * h)], light, 0.004)


def _draw_violin(c, a, col):
    _bowed_body(c, a, 0.3, 0.98, col)
    c.ellipse(a / 2 + 0.2 * a, 0.9, 0.16 * a, 0.05, col["dark"])  # chin rest


def _draw_cello(c, a, col):
    _bowed_body(c, a, 0.2, 0.9, col)
    c.line([(a / 2, 0.88), (a / 2, 1.0)], col["light"], 0.012)  # endpin


def _draw_guitar(c, a, col):
    x = a / 2
    for grow, colour in ((0.012, col["edge"]), (0.0, col["body"])):
        c.ellipse(x, 0.77, 0.48 * a + grow, 0.22 + grow, colour)
        c.ellipse(x, 0.52, 0.37 * a + grow, 0.16 + grow, colour)
    c.ellipse(x, 0.6, 0.14 * a, 0.14 * a, col["dark"])  # sound hole
    c.rect(x - 0.15 * a, 0.84, x + 0.15 * a, 0.86, col["dark"])  # bridge
    c.rect(x - 0.07 * a, 0.08, x + 0.07 * a, 0.5, col["neck"])
    for y in np.arange(0.12, 0.48, 0.04):
        c.line([(x - 0.07 * a, y), (x + 0.07 * a, y)], col["light"], 0.004)  # frets
    c.polygon(
        [(x - 0.11 * a, 0.0), (x + 0.11 * a, 0.0), (x + 0.08 * a, 0.09), (x - 0.08 * a, 0.09)],
        col["dark"],
    )  # headstock
    for dx in (-0.045, -0.015, 0.015, 0.045):
        c.line([(x + dx * a, 0.06), (x + dx * a * 1.3, 0.85)], col["light"], 0.003)


def _draw_flute(c, a, col):
    c.rect(0.1, 0.32, a - 0.05, 0.68, col["body"])  # tube
    c.rect(0.0, 0.28, 0.15, 0.72, col["edge"])  # head joint cap
    c.ellipse(1.0, 0.5, 0.3, 0.3, col["edge"])  # embouchure plate
    c.ellipse(1.0, 0.5, 0.12, 0.12, col["dark"])
    for x in np.linspace(2.5, a - 1.0, 9):
        c.ellipse(x, 0.5, 0.22, 0.22, col["light"])  # keys
        c.ellipse(x, 0.5, 0.1, 0.1, col["edge"])
    c.line([(3.0, 0.5), (a - 1.0, 0.5)], col["edge"], 0.06)  # key rod


def _draw_clarinet(c, a, col):
    x = a / 2
    c.polygon(
        [(x - 0.15 * a, 0.0), (x + 0.15 * a, 0.0), (x + 0.22 * a, 0.08), (x - 0.22 * a, 0.08)],
        col["dark"],
    )  # mouthpiece
    c.rect(x - 0.25 * a, 0.08, x + 0.25 * a, 0.1, col["light"])  # ligature
    c.rect(x - 0.2 * a, 0.1, x + 0.2 * a, 0.86, col["body"])
    c.polygon(
        [(x - 0.2 * a, 0.84), (x + 0.2 * a, 0.84), (x + 0.5 * a, 1.0), (x - 0.5 * a, 1.0)],
        col["body"],
    )  # bell
    for y in np.linspace(0.2, 0.8, 8):
        c.rect(x - 0.26 * a, y, x + 0.26 * a, y + 0.012, col["light"])  # key rings
        c.ellipse(x, y + 0.03, 0.08 * a, 0.08 * a, col["edge"])  # tone holes


def _draw_trumpet(c, a, col):
    t = 0.08
    gold, light = col["body"], col["light"]
    c.polygon([(0.0, 0.45), (0.15, 0.48), (0.15, 0.52), (0.0, 0.55)], light)  # mouthpiece
    c.line([(0.12, 0.5), (1.3, 0.5)], gold, t)
    c.ring(1.3, 0.65, 0.15, 0.15, gold, t, 270, 90)
    c.line([(1.3, 0.8), (0.4, 0.8)], gold, t)
    c.ring(0.4, 0.55, 0.25, 0.25, gold, t, 90, 270)
    c.line([(0.4, 0.3), (1.5, 0.3)], gold, t)
    c.polygon([(1.45, 0.26), (a, 0.02), (a, 0.58), (1.45, 0.34)], gold)  # bell
    c.ellipse(a - 0.03, 0.3, 0.03, 0.28, col["dark"])
    for x in (0.65, 0.8, 0.95):  # valves
        c.rect(x - 0.05, 0.18, x + 0.05, 0.92, col["edge"])
        c.ellipse(x, 0.1, 0.06, 0.05, col["pearl"])


def _draw_tuba(c, a, col):
    gold, edge = col["body"], col["edge"]
    c.polygon([(0.5, 0.12), (0.72, 0.12), (0.66, 0.62), (0.56, 0.62)], gold)  # bell throat
    c.ring(0.42, 0.62, 0.3, 0.3, gold, 0.1)  # main coil
    c.ring(0.42, 0.62, 0.17, 0.17, edge, 0.05)
    c.ellipse(0.6, 0.1, 0.25, 0.09, gold)  # bell
    c.ellipse(0.6, 0.1, 0.2, 0.06, col["dark"])
    for x in (0.12, 0.19, 0.26, 0.33):  # valves
        c.rect(x - 0.025, 0.36, x + 0.025, 0.56, col["light"])
        c.ellipse(x, 0.34, 0.03, 0.02, col["pearl"])
    c.line([(0.05, 0.5), (0.12, 0.3), (0.3, 0.3)], col["light"], 0.025)  # lead pipe


def _draw_xylophone(c, a, col):
    c.polygon([(0.05, 0.3), (a - 0.05, 0.38), (a - 0.05, 0.43), (0.05, 0.36)], col["frame"])
    c.polygon([(0.05, 0.78), (a - 0.05, 0.7), (a - 0.05, 0.75), (0.05, 0.84)], col["frame"])
    bars = col["bars"]
    width = (a - 0.3) / len(bars)
    for i, colour in enumerate(bars):
        x = 0.15 + i * width
        half = 0.42 - 0.15 * i / (len(bars) - 1)
        c.rect(x, 0.56 - half, x + 0.8 * width, 0.56 + half, colour)
        for y in (0.56 - 0.2, 0.56 + 0.17):
            c.ellipse(x + 0.4 * width, y, 0.02, 0.02, col["light"])  # nails
    for x0 in (0.8, 1.2):  # mallets
        c.line([(x0, 0.02), (x0 + 0.25, 0.3)], col["light"], 0.02)
        c.ellipse(x0 + 0.25, 0.3, 0.05, 0.05, col["dark"])


def _draw_saxophone(c, a, col):
    gold = col["body"]
    c.polygon([(0.22, 0.15), (0.3, 0.15), (0.36, 0.82), (0.16, 0.82)], gold)  # body tube
    c.ring(0.34, 0.8, 0.15, 0.14, gold, 0.1, 0, 180)  # bow
    c.polygon([(0.42, 0.82), (0.52, 0.82), (0.56, 0.52), (0.4, 0.52)], gold)  # bell tube
    c.ellipse(0.48, 0.5, 0.09, 0.05, gold)
    c.ellipse(0.48, 0.5, 0.065, 0.03, col["dark"])
    c.line([(0.26, 0.16), (0.2, 0.06), (0.06, 0.05)], gold, 0.04)  # neck
    c.rect(0.0, 0.03, 0.07, 0.07, col["dark"])  # mouthpiece
    for y in np.arange(0.25, 0.75, 0.08):
        c.ellipse(0.26, y, 0.03, 0.02, col["pearl"])  # keys


def _draw_accordion(c, a, col):
    c.rect(0.0, 0.1, 0.25, 0.9, col["body"])
    for i in range(4):
        for j in range(6):
            c.ellipse(0.05 + 0.05 * i, 0.2 + 0.11 * j, 0.015, 0.015, col["pearl"])  # buttons
    n_folds = 12
    for i in range(n_folds):
        x = 0.25 + i * (0.53 / n_folds)
        c.rect(x, 0.12, x + 0.53 / n_folds, 0.88, col["dark"] if i % 2 else col["light"])
    c.rect(0.78, 0.0, a, 1.0, col["body"])
    c.rect(0.84, 0.05, a - 0.04, 0.95, col["pearl"])  # keyboard
    for y in np.arange(0.05, 0.95, 0.06):
        c.line([(0.84, y), (a - 0.04, y)], col["edge"], 0.004)
        c.rect(0.84, y + 0.02, 0.94, y + 0.045, col["dark"])  # black keys


def _draw_erhu(c, a, col):
    c.rect(0.27, 0.0, 0.31, 0.85, col["neck"])
    for y in (0.08, 0.16):
        c.rect(0.31, y, 0.42, y + 0.03, col["neck"])  # pegs
    c.polygon(
        [(0.18, 0.8), (0.4, 0.8), (0.44, 0.88), (0.4, 0.97), (0.18, 0.97), (0.14, 0.88)],
        col["body"],
    )  # sound box
    c.ellipse(0.29, 0.885, 0.09, 0.06, col["light"])  # snake skin
    c.line([(0.285, 0.02), (0.285, 0.85)], col["light"], 0.004)  # strings
    c.line([(0.0, 0.6), (a, 0.72)], col["bow"], 0.015)  # bow stick
    c.line([(0.02, 0.63), (a - 0.02, 0.745)], col["light"], 0.006)  # bow hair


@dataclass(frozen=True)
class Look:
    """How one class looks: untilted sprite aspect (width/height), drawer, base colours (RGB),
    tilt range (deg, either sign), and how much of its region it fills."""

    aspect: float
    draw: Callable
    colours: dict
    tilt: tuple[float, float]
    fill: tuple[float, float]


_WOOD = dict(light=(235, 225, 200), dark=(35, 25, 20))
_BRASS = dict(light=(190, 190, 195), dark=(60, 40, 15), pearl=(245, 240, 225))
LOOKS = {
    "acoustic_guitar": Look(
        0.42,
        _draw_guitar,
        dict(_WOOD, body=(222, 160, 85), edge=(120, 70, 30), neck=(95, 55, 25)),
        (20, 40),
        (0.65, 0.9),
    ),
    "violin": Look(
        0.4, _draw_violin, dict(_WOOD, body=(175, 70, 30), edge=(100, 35, 15)), (30, 55), (0.5, 0.7)
    ),
    "cello": Look(
        0.42, _draw_cello, dict(_WOOD, body=(120, 45, 20), edge=(70, 25, 10)), (0, 12), (0.8, 0.95)
    ),
    "flute": Look(
        14.0,
        _draw_flute,
        dict(body=(205, 205, 215), edge=(150, 150, 160), light=(235, 235, 240), dark=(40, 40, 45)),
        (20, 35),
        (0.75, 0.95),
    ),
    "clarinet": Look(
        0.12,
        _draw_clarinet,
        dict(body=(25, 25, 28), edge=(70, 70, 75), light=(200, 200, 210), dark=(10, 10, 10)),
        (16, 28),
        (0.75, 0.95),
    ),
    "trumpet": Look(
        2.0,
        _draw_trumpet,
        dict(_BRASS, body=(235, 195, 60), edge=(200, 160, 50)),
        (8, 20),
        (0.7, 0.95),
    ),
    "tuba": Look(
        0.85,
        _draw_tuba,
        dict(_BRASS, body=(205, 150, 45), edge=(150, 105, 30)),
        (0, 10),
        (0.8, 0.95),
    ),
    "xylophone": Look(
        2.2,
        _draw_xylophone,
        dict(
            frame=(80, 50, 30),
            light=(200, 200, 200),
            dark=(150, 30, 90),
            bars=[
                tuple(round(255 * v) for v in colorsys.hsv_to_rgb(i / 9 * 0.8, 0.75, 0.95))
                for i in range(9)
            ],
        ),
        (0, 6),
        (0.75, 0.95),
    ),
    "saxophone": Look(
        0.58, _draw_saxophone, dict(_BRASS, body=(215, 165, 55)), (0, 15), (0.7, 0.9)
    ),
    "accordion": Look(
        1.1,
        _draw_accordion,
        dict(
            body=(190, 30, 40),
            light=(220, 220, 220),
            dark=(30, 30, 30),
            edge=(90, 90, 90),
            pearl=(245, 245, 240),
        ),
        (0, 10),
        (0.6, 0.9),
    ),
    "erhu": Look(
        0.6,
        _draw_erhu,
        dict(neck=(70, 35, 20), body=(110, 25, 20), light=(225, 215, 180), bow=(140, 95, 50)),
        (0, 12),
        (0.7, 0.9),
    ),
}


def vary_colour(
    rgb,
    hue_shift: float = 0.0,
    value_scale: float = 1.0,
    saturation_scale: float = 1.0,
    tint=(1.0, 1.0, 1.0),
):
    """The colour with its hue, saturation and value changed, then lit by light of colour `tint`
    (per-channel gains: a warm or cool lamp)."""
    h, s, v = colorsys.rgb_to_hsv(*(x / 255 for x in rgb))
    rgb = colorsys.hsv_to_rgb(
        (h + hue_shift) % 1.0, min(1.0, s * saturation_scale), min(1.0, v * value_scale)
    )
    return tuple(min(255, round(255 * x * gain)) for x, gain in zip(rgb, tint))


def draw_instrument(
    class_name: str,
    height_px: float,
    tilt_deg: float,
    hue_shift: float = 0.0,
    value_scale: float = 1.0,
    saturation_scale: float = 1.0,
    tint=(1.0, 1.0, 1.0),
) -> Image.Image:
    """The instrument sprite: RGBA, transparent outside the object, cropped to the object."""
    look = LOOKS[class_name]

    def vary(rgb):
        return vary_colour(rgb, hue_shift, value_scale, saturation_scale, tint)

    colours = {
        name: ([vary(c) for c in value] if name == "bars" else vary(value))
        for name, value in look.colours.items()
    }
    canvas = Canvas(look.aspect, height_px)
    look.draw(canvas, look.aspect, colours)
    sprite = drop_faint_edges(
        canvas.finish().rotate(tilt_deg, Image.Resampling.BICUBIC, expand=True)
    )
    return sprite.crop(sprite.getchannel("A").getbbox())


def drop_faint_edges(sprite: Image.Image) -> Image.Image:
    """The RGBA sprite with nearly transparent pixels (left by resampling) made transparent, so
    that its box holds only pixels that visibly change the picture."""
    sprite.putalpha(drop_faint_alpha(sprite.getchannel("A")))
    return sprite


def drop_faint_alpha(alpha: Image.Image) -> Image.Image:
    """An alpha band (mode L) with the values under FAINT_ALPHA made 0."""
    return alpha.point(lambda a: a if a >= FAINT_ALPHA else 0)
