"""Draw the bot's default avatar, ``config/data/avatar.png``: a small town (houses, a church
tower, a town hall with a flag) on a hill under a blue sky, made to read well when a client
crops it to a circle and shrinks it to 32 pixels.

    .venv/bin/python tools/draw_avatar.py            # writes config/data/avatar.png

Needs Pillow (it comes with the demo and test extras, through Synapse). The image is drawn at
four times its size and scaled down, which smooths the edges. Run it again after changing the
drawing and commit the PNG: the bot ships the image, not this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 512
SCALE = 4
TARGET = Path(__file__).resolve().parent.parent / "config" / "data" / "avatar.png"

SKY_TOP, SKY_BOTTOM = (23, 78, 140), (86, 156, 214)
HILL_BACK, HILL_FRONT = (92, 158, 96), (54, 122, 70)
WALL, ROOF, WINDOW, DOOR = (250, 248, 240), (196, 72, 52), (255, 206, 84), (120, 72, 48)
TOWER_ROOF, FLAG = (70, 84, 104), (255, 206, 84)


def draw(size: int = SIZE) -> Image.Image:
    s = size * SCALE

    def p(x: float, y: float) -> tuple[int, int]:
        """A point given in a 0..100 square."""
        return round(x / 100 * s), round(y / 100 * s)

    image = Image.new("RGB", (s, s))
    pen = ImageDraw.Draw(image)
    for y in range(s):  # sky, darker at the top
        t = y / s
        pen.line(
            [(0, y), (s, y)],
            fill=tuple(round(a + (b - a) * t) for a, b in zip(SKY_TOP, SKY_BOTTOM, strict=True)),
        )
    pen.ellipse([p(-30, 58), p(80, 130)], fill=HILL_BACK)
    pen.ellipse([p(30, 62), p(140, 135)], fill=HILL_BACK)

    def house(x: float, base: float, width: float, height: float, windows: int) -> None:
        pen.rectangle([p(x, base - height), p(x + width, base)], fill=WALL)
        pen.polygon(
            [
                p(x - 2, base - height),
                p(x + width / 2, base - height - width * 0.6),
                p(x + width + 2, base - height),
            ],
            fill=ROOF,
        )
        step = width / (windows + 1)
        for i in range(windows):
            cx = x + step * (i + 1)
            pen.rectangle([p(cx - 1.6, base - height * 0.75), p(cx + 1.6, base - height * 0.5)], fill=WINDOW)
        pen.rectangle([p(x + width / 2 - 2, base - height * 0.3), p(x + width / 2 + 2, base)], fill=DOOR)

    # church tower on the left, town hall with a flag in the middle, houses around
    pen.rectangle([p(20, 38), p(31, 72)], fill=WALL)
    pen.polygon([p(18.5, 38), p(25.5, 14), p(32.5, 38)], fill=TOWER_ROOF)
    pen.ellipse([p(22.5, 44), p(28.5, 50)], fill=WINDOW)  # the clock
    pen.rectangle([p(23.5, 60), p(27.5, 72)], fill=DOOR)
    house(8, 74, 12, 16, 1)
    house(34, 72, 30, 22, 3)  # the town hall
    pen.line([p(49, 37), p(49, 24)], fill=WALL, width=round(s * 0.008))
    pen.polygon([p(49, 24), p(58, 27), p(49, 30)], fill=FLAG)
    house(67, 73, 14, 18, 1)
    house(82, 75, 12, 14, 1)
    pen.ellipse([p(-40, 70), p(140, 150)], fill=HILL_FRONT)  # the hill the town stands on
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main(target: Path = TARGET) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    draw().save(target, format="PNG", optimize=True)
    print(f"wrote {target} ({target.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
