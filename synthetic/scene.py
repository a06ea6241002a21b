"""Picture of one video: a lit room, clutter, the played instrument, its player, a silent one."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .drawing import LOOKS, draw_instrument, drop_faint_alpha, drop_faint_edges
from .props import Player, add_clutter, draw_lighting, light, make_background

ANGLE_STEP = 0.5  # degrees; sway angles are quantised so rotated sprites can be cached


class SceneObject:
    """One instrument in a video: its look, where it sits, and how it sways and bobs."""

    TRIAL_HEIGHT = 100.0  # px; sprites are sized by drawing once at this height and scaling

    def __init__(
        self,
        class_name: str,
        sounding: bool,
        rng: np.random.Generator,
        frame_scale: float,
        tint=(1.0, 1.0, 1.0),
    ):
        look = LOOKS[class_name]
        self.class_name, self.sounding = class_name, sounding
        self.tilt = rng.uniform(*look.tilt) * rng.choice([-1, 1])
        # Per-video appearance: another maker's instrument, in the video's light.
        self.colour = dict(
            hue_shift=rng.uniform(-0.06, 0.06),
            value_scale=rng.uniform(0.75, 1.15),
            saturation_scale=rng.uniform(0.7, 1.2),
            tint=tint,
        )
        self.fill = rng.uniform(*look.fill) * rng.uniform(0.75, 1.0)
        # Players move their instrument; a silent one is held nearly still.
        self.sway_deg = rng.uniform(2.5, 6.0) if sounding else rng.uniform(0.0, 1.0)
        self.bob_px = (rng.uniform(1.5, 4.0) if sounding else rng.uniform(0.0, 1.0)) * frame_scale
        self.sway_hz, self.bob_hz = rng.uniform(0.25, 0.7), rng.uniform(0.4, 1.2)
        self.phases = rng.uniform(0, 2 * np.pi, 2)
        # Sizing needs only the sprite's alpha: the alpha band of a rotated RGBA sprite is the
        # rotated alpha band (bit for bit), at a quarter of the work.
        trial = self._draw(self.TRIAL_HEIGHT).getchannel("A")
        # Swaying changes the box; its shortest side is reached at one of the extreme angles.
        self.trial_short_side = min(
            min(np.ptp(np.reshape(self._rotated_alpha_box(trial, angle), (2, 2)), axis=0))
            for angle in (-self.sway_deg, 0.0, self.sway_deg)
        )
        self.trial_extent = self._swayed_extent(trial)
        self.sprite, self.cx, self.cy = None, 0.0, 0.0
        self._rotated = {}

    def _draw(self, height_px: float) -> Image.Image:
        return draw_instrument(self.class_name, height_px, self.tilt, **self.colour)

    def _swayed_extent(self, alpha: Image.Image):
        """Width and height the sprite of alpha band `alpha` can cover while swaying and bobbing."""
        sizes = [alpha.rotate(sign * self.sway_deg, expand=True).size for sign in (-1, 1)]
        return (
            max(s[0] for s in sizes) + 2 * self.bob_px,
            max(s[1] for s in sizes) + 2 * self.bob_px,
        )

    def max_height(self, region) -> float:
        """Largest sprite height (px) whose whole motion fits in `region` (x0, y0, x1, y1)."""
        x0, y0, x1, y1 = region
        width, height = self.trial_extent
        return 0.97 * self.TRIAL_HEIGHT * min((x1 - x0) / width, (y1 - y0) / height)

    def short_side(self, height_px: float) -> float:
        return self.trial_short_side * height_px / self.TRIAL_HEIGHT

    def place(self, region, min_short_side: float, rng: np.random.Generator) -> None:
        """Draw the final sprite, filling `self.fill` of the region but keeping the box's short
        side at least `min_short_side` where the region allows, at a random spot in the region."""
        largest = self.max_height(region)
        height_px = self.fill * largest
        if self.short_side(height_px) < min_short_side:
            # 5% over the minimum absorbs rounding when the sprite is drawn at its final size.
            height_px = min(
                largest, 1.05 * min_short_side * self.TRIAL_HEIGHT / self.trial_short_side
            )
        self.sprite = self._draw(height_px)
        width, height = self._swayed_extent(self.sprite.getchannel("A"))
        x0, y0, x1, y1 = region
        self.cx = rng.uniform(x0 + width / 2, max(x0 + width / 2, x1 - width / 2))
        self.cy = rng.uniform(y0 + height / 2, max(y0 + height / 2, y1 - height / 2))

    def rest_box(self) -> list[float]:
        """The box of the unrotated sprite at its centre, for placing the player."""
        w, h = self.sprite.size
        return [self.cx - w / 2, self.cy - h / 2, self.cx + w / 2, self.cy + h / 2]

    @staticmethod
    def _rotated_alpha_box(alpha: Image.Image, angle: float):
        """The box _rotate_sprite gives a sprite of alpha band `alpha`."""
        rotated = alpha.rotate(angle, Image.Resampling.BILINEAR, expand=True)
        return drop_faint_alpha(rotated).getbbox()

    @staticmethod
    def _rotate_sprite(sprite: Image.Image, angle: float):
        rotated = drop_faint_edges(sprite.rotate(angle, Image.Resampling.BILINEAR, expand=True))
        return rotated, rotated.getchannel("A").getbbox()

    def _rotate(self, angle: float):
        key = round(angle / ANGLE_STEP)
        if key not in self._rotated:
            self._rotated[key] = self._rotate_sprite(self.sprite, key * ANGLE_STEP)
        return self._rotated[key]

    def paste(self, frame: Image.Image, t: float) -> list[int]:
        """Draw the object at time t (s) onto `frame`; return its tight box [x1, y1, x2, y2]."""
        angle = self.sway_deg * math.sin(2 * math.pi * self.sway_hz * t + self.phases[0])
        bob = self.bob_px * math.sin(2 * math.pi * self.bob_hz * t + self.phases[1])
        rotated, (bx1, by1, bx2, by2) = self._rotate(angle)
        left = round(self.cx - rotated.width / 2)
        top = round(self.cy + bob - rotated.height / 2)
        frame.paste(rotated, (left, top), rotated)
        return [left + bx1, top + by1, left + bx2, top + by2]


def _two_object_layouts(width: int, height: int, margin: int):
    """Candidate pairs of disjoint regions: side by side or stacked, at a few split points."""
    for split in (0.35, 0.42, 0.5, 0.58, 0.65):
        x, y = round(split * width), round(split * height)
        yield (
            (margin, margin, x - margin, height - margin),
            (x + margin, margin, width - margin, height - margin),
        )
        yield (
            (margin, margin, width - margin, y - margin),
            (margin, y + margin, width - margin, height - margin),
        )


class Scene:
    """The picture of one video. Everything static (wall, clutter, the player's body, the light)
    is painted once into `background`; each frame pastes the instruments and the player's arms."""

    MIN_SHORT_SIDE = 0.21  # of the frame height: 40 px at 192, so crops stay meaningful

    def __init__(
        self,
        class_name: str,
        silent_class: str | None,
        width: int,
        height: int,
        rng: np.random.Generator,
    ):
        lighting = draw_lighting(rng)
        classes = [class_name] + ([silent_class] if silent_class else [])
        self.objects = [
            SceneObject(c, i == 0, rng, height / 192, lighting["tint"])
            for i, c in enumerate(classes)
        ]
        margin = round(0.02 * min(width, height))
        if len(self.objects) == 1:
            regions = [(margin, margin, width - margin, height - margin)]
        else:
            # Two disjoint regions (so the instruments never overlap), chosen at random among the
            # layouts that keep both nearly as large as the best layout does.
            layouts = [
                pair[::order]
                for pair in _two_object_layouts(width, height, margin)
                for order in (1, -1)
            ]
            scores = [
                min(
                    obj.short_side(obj.max_height(region))
                    for obj, region in zip(self.objects, pair)
                )
                for pair in layouts
            ]
            good = [pair for pair, score in zip(layouts, scores) if score >= 0.85 * max(scores)]
            regions = good[rng.integers(len(good))]
        for obj, region in zip(self.objects, regions):
            obj.place(region, self.MIN_SHORT_SIDE * height, rng)

        wall = Image.fromarray(make_background(width, height, rng).astype(np.uint8)).convert("RGBA")
        self.clutter = add_clutter(wall, rng)
        self.player = Player(rng, height)
        self.player.paint_body(wall, self.objects[0].rest_box())
        self.background = Image.fromarray(
            light(np.asarray(wall.convert("RGB"), dtype=float), lighting, rng)
        )

    def render(self, t: float) -> tuple[Image.Image, list[list[int]], list[int]]:
        """The frame at time t (s), the box of each instrument and the box of the player."""
        frame = self.background.copy()
        boxes = [obj.paste(frame, t) for obj in self.objects]
        return frame, boxes, self.player.paint_arms(frame, boxes[0])
