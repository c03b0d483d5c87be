"""Rasterizer for the synthetic faces: soft-edged ellipses, Lambertian shading, camera effects.

Pure numpy (plus OpenCV for blur and JPEG). Coordinates are normalized: x in [-1, 1] left to right,
y in [-1, 1] top to bottom, over a square canvas of ``res`` pixels. A face is drawn at 2x the output
size and box-filtered down, which anti-aliases every edge. Everything is deterministic: the same inputs
give byte-identical outputs.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def grid(res: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (X, Y), each float32 (res, res), spanning [-1, 1]."""
    ticks = ((np.arange(res, dtype=np.float32) + 0.5) / res) * 2.0 - 1.0
    return np.meshgrid(ticks, ticks)


def ellipse(
    X: np.ndarray, Y: np.ndarray, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, soft: float = 0.02
) -> np.ndarray:
    """Coverage in [0, 1] of an ellipse centred (cx, cy) with radii (rx, ry) rotated by ``angle`` radians.

    ``soft`` is the width of the anti-aliased edge in normalized units (about one canvas pixel).
    """
    if rx <= 0 or ry <= 0:
        return np.zeros_like(X)
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = X - cx, Y - cy
    u = (c * dx + s * dy) / rx
    v = (-s * dx + c * dy) / ry
    dist = (np.sqrt(u * u + v * v) - 1.0) * min(rx, ry)
    return np.clip(0.5 - dist / soft, 0.0, 1.0)


def paint(canvas: np.ndarray, mask: np.ndarray, color: np.ndarray | tuple) -> None:
    """Alpha-blend ``color`` (3,) into ``canvas`` (res, res, 3) in place where ``mask`` (res, res) is set.

    Only the bounding box of the mask is touched: most face parts cover a small part of the canvas.
    """
    rows = np.flatnonzero(mask.max(axis=1) > 0)
    if rows.size == 0:
        return
    cols = np.flatnonzero(mask.max(axis=0) > 0)
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    region = canvas[box]
    region += mask[box][..., None] * (np.asarray(color, dtype=np.float32) - region)


def lambert(
    X: np.ndarray, Y: np.ndarray, cx: float, cy: float, rx: float, ry: float, light: np.ndarray, ambient: float, diffuse: float
) -> np.ndarray:
    """Shading of an ellipsoid seen from the front, lit from unit vector ``light`` (x right, y down, z to camera).

    Returns float32 (res, res): ``ambient + diffuse * max(0, n . light)``, with the surface normal n of
    the ellipsoid with semi-axes (rx, ry, rx); outside the ellipse the normal is clamped to the rim.
    """
    u = (X - cx) / rx
    v = (Y - cy) / ry
    r2 = u * u + v * v
    scale = np.where(r2 > 0.98, np.sqrt(0.98 / np.maximum(r2, 1e-6)), 1.0)
    u, v = u * scale, v * scale
    nz = np.sqrt(np.clip(1.0 - u * u - v * v, 0.0, 1.0))
    dot = u * light[0] + v * light[1] + nz * light[2]
    return (ambient + diffuse * np.clip(dot, 0.0, None)).astype(np.float32)


def downsample2(img: np.ndarray) -> np.ndarray:
    """Box-filter a (2n, 2n, 3) image to (n, n, 3)."""
    h, w = img.shape[:2]
    return img.reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))


def gaussian_blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma_px`` pixels (no-op below 0.05)."""
    if sigma_px < 0.05:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma_px, borderType=cv2.BORDER_REFLECT)


def motion_blur(img: np.ndarray, length_px: float, angle: float) -> np.ndarray:
    """Linear motion blur: average along a line of ``length_px`` pixels at ``angle`` radians."""
    k = int(math.ceil(length_px)) | 1
    if k < 3:
        return img
    kernel = np.zeros((k, k), np.float32)
    c = k // 2
    for t in np.linspace(-length_px / 2, length_px / 2, 4 * k):
        x = int(round(c + t * math.cos(angle)))
        y = int(round(c + t * math.sin(angle)))
        kernel[min(max(y, 0), k - 1), min(max(x, 0), k - 1)] += 1.0
    kernel /= kernel.sum()
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip a uint8 RGB image through JPEG at ``quality`` (1-100)."""
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] to uint8, rounding half up."""
    return np.floor(np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
