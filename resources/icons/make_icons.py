"""Draws Foundry Desk's icons: the app icon and one tray icon per state, every size each platform wants.

Run from anywhere: `python resources/icons/make_icons.py` (needs Pillow). It rewrites the files
beside it, byte for byte the same on every run with the same Pillow:

- `tray-<state>-<size>.png` for 16, 22, 24, 32, 48 and 64 px (Linux panels, macOS menu bar at 1x/2x)
- `tray-<state>.ico` with 16, 20, 24, 32, 40, 48 and 64 px inside (Windows notification area, every DPI)
- `app-256.png`, `app-512.png`, `app.ico` (windows, installers, the autostart entry)
- `app.icns` (the macOS app bundle): 32 to 1024 px, drawn at 1024 so the largest stays sharp

States: starting, downloading, ready, working, error. Each is the app's mark (a speech bubble on a
dark teal tile) with a badge in the corner whose colour and shape say the state, so it reads even
at 16 px and without colour vision.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
STATES = ("starting", "downloading", "ready", "working", "error")
PNG_SIZES = (16, 22, 24, 32, 48, 64)
ICO_SIZES = (16, 20, 24, 32, 40, 48, 64)
APP_ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES = (32, 64, 128, 256, 512, 1024)
"""The sizes Pillow's ICNS writer stores (16 to 512 pt at 1x and 2x); it resizes any it is not given."""
CANVAS = 512  # drawn large, scaled down with a good filter

TILE = (17, 94, 89, 255)
BUBBLE = (255, 255, 255, 255)
BADGES = {
    "starting": (140, 148, 158, 255),
    "downloading": (37, 117, 252, 255),
    "ready": (34, 177, 76, 255),
    "working": (245, 166, 35, 255),
    "error": (218, 41, 28, 255),
}


def draw_mark(draw: ImageDraw.ImageDraw, scale: float = 1.0) -> None:
    """The tile and the speech bubble with three dots."""
    s = CANVAS * scale
    draw.rounded_rectangle((0, 0, s - 1, s - 1), radius=int(s * 0.22), fill=TILE)
    left, top, right, bottom = s * 0.17, s * 0.2, s * 0.83, s * 0.68
    draw.rounded_rectangle((left, top, right, bottom), radius=int(s * 0.12), fill=BUBBLE)
    draw.polygon([(s * 0.3, bottom - 2), (s * 0.26, s * 0.84), (s * 0.46, bottom - 2)], fill=BUBBLE)
    for i in range(3):
        cx, cy, r = s * (0.35 + 0.15 * i), (top + bottom) / 2, s * 0.045
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=TILE)


def draw_badge(draw: ImageDraw.ImageDraw, state: str) -> None:
    """A disc in the lower right corner with a white glyph for the state."""
    s = CANVAS
    cx, cy, r = s * 0.74, s * 0.74, s * 0.26
    draw.ellipse(
        (cx - r - s * 0.03, cy - r - s * 0.03, cx + r + s * 0.03, cy + r + s * 0.03), fill=(0, 0, 0, 0)
    )
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=BADGES[state])
    w = int(s * 0.05)
    white = (255, 255, 255, 255)
    if state == "starting":  # an open ring: on its way
        q = r * 0.55
        draw.arc((cx - q, cy - q, cx + q, cy + q), start=300, end=210, fill=white, width=w)
    elif state == "downloading":  # an arrow down
        draw.line((cx, cy - r * 0.55, cx, cy + r * 0.35), fill=white, width=w)
        draw.polygon(
            [(cx - r * 0.45, cy + r * 0.05), (cx + r * 0.45, cy + r * 0.05), (cx, cy + r * 0.6)], fill=white
        )
    elif state == "ready":  # a check mark
        draw.line(
            [(cx - r * 0.5, cy), (cx - r * 0.12, cy + r * 0.4), (cx + r * 0.52, cy - r * 0.4)],
            fill=white,
            width=w,
            joint="curve",
        )
    elif state == "working":  # three dots
        for i in (-1, 0, 1):
            d = r * 0.16
            x = cx + i * r * 0.45
            draw.ellipse((x - d, cy - d, x + d, cy + d), fill=white)
    elif state == "error":  # an exclamation mark
        draw.line((cx, cy - r * 0.55, cx, cy + r * 0.12), fill=white, width=w)
        d = w * 0.6
        draw.ellipse((cx - d, cy + r * 0.42 - d, cx + d, cy + r * 0.42 + d), fill=white)


def tray_image(state: str) -> Image.Image:
    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw_mark(draw, 0.86)
    # clear a ring around the badge so it stands out on the tile
    mask = Image.new("L", (CANVAS, CANVAS), 0)
    ImageDraw.Draw(mask).ellipse((CANVAS * 0.45, CANVAS * 0.45, CANVAS * 1.03, CANVAS * 1.03), fill=255)
    image.paste((0, 0, 0, 0), mask=mask)
    draw_badge(ImageDraw.Draw(image), state)
    return image


def app_image(size: int = CANVAS) -> Image.Image:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw_mark(ImageDraw.Draw(image), size / CANVAS)
    return image


def scaled(image: Image.Image, size: int) -> Image.Image:
    return image.resize((size, size), Image.Resampling.LANCZOS)


def save_png(image: Image.Image, path: Path) -> None:
    image.save(path, format="PNG", optimize=True)


def main() -> None:
    for state in STATES:
        big = tray_image(state)
        for size in PNG_SIZES:
            save_png(scaled(big, size), HERE / f"tray-{state}-{size}.png")
        big.save(HERE / f"tray-{state}.ico", format="ICO", sizes=[(n, n) for n in ICO_SIZES])
    app = app_image()
    for size in (256, 512):
        save_png(scaled(app, size), HERE / f"app-{size}.png")
    app.save(HERE / "app.ico", format="ICO", sizes=[(n, n) for n in APP_ICO_SIZES])
    large = app_image(max(ICNS_SIZES))
    icns = [scaled(large, size) for size in ICNS_SIZES[:-1]]
    large.save(HERE / "app.icns", format="ICNS", append_images=icns)


if __name__ == "__main__":
    main()
