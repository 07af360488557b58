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


@lru_cache(maxsize=256)
def _text_extent(text: str, font_size: int, stroke: int) -> tuple[int, int, int, int]:
    """(width, height, x offset, y offset) of rendered `text`; cached, labels repeat constantly."""
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=_font(font_size), stroke_width=stroke)
    return x1 - x0, y1 - y0, x0, y0


def _text_box(text: str, style: MarkerStyle, anchor_xy: tuple[float, float],
              img_size: tuple[int, int]) -> tuple[float, ...]:
    """Where `text` lands when its top-left is put at `anchor_xy`, kept inside the image."""
    w, h, ox, oy = _text_extent(text, style.font_size, style.stroke)
    x = min(max(anchor_xy[0], 0), img_size[0] - w)
    y = min(max(anchor_xy[1], 0), img_size[1] - h)
    return (x, y, x + w, y + h, ox, oy)


def _label(draw: ImageDraw.ImageDraw, box: tuple[float, ...], text: str, style: MarkerStyle,
           color=RED) -> None:
    x, y, _, _, ox, oy = box
    draw.text((x - ox, y - oy), text, fill=color, font=_font(style.font_size),
              stroke_width=style.stroke, stroke_fill=WHITE)


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _ring(draw: ImageDraw.ImageDraw, xy: Sequence[float], style: MarkerStyle, color=RED) -> None:
    x, y = float(xy[0]), float(xy[1])
    r = style.radius
    # A white halo under the red ring keeps it visible on red or dark surfaces.
    draw.ellipse((x - r, y - r, x + r, y + r), outline=WHITE, width=style.width + 2)
    draw.ellipse((x - r, y - r, x + r, y + r), outline=color, width=style.width)


def label_boxes(size: tuple[int, int], points: Mapping[str, Sequence[float]],
                style: MarkerStyle) -> dict[str, tuple[float, ...]]:
    """Where each point's label goes: the first of the four diagonal spots around its ring that
    covers no other ring or earlier label (the least-covering spot when none is free), so close
    candidates stay readable. Boxes are (x1, y1, x2, y2, text offset x, text offset y)."""
    pad = style.radius + style.width
    rings = {k: (xy[0] - pad, xy[1] - pad, xy[0] + pad, xy[1] + pad) for k, xy in points.items()}
    placed: dict[str, tuple[float, ...]] = {}
    for label, xy in points.items():
        w, h, _, _ = _text_extent(label, style.font_size, style.stroke)
        spots = [(xy[0] + pad, xy[1] - pad - h), (xy[0] + pad, xy[1] + pad),
                 (xy[0] - pad - w, xy[1] - pad - h), (xy[0] - pad - w, xy[1] + pad)]
        obstacles = [r for k, r in rings.items() if k != label] + list(placed.values())
        boxes = [_text_box(label, style, spot, size) for spot in spots]
        costs = [sum(_overlap(b, o) for o in obstacles) + _overlap(b, rings[label]) for b in boxes]
        placed[label] = boxes[costs.index(min(costs))]
    return placed


def draw_points(img: Image.Image, points: Mapping[str, Sequence[float]]) -> Image.Image:
    """Red circles at `points` (label -> (x, y)), each labelled beside it ("REF", "A"...)."""
    out = img.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    style = MarkerStyle.for_image(out.size)
    boxes = label_boxes(out.size, points, style)
    for label, xy in points.items():
        _ring(draw, xy, style)
        _label(draw, boxes[label], label, style)
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
        _label(draw, _text_box(label, style, (x1 + style.width, y1 + style.width), out.size), label, style)
    return out
