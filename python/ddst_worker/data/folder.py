"""Every image file under a directory: .png, .jpg, .jpeg, .bmp, .webp (any case), found recursively,
ordered by relative path (so the order, and with it every sampled batch, is the same on every machine).
Hidden files and folders (a leading '.': macOS's ._ files, .thumbnails) are not images of the data set.
16-bit grayscale images are scaled to 8 bits (Pillow's own conversion would clip them at 255); float images,
whose range is unknown, are refused.

Each file is decoded with Pillow, turned upright by its EXIF orientation, converted to "L" (channels 1) or
"RGB" (channels 3; an alpha channel is dropped), then fitted to size [H, W]: center-cropped to the target
aspect ratio (the largest centered box of ratio W:H, offsets rounded down), then the crop alone is
resized with Pillow's BILINEAR filter, which is antialiased when shrinking. (torchvision's usual
Resize(shorter side) + CenterCrop gives nearly the same picture; cropping first keeps pixels outside the
crop from leaking in through the filter.) All images are decoded once at build time and kept as uint8
[N, C, H, W]. No labels.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import WorkerError
from .images import Images, ImageSource, bad, need_dir

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


def list_images(root: Path) -> list[Path]:
    found = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        found += [Path(d) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in EXTENSIONS]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def center_box(w: int, h: int, out_h: int, out_w: int) -> tuple[int, int, int, int]:
    """The largest centered box of aspect out_w:out_h inside a w x h image, as (left, top, right, bottom)."""
    if w * out_h > h * out_w:  # too wide: keep the height
        cw, ch = max(1, round(h * out_w / out_h)), h
    else:
        cw, ch = w, max(1, round(w * out_h / out_w))
    left, top = (w - cw) // 2, (h - ch) // 2
    return left, top, left + cw, top + ch


SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}


def load_image(path: Path, size: tuple[int, int], mode: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in SIXTEEN_BIT or im.mode == "I":  # a 16-bit PNG: I;16, or I in older Pillow
                a = np.asarray(im, dtype=np.float64)
                if a.size and (a.min() < 0 or a.max() > 65535):
                    raise bad(path, "an image of 8 or 16 bits per channel", f"values from {a.min():g} to {a.max():g}")
                im = Image.fromarray((a / 257).round().astype(np.uint8))
            elif im.mode == "F":
                raise bad(path, "an image of 8 or 16 bits per channel",
                          "a floating-point image, whose range is not known: convert it to 8 bits")
            if im.mode == "P" and "transparency" in im.info:
                im = im.convert("RGBA")  # palette transparency: convert via RGBA, as Pillow asks
            im = im.convert(mode)
            im = im.crop(center_box(im.width, im.height, *size))
            if im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
    except WorkerError:
        raise
    except Exception as e:  # unreadable, truncated, not an image, decompression bomb, ...
        raise bad(path, "an image Pillow can decode", f"an unreadable file ({type(e).__name__}: {e})")
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def build(cfg: dict, seed: int, device: str) -> ImageSource:
    root = need_dir(Path(cfg["path"]), "a directory of image files")
    size = cfg["size"]
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(s, int) and s >= 1 for s in size)):
        raise WorkerError("bad_value", "folder: size must be [height, width], positive integers", {"size": size})
    channels = cfg["channels"]
    if channels not in (1, 3):
        raise WorkerError("bad_value", "folder: channels must be 1 or 3", {"channels": channels})
    files = list_images(root)
    if not files:
        raise bad(root, f"image files ({', '.join(sorted(EXTENSIONS))}) under it", "none")
    channels = int(channels)
    mode, hw = ("L" if channels == 1 else "RGB"), (int(size[0]), int(size[1]))
    out = np.empty((len(files), channels, *hw), np.uint8)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # Pillow decodes without the GIL
        for i, a in enumerate(pool.map(lambda f: load_image(f, hw, mode), files)):
            out[i] = a
    source = ImageSource("folder", None, Images([out], None), None, seed, device, hflip=bool(cfg["hflip"]))
    source.files = [str(f) for f in files]
    return source
