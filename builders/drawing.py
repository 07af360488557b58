"""Drawing of BLINK-style annotations: the REF marker, red circles lettered A-D, lettered boxes.

Everything is drawn on a copy at the image's original resolution, and every size (ring radius,
line width, font) scales with the image so markers are equally legible on a 256 px painting and a
1500 px photo. Labels get a white outline so they read on any background, and are kept inside the
image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

RED = (255, 0, 0)
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class MarkerStyle:
    """Sizes in pixels for an image; `for_image` scales them with the longer side."""

    radius: int
    width: int
    font_size: int
    stroke: int

    @classmethod
    def for_image(cls, size: tuple[int, int]) -> MarkerStyle:
        # Reference design: a 500 px image gets a 9 px ring, 3 px lines, 20 px letters.
        s = max(size) / 500.0
        return cls(
            radius=max(4, round(9 * s)),
            width=max(2, round(3 * s)),
            font_size=max(10, round(20 * s)),
            stroke=max(1, round(2 * s)),
        )


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _label(draw: ImageDraw.ImageDraw, anchor_xy: tuple[float, float], text: str,
           style: MarkerStyle, img_size: tuple[int, int], color=RED) -> None:
    font = _font(style.font_size)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font, stroke_width=style.stroke)
    w, h = x1 - x0, y1 - y0
    x = min(max(anchor_xy[0], 0), img_size[0] - w) - x0
    y = min(max(anchor_xy[1], 0), img_size[1] - h) - y0
    draw.text((x, y), text, fill=color, font=font, stroke_width=style.stroke, stroke_fill=WHITE)


def _ring(draw: ImageDraw.ImageDraw, xy: Sequence[float], style: MarkerStyle, color=RED) -> None:
    x, y = float(xy[0]), float(xy[1])
    r = style.radius
    # A white halo under the red ring keeps it visible on red or dark surfaces.
    draw.ellipse((x - r, y - r, x + r, y + r), outline=WHITE, width=style.width + 2)
    draw.ellipse((x - r, y - r, x + r, y + r), outline=color, width=style.width)


def draw_points(img: Image.Image, points: Mapping[str, Sequence[float]]) -> Image.Image:
    """Red circles at `points` (label -> (x, y)), each with its label beside it ("REF", "A"...)."""
    out = img.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    style = MarkerStyle.for_image(out.size)
    for label, xy in points.items():
        _ring(draw, xy, style)
        _label(draw, (xy[0] + style.radius + style.width, xy[1] - style.radius - style.font_size),
               label, style, out.size)
    return out


def draw_ref(img: Image.Image, xy: Sequence[float]) -> Image.Image:
    """The reference point of correspondence tasks: a red circle labelled REF."""
    return draw_points(img, {"REF": xy})


def draw_boxes(img: Image.Image, boxes: Mapping[str, Sequence[float]]) -> Image.Image:
    """Rectangles (label -> x1, y1, x2, y2) with the label at the top-left corner."""
    out = img.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    style = MarkerStyle.for_image(out.size)
    for label, (x1, y1, x2, y2) in boxes.items():
        draw.rectangle((x1, y1, x2, y2), outline=RED, width=style.width)
        _label(draw, (x1 + style.width, y1 + style.width), label, style, out.size)
    return out
