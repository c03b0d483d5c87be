"""Figure of the privacy evidence: the institution's faces next to what gradient inversion recovered."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure


def reconstruction_figure(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    psnr: Sequence[float],
    ssim: Sequence[float],
    reidentified: Sequence[bool],
    title: str = "Gradient inversion of a shipped update",
) -> Figure:
    """Top row the originals, bottom row the reconstructions, each titled with its PSNR (dB), SSIM and
    whether the face recognizer re-identified it. originals, reconstructions: (B, 3, H, W) in [0, 1];
    psnr, ssim, reidentified: one value per image."""
    originals, reconstructions = np.asarray(originals), np.asarray(reconstructions)
    count = len(originals)
    if originals.shape != reconstructions.shape or count == 0 or not len(psnr) == len(ssim) == len(reidentified) == count:
        raise ValueError(
            f"need one reconstruction, PSNR, SSIM and re-identification per original, got {originals.shape}, "
            f"{reconstructions.shape}, {len(psnr)}, {len(ssim)}, {len(reidentified)}"
        )
    fig = Figure(figsize=(2.0 * count + 0.6, 4.6), layout="constrained")
    axes = fig.subplots(2, count, squeeze=False)
    for i in range(count):
        axes[0, i].imshow(np.clip(originals[i].transpose(1, 2, 0), 0, 1))
        axes[0, i].set_title("original", fontsize=8)
        axes[1, i].imshow(np.clip(reconstructions[i].transpose(1, 2, 0), 0, 1))
        verdict = "re-identified" if reidentified[i] else "not re-identified"
        axes[1, i].set_title(f"{psnr[i]:.1f} dB, SSIM {ssim[i]:.2f}\n{verdict}", fontsize=8)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return fig
