"""Eigenfaces (Turk & Pentland 1991): PCA on grayscale pixels, cosine similarity in the PCA space.

The classical baseline that calibrates the synthetic data's difficulty: fitted on training identities
only, it must land well below a trained CNN.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA


def grayscale(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, H*W) luminance in [0, 1] (ITU-R BT.601 weights)."""
    gray = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0
    return gray.reshape(len(images), -1)


class Eigenfaces:
    """PCA with ``components`` eigenfaces; ``embed`` returns L2-normalized projections (N, components)."""

    def __init__(self, components: int = 64, seed: int = 0) -> None:
        self.components = components
        self.seed = seed
        self.pca: PCA | None = None

    def fit(self, images: np.ndarray) -> "Eigenfaces":
        n = min(self.components, len(images) - 1, images[0].size // 3)
        self.pca = PCA(n_components=n, svd_solver="randomized", random_state=self.seed).fit(grayscale(images))
        return self

    def embed(self, images: np.ndarray) -> np.ndarray:
        if self.pca is None:
            raise RuntimeError("Eigenfaces.embed called before fit")
        z = self.pca.transform(grayscale(images))
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
