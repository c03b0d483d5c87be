"""Training-time augmentation of face batches, vectorized over the batch.

The augmentation face-recognition trainers use on aligned crops (InsightFace and FaceX-Zoo: horizontal flip;
torchvision's ``RandomResizedCrop``/``RandomAffine`` and ``ColorJitter`` for the small geometric and
photometric jitter), kept mild because the crops are already aligned:

* flip:        mirror each image left-right with probability ``flip_p``;
* shift/scale: one isotropic zoom ``s`` in ``scale`` and one shift per axis of up to ``shift`` of the side,
               per image, applied by a single ``F.affine_grid`` + ``F.grid_sample`` call (bilinear, border
               padding: edge pixels are repeated, no black margins);
* colour:      brightness, contrast and saturation factors in ``[1 - a, 1 + a]`` (torchvision ``ColorJitter``
               semantics, fixed order, clamped to [0, 1] after each): brightness scales the pixels, contrast
               blends with the image's mean grey level, saturation blends with the pixel's grey value (ITU-R
               601 luma), so on grayscale-replicated images saturation is a no-op (up to rounding).

Every random number comes from the ``numpy`` Generator passed in (flip draws first, so "flip" and "standard"
mirror the same images), so a run is deterministic on the CPU. Images are float32 (B, 3, H, W) in [0, 1]
and stay so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

AUGMENTATIONS = ("standard", "flip", "none")
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Strength:
    """How strong the "standard" augmentation is.

    flip_p:     probability of a horizontal flip (0.5).
    scale:      (low, high) zoom factor, > 1 zooms in (0.9, 1.1).
    shift:      largest shift per axis as a fraction of the side (0.06).
    brightness, contrast, saturation: largest relative change of each, factor in [1 - a, 1 + a] (0.2).
    """

    flip_p: float = 0.5
    scale: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.06
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2


STANDARD = Strength()


def random_flip(x: torch.Tensor, rng: np.random.Generator, p: float = 0.5) -> torch.Tensor:
    """x (B, 3, H, W) with each image mirrored left-right with probability ``p`` (one uniform draw per image)."""
    flip = torch.from_numpy(rng.random(len(x)) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_shift_scale(
    x: torch.Tensor, rng: np.random.Generator, scale: tuple[float, float], shift: float
) -> torch.Tensor:
    """x (B, 3, H, W) zoomed by a factor drawn uniformly from ``scale`` about its centre and shifted by up to
    ``shift`` of the side along each axis (uniform), border padding."""
    zoom = rng.uniform(scale[0], scale[1], len(x))
    offset = rng.uniform(-2.0 * shift, 2.0 * shift, (len(x), 2))  # normalized coordinates span 2 per side
    theta = np.zeros((len(x), 2, 3), np.float32)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / zoom
    theta[:, :, 2] = offset
    grid = F.affine_grid(torch.from_numpy(theta).to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma."""
    weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device)
    return torch.einsum("bchw,c->bhw", x, weights)[:, None]


def colour_jitter(
    x: torch.Tensor, rng: np.random.Generator, brightness: float, contrast: float, saturation: float
) -> torch.Tensor:
    """x (B, 3, H, W) with per-image brightness, contrast and saturation factors drawn uniformly from
    ``[1 - a, 1 + a]`` (in that order, three draws per image), clamped to [0, 1] after each."""
    amounts = np.array([brightness, contrast, saturation])
    factors = torch.from_numpy(rng.uniform(1.0 - amounts, 1.0 + amounts, (len(x), 3)).astype(np.float32))
    f = factors.to(x.device)[:, :, None, None, None]
    x = (x * f[:, 0]).clamp(0.0, 1.0)
    mean = _grey(x).mean(dim=(1, 2, 3), keepdim=True)
    x = (mean + f[:, 1] * (x - mean)).clamp(0.0, 1.0)
    grey = _grey(x)
    return (grey + f[:, 2] * (x - grey)).clamp(0.0, 1.0)


def augment_batch(
    x: torch.Tensor, kind: str, rng: np.random.Generator, strength: Strength = STANDARD
) -> torch.Tensor:
    """Augment a float32 (B, 3, H, W) batch in [0, 1]; returns a new tensor of the same shape in [0, 1].

    kind: "standard" (flip, then shift/scale, then colour jitter, at ``strength``), "flip" (flip only, with
    probability ``strength.flip_p``) or "none" (``x`` itself, no random draw).
    """
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augmentation {kind!r} not allowed; choose from {AUGMENTATIONS}")
    if kind == "none":
        return x
    x = random_flip(x, rng, strength.flip_p)
    if kind == "flip":
        return x
    x = random_shift_scale(x, rng, strength.scale, strength.shift)
    return colour_jitter(x, rng, strength.brightness, strength.contrast, strength.saturation)
