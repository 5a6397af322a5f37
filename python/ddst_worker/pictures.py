"""The pictures `evaluate` writes: a grid of generated images, or a scatter plot of 2-D samples.

Drawn with numpy and PIL only (no matplotlib), written atomically: to a temporary file in the target's
directory (`path + ".tmp"`), then renamed over it, so a reader never sees half a PNG.

Grid: the first GRID_MAX samples (fewer if there are fewer), GRID_COLUMNS to a row, [-1, 1] -> 0..255
(round((x + 1) * 127.5), clipped), 1 channel as grey, 3 as RGB (any other count is averaged to grey);
images smaller than SMALL pixels a side are scaled up x2 (nearest neighbour); PAD grey pixels between and
around the tiles.

Scatter: SCATTER_SIZE pixels square, white; real points light grey, generated points blue on top, mode
centers as red crosses. One scale for both axes (a ring stays round), covering every finite point of
both sets and the centers with a 5% margin; thin lines mark x = 0 and y = 0 where they fall inside, and
the range is written in the top-left corner.
"""

import contextlib
import math
import os

import numpy as np

GRID_MAX, GRID_COLUMNS, PAD, SMALL = 64, 8, 2, 64
PAD_VALUE = 128
SCATTER_SIZE, MARGIN = 512, 18
REAL_COLOR, FAKE_COLOR, CENTER_COLOR, AXIS_COLOR = (200, 200, 200), (31, 90, 200), (220, 30, 30), (235, 235, 235)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[-1, 1] floats -> uint8 levels (non-finite values become 0)."""
    x = np.nan_to_num(np.asarray(x, np.float32), nan=-1.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images) -> "Image.Image":
    """images [n, C, H, W] floats in [-1, 1] (n >= 1) -> a PIL image of the first GRID_MAX."""
    from PIL import Image

    x = to_uint8(np.asarray(images)[:GRID_MAX])
    n, c, h, w = x.shape
    if c not in (1, 3):
        x = np.rint(x.astype(np.float32).mean(axis=1, keepdims=True)).astype(np.uint8)
        c = 1
    if max(h, w) < SMALL:
        x = x.repeat(2, axis=2).repeat(2, axis=3)
        h, w = 2 * h, 2 * w
    cols = min(GRID_COLUMNS, n)
    rows = -(-n // cols)
    canvas = np.full((rows * (h + PAD) + PAD, cols * (w + PAD) + PAD, c), PAD_VALUE, np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = PAD + r * (h + PAD), PAD + k * (w + PAD)
        canvas[top:top + h, left:left + w] = x[i].transpose(1, 2, 0)
    return Image.fromarray(canvas[:, :, 0] if c == 1 else canvas, "L" if c == 1 else "RGB")


def _finite(points) -> np.ndarray:
    p = np.asarray(points, np.float64).reshape(-1, 2) if points is not None else np.zeros((0, 2))
    return p[np.isfinite(p).all(axis=1)]


def scatter(real, fake, centers=None) -> "Image.Image":
    """real, fake [n, 2] points, centers [m, 2] or None -> a SCATTER_SIZE x SCATTER_SIZE RGB PIL image."""
    from PIL import Image, ImageDraw

    real, fake, centers = _finite(real), _finite(fake), _finite(centers)
    every = np.concatenate([real, fake, centers])
    lo, hi = (every.min(axis=0), every.max(axis=0)) if len(every) else (np.array([-1.0, -1]), np.array([1.0, 1]))
    mid = (lo + hi) / 2
    half = max(float((hi - lo).max()) / 2 * 1.05, 1e-6)
    inner = SCATTER_SIZE - 2 * MARGIN - 1
    scale = inner / (2 * half)

    def pixels(p):
        col = MARGIN + (p[:, 0] - (mid[0] - half)) * scale
        row = MARGIN + ((mid[1] + half) - p[:, 1]) * scale  # y grows upwards
        return np.rint(row).astype(np.int64), np.rint(col).astype(np.int64)

    canvas = np.full((SCATTER_SIZE, SCATTER_SIZE, 3), 255, np.uint8)
    for axis in (0, 1):  # x = 0 and y = 0
        if mid[axis] - half <= 0 <= mid[axis] + half:
            r, c = pixels(np.zeros((1, 2)))
            if axis == 0:
                canvas[:, c[0]] = AXIS_COLOR
            else:
                canvas[r[0], :] = AXIS_COLOR
    for points, color, radius in ((real, REAL_COLOR, 1), (fake, FAKE_COLOR, 1)):
        if len(points):
            r, c = pixels(points)
            for dr in range(-radius, radius + 1):
                for dc in range(-radius, radius + 1):
                    rr, cc = np.clip(r + dr, 0, SCATTER_SIZE - 1), np.clip(c + dc, 0, SCATTER_SIZE - 1)
                    canvas[rr, cc] = color
    image = Image.fromarray(canvas, "RGB")
    draw = ImageDraw.Draw(image)
    if len(centers):
        r, c = pixels(centers)
        for y, x in zip(r.tolist(), c.tolist()):
            draw.line([(x - 4, y - 4), (x + 4, y + 4)], fill=CENTER_COLOR, width=1)
            draw.line([(x - 4, y + 4), (x + 4, y - 4)], fill=CENTER_COLOR, width=1)
    label = (f"x {mid[0] - half:.3g}..{mid[0] + half:.3g}  y {mid[1] - half:.3g}..{mid[1] + half:.3g}  "
             f"grey: data  blue: generated")
    with contextlib.suppress(Exception):  # a Pillow without its default font still gets the plot
        draw.text((MARGIN, 3), label, fill=(90, 90, 90))
    return image


def write_png(image, path: str) -> str:
    """Atomically: a temporary file beside `path`, then a rename; the parent directory is made if missing."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = path + ".tmp"  # same directory: the rename stays on one file system
    try:
        with open(tmp, "wb") as f:
            image.save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def grid_size(n: int, h: int, w: int) -> tuple[int, int]:
    """(width, height) in pixels of image_grid for n samples of h x w: what tests and callers expect."""
    n = min(n, GRID_MAX)
    if max(h, w) < SMALL:
        h, w = 2 * h, 2 * w
    cols = min(GRID_COLUMNS, n)
    rows = math.ceil(n / cols)
    return cols * (w + PAD) + PAD, rows * (h + PAD) + PAD
