"""What surrounds the instruments: backgrounds, lighting, room clutter and the player."""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw

CLUTTER_KINDS = (
    "chair",
    "table",
    "music_stand",
    "lamp",
    "plant",
    "picture",
    "window",
    "speaker",
    "shelf",
)


def _rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    return tuple(round(255 * x) for x in colorsys.hsv_to_rgb(h % 1.0, s, v))


def random_colour(rng: np.random.Generator, saturation=(0.1, 0.8), value=(0.2, 0.95)):
    return _rgb(rng.uniform(0, 1), rng.uniform(*saturation), rng.uniform(*value))


def make_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A textured (H, W, 3) uint8 wall: gradient plus stripes, blobs or smooth noise.
    Drawn from the same distribution for every class, so it carries no class information."""
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * x + np.sin(angle) * y
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-9)
    low, high = rng.uniform(20, 235, (2, 3))
    image = low + (high - low) * ramp[..., None]
    texture = rng.integers(3)
    if texture == 0:
        freq, theta = rng.uniform(3, 15), rng.uniform(0, np.pi)
        stripes = np.sin(2 * np.pi * freq * (np.cos(theta) * x + np.sin(theta) * y))
        image += rng.uniform(10, 35) * stripes[..., None] * rng.uniform(0.3, 1.0, 3)
    elif texture == 1:
        for _ in range(rng.integers(3, 8)):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 0.75), rng.uniform(0.05, 0.25)
            blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
            image += blob[..., None] * rng.uniform(-60, 60, 3)
    else:
        coarse = rng.uniform(-1, 1, (rng.integers(3, 9), rng.integers(3, 9), 3))
        smooth = np.stack(
            [
                np.asarray(
                    Image.fromarray(coarse[..., i].astype(np.float32)).resize(
                        (width, height), Image.Resampling.BICUBIC
                    )
                )
                for i in range(3)
            ],
            axis=-1,
        )
        image += rng.uniform(20, 50) * smooth
    if rng.random() < 0.7:  # a floor of another colour below a horizon
        horizon = round(rng.uniform(0.55, 0.85) * height)
        image[horizon:] = 0.5 * image[horizon:] + 0.5 * rng.uniform(20, 200, 3)
    return np.clip(image, 0, 255)


def light(image: np.ndarray, lighting: dict, rng: np.random.Generator) -> np.ndarray:
    """The (H, W, 3) float picture lit by the video's lamp: a tint, an overall gain and a soft
    fall-off away from a light spot, plus sensor-like grain; returned as uint8."""
    height, width = image.shape[:2]
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    cx, cy = lighting["spot"]
    falloff = 1.0 - lighting["falloff"] * np.clip(np.hypot(x - cx, y - cy) / 0.8, 0, 1)
    lit = image * falloff[..., None] * lighting["gain"] * np.asarray(lighting["tint"])
    lit += rng.normal(0, 4, image.shape)
    return np.clip(lit, 0, 255).astype(np.uint8)


def draw_lighting(rng: np.random.Generator) -> dict:
    """A video's light: warm or cool tint, brightness, and where the lamp is."""
    warmth = rng.uniform(-0.12, 0.12)
    return dict(
        tint=(1 + warmth, 1.0, 1 - warmth),
        gain=rng.uniform(0.7, 1.15),
        spot=(rng.uniform(0, 1), rng.uniform(0, 0.6)),
        falloff=rng.uniform(0.0, 0.45),
    )


def _paint_clutter(
    draw: ImageDraw.ImageDraw,
    kind: str,
    x: float,
    floor: float,
    size: float,
    rng: np.random.Generator,
) -> None:
    """One item of `kind`, `size` px tall, standing on `floor` (wall items hang above it)."""
    s = size
    main = random_colour(rng)
    dark = tuple(c // 3 for c in main)
    w = max(1, round(0.03 * s))
    if kind == "chair":
        draw.rectangle([x, floor - 0.5 * s, x + 0.5 * s, floor - 0.44 * s], fill=main)
        draw.rectangle([x + 0.44 * s, floor - s, x + 0.5 * s, floor - 0.44 * s], fill=main)
        for leg in (x + 0.02 * s, x + 0.46 * s):
            draw.line([leg, floor - 0.45 * s, leg, floor], fill=dark, width=w)
    elif kind == "table":
        draw.rectangle([x, floor - 0.55 * s, x + 1.2 * s, floor - 0.48 * s], fill=main)
        for leg in (x + 0.08 * s, x + 1.12 * s):
            draw.line([leg, floor - 0.5 * s, leg, floor], fill=dark, width=2 * w)
    elif kind == "music_stand":
        draw.line([x, floor - 0.6 * s, x, floor], fill=dark, width=w)
        draw.line([x - 0.2 * s, floor, x, floor - 0.15 * s, x + 0.2 * s, floor], fill=dark, width=w)
        draw.polygon(
            [
                (x - 0.3 * s, floor - s),
                (x + 0.3 * s, floor - s),
                (x + 0.33 * s, floor - 0.6 * s),
                (x - 0.33 * s, floor - 0.6 * s),
            ],
            fill=dark,
        )
        draw.rectangle(
            [x - 0.25 * s, floor - 0.97 * s, x + 0.25 * s, floor - 0.64 * s], fill=(235, 235, 225)
        )  # sheet music
        for k in range(5):
            y = floor - (0.92 - 0.06 * k) * s
            draw.line([x - 0.22 * s, y, x + 0.22 * s, y], fill=(60, 60, 60), width=1)
    elif kind == "lamp":
        draw.ellipse([x - 0.15 * s, floor - 0.04 * s, x + 0.15 * s, floor], fill=dark)
        draw.line([x, floor - 0.8 * s, x, floor], fill=dark, width=w)
        draw.polygon(
            [
                (x - 0.1 * s, floor - s),
                (x + 0.1 * s, floor - s),
                (x + 0.2 * s, floor - 0.78 * s),
                (x - 0.2 * s, floor - 0.78 * s),
            ],
            fill=_rgb(rng.uniform(0.08, 0.16), rng.uniform(0.2, 0.6), 0.95),
        )
    elif kind == "plant":
        draw.polygon(
            [
                (x - 0.15 * s, floor - 0.3 * s),
                (x + 0.15 * s, floor - 0.3 * s),
                (x + 0.11 * s, floor),
                (x - 0.11 * s, floor),
            ],
            fill=main,
        )
        green = _rgb(rng.uniform(0.22, 0.4), rng.uniform(0.4, 0.8), rng.uniform(0.3, 0.7))
        for _ in range(rng.integers(4, 9)):
            lx, ly = x + rng.uniform(-0.3, 0.3) * s, floor - rng.uniform(0.4, 0.9) * s
            draw.ellipse([lx - 0.1 * s, ly - 0.12 * s, lx + 0.1 * s, ly + 0.12 * s], fill=green)
    elif kind == "picture":
        top = floor - rng.uniform(1.6, 2.4) * s
        draw.rectangle([x, top, x + 0.8 * s, top + 0.6 * s], fill=dark)
        draw.rectangle([x + 0.06 * s, top + 0.06 * s, x + 0.74 * s, top + 0.54 * s], fill=main)
        for _ in range(3):
            px, py = x + rng.uniform(0.15, 0.65) * s, top + rng.uniform(0.15, 0.45) * s
            r = rng.uniform(0.04, 0.12) * s
            draw.ellipse([px - r, py - r, px + r, py + r], fill=random_colour(rng))
    elif kind == "window":
        top = floor - rng.uniform(1.5, 2.2) * s
        draw.rectangle([x, top, x + 0.7 * s, top + 0.9 * s], fill=(240, 240, 235))
        draw.rectangle(
            [x + 0.05 * s, top + 0.05 * s, x + 0.65 * s, top + 0.85 * s],
            fill=_rgb(rng.uniform(0.52, 0.62), rng.uniform(0.1, 0.5), 0.95),
        )
        draw.line([x + 0.35 * s, top, x + 0.35 * s, top + 0.9 * s], fill=(240, 240, 235), width=w)
        draw.line([x, top + 0.45 * s, x + 0.7 * s, top + 0.45 * s], fill=(240, 240, 235), width=w)
    elif kind == "speaker":
        draw.rectangle([x, floor - 0.6 * s, x + 0.4 * s, floor], fill=(30, 30, 32))
        for cy, r in ((0.45, 0.12), (0.18, 0.07)):
            draw.ellipse(
                [
                    x + 0.2 * s - r * s,
                    floor - cy * s - r * s,
                    x + 0.2 * s + r * s,
                    floor - cy * s + r * s,
                ],
                fill=(80, 80, 85),
            )
    else:  # shelf with books
        draw.rectangle([x, floor - s, x + 0.7 * s, floor], fill=dark)
        for shelf in (0.05, 0.37, 0.69):
            bx = x + 0.04 * s
            while bx < x + 0.62 * s:
                bw = rng.uniform(0.03, 0.07) * s
                draw.rectangle(
                    [bx, floor - (shelf + rng.uniform(0.18, 0.26)) * s, bx + bw, floor - shelf * s],
                    fill=random_colour(rng),
                )
                bx += bw + 1


def add_clutter(wall: Image.Image, rng: np.random.Generator) -> list[tuple[str, list[int]]]:
    """Paint 2-6 items of furniture and decoration onto `wall` (RGBA, in place); return each
    item's kind and box [x1, y1, x2, y2]. The same distribution for every class."""
    width, height = wall.size
    items = []
    for _ in range(rng.integers(2, 7)):
        kind = CLUTTER_KINDS[rng.integers(len(CLUTTER_KINDS))]
        layer = Image.new("RGBA", wall.size, (0, 0, 0, 0))
        size = rng.uniform(0.25, 0.6) * height
        _paint_clutter(
            ImageDraw.Draw(layer),
            kind,
            rng.uniform(-0.1, 0.95) * width,
            rng.uniform(0.7, 1.05) * height,
            size,
            rng,
        )
        box = layer.getchannel("A").getbbox()
        if box is None:  # painted entirely outside the frame
            continue
        wall.alpha_composite(layer)
        items.append((kind, list(box)))
    return items


class Player:
    """A simple drawn person behind an instrument: torso, neck and head, painted once into the
    background, and two arms reaching the instrument, drawn over it every frame."""

    def __init__(self, rng: np.random.Generator, frame_height: int):
        self.skin = _rgb(rng.uniform(0.02, 0.11), rng.uniform(0.25, 0.6), rng.uniform(0.3, 0.95))
        self.clothes = random_colour(rng)
        self.hair = _rgb(rng.uniform(0.02, 0.12), rng.uniform(0.2, 0.7), rng.uniform(0.05, 0.8))
        self.head_r = rng.uniform(0.06, 0.09) * frame_height
        self.offset = rng.uniform(-0.25, 0.25)  # of the instrument's width
        self.shoulder_at = rng.uniform(0.0, 0.35)  # of the instrument's height, from its top
        # Where the hands hold the instrument, as fractions of its box (x, y), per hand.
        self.grips = rng.uniform(0.2, 0.8, (2, 2))
        self.elbow_out = rng.uniform(0.2, 0.6)
        self.body_box = None
        self.shoulders = ((0.0, 0.0), (0.0, 0.0))

    def paint_body(self, wall: Image.Image, instrument_box) -> None:
        """Torso, neck and head behind the instrument whose box at rest is `instrument_box`."""
        height = wall.size[1]
        x1, y1, x2, y2 = instrument_box
        r = self.head_r
        cx = (x1 + x2) / 2 + self.offset * (x2 - x1)
        sy = float(np.clip(y1 + self.shoulder_at * (y2 - y1), 2.6 * r, 0.8 * height))
        half = 1.9 * r
        layer = Image.new("RGBA", wall.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        draw.polygon(
            [
                (cx - half, sy),
                (cx + half, sy),
                (cx + 1.2 * half, height + 1),
                (cx - 1.2 * half, height + 1),
            ],
            fill=self.clothes,
        )
        draw.rectangle([cx - 0.35 * r, sy - 0.6 * r, cx + 0.35 * r, sy], fill=self.skin)
        hy = sy - 0.5 * r - r
        draw.ellipse([cx - 0.85 * r, hy - r, cx + 0.85 * r, hy + r], fill=self.skin)
        draw.chord(
            [cx - 0.9 * r, hy - 1.1 * r, cx + 0.9 * r, hy + 0.5 * r], 180, 360, fill=self.hair
        )
        self.body_box = list(layer.getchannel("A").getbbox())
        wall.alpha_composite(layer)
        self.shoulders = ((cx - 0.85 * half, sy + 0.3 * r), (cx + 0.85 * half, sy + 0.3 * r))

    def paint_arms(self, frame: Image.Image, instrument_box) -> list[int]:
        """Both arms from the shoulders to grips on the instrument's current box, drawn over
        it; return the player's whole box in this frame, clipped to the frame."""
        x1, y1, x2, y2 = instrument_box
        draw = ImageDraw.Draw(frame)
        arm_w = max(2, round(0.55 * self.head_r))
        hand_r = 0.35 * self.head_r
        xs, ys = list(self.body_box[0::2]), list(self.body_box[1::2])
        for (sx, sy), (gx, gy), side in zip(self.shoulders, self.grips, (-1, 1)):
            hx, hy = x1 + gx * (x2 - x1), y1 + gy * (y2 - y1)
            elbow = (
                (sx + hx) / 2 + side * self.elbow_out * self.head_r * 1.5,
                max(sy, hy) + 0.3 * self.head_r,
            )
            points = [(sx, sy), elbow, (hx, hy)]
            draw.line(points, fill=self.clothes, width=arm_w, joint="curve")
            draw.ellipse([hx - hand_r, hy - hand_r, hx + hand_r, hy + hand_r], fill=self.skin)
            pad = max(arm_w / 2, hand_r) + 1
            xs += [p[0] - pad for p in points] + [p[0] + pad for p in points]
            ys += [p[1] - pad for p in points] + [p[1] + pad for p in points]
        width, height = frame.size
        return [
            max(0, math.floor(min(xs))),
            max(0, math.floor(min(ys))),
            min(width, math.ceil(max(xs))),
            min(height, math.ceil(max(ys))),
        ]
