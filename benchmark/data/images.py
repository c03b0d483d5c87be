"""Reading image files into uint8 RGB arrays, and resizing face crops.

Every real-data loader goes through :func:`read_image`, so every file that cannot be used fails
in one place with a :class:`~benchmark.errors.DataError` whose message names the file and the reason.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from benchmark.errors import DataError

SUPPORTED_SUFFIXES = (".pgm", ".png", ".jpg", ".jpeg", ".gif")
_ALLOWED = ", ".join(SUPPORTED_SUFFIXES)


class ImageReadError(DataError):
    """One file cannot be used as an image. ``path`` and ``reason`` are kept apart for manifests."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def is_supported(path: str | os.PathLike) -> bool:
    """True when the file name ends in one of :data:`SUPPORTED_SUFFIXES` (case-insensitive)."""
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read one image file as RGB.

    Accepts PGM, PNG, JPEG and GIF (the suffix decides; see :data:`SUPPORTED_SUFFIXES`).
    Grayscale images are replicated to 3 channels; 16-bit images are scaled to 8 bits
    (value / 257, unless every value already fits in 8 bits); transparency is composited onto
    white; a GIF gives its first frame; the EXIF orientation is applied, so a phone photo stored
    sideways comes back upright.
    The whole file is decoded here (PIL's ``load()``), so a truncated file fails here, not later.

    Returns: uint8 array, shape (H, W, 3), RGB.
    Raises: ImageReadError (a DataError) naming the file and the reason: unsupported file type,
        cannot read, or corrupt/truncated image.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = f"'{path.suffix}'" if path.suffix else "(no suffix)"
        raise ImageReadError(path, f"unsupported file type {shown} (allowed: {_ALLOWED})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageReadError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        # UnidentifiedImageError (not an image at all) is an OSError.
        raise ImageReadError(path, f"corrupt or truncated image: {_stable(exc)}") from exc
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageReadError(path, "corrupt or truncated image: zero width or height")
    return rgb


def _stable(exc: Exception) -> str:
    """PIL's message without object addresses (``<_io.BytesIO object at 0x7f...>``), so a manifest that lists
    the reason is the same on every run."""
    return re.sub(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>", "", str(exc)).strip() or type(exc).__name__


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode to uint8 (H, W, 3) RGB."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(img, dtype=np.float64)
        gray = np.clip(values / 257.0 if values.max() > 255 else values, 0, 255).round().astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def center_square(img: np.ndarray) -> np.ndarray:
    """The largest centred square of ``img`` (H, W, C): the longer side is cut equally on both ends."""
    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return img[top : top + side, left : left + side]


def resize_face(img: np.ndarray, size: int) -> np.ndarray:
    """Resize a face crop to ``size`` x ``size`` pixels.

    A non-square input is first centre-cropped to a square (the longer side loses equal amounts at
    both ends; ORL's 92x112 loses 10 rows at top and bottom), so faces are never stretched.
    Shrinking uses area averaging (no aliasing); enlarging uses bilinear interpolation.

    img:  uint8, shape (H, W, 3).
    size: output side in pixels (>= 1).
    Returns: uint8, shape (size, size, 3).
    """
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"img must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    square = center_square(img)
    if square.shape[0] == size:
        return np.ascontiguousarray(square)
    interpolation = cv2.INTER_AREA if square.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(square), (int(size), int(size)), interpolation=interpolation)
