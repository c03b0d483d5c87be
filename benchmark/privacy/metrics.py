"""How much a gradient-inversion reconstruction leaks: pure functions of arrays, no I/O.

* Which original a reconstruction shows (:func:`match_faces`): the attack returns its images unordered and
  cannot tell a face from its mirror image, so each is paired with an original, mirrored or not, one to one.
* Image fidelity against the originals: PSNR and SSIM per image (scikit-image's
  ``peak_signal_noise_ratio`` and ``structural_similarity``, Wang et al. 2004, on RGB with data range 1).
* Re-identification: does the face recognizer itself name the reconstruction's identity? The
  reconstruction's embedding is compared (cosine) with one template per enrolled identity (the
  re-normalized mean of that identity's L2-normalized embeddings); it is re-identified when the true
  identity ranks first (strictly above every other identity: a tie counts as a miss, as in
  :mod:`benchmark.evaluation.identification`) and its score reaches the verification threshold.

Images are float (B, 3, H, W) in [0, 1] (NCHW, as everywhere in the package); embeddings (N, D).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from benchmark.evaluation.identification import similarity_matrix
from benchmark.evaluation.verification import l2_normalize


def _pairs_hwc(originals: np.ndarray, reconstructions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 (B, H, W, 3) copies of two (B, 3, H, W) batches in [0, 1]."""
    a, b = np.asarray(originals, np.float64), np.asarray(reconstructions, np.float64)
    if a.ndim != 4 or a.shape[1] != 3 or a.shape != b.shape or a.shape[0] == 0:
        raise ValueError(
            f"originals and reconstructions must be non-empty (B, 3, H, W) batches of one shape, "
            f"got {a.shape} and {b.shape}"
        )
    for name, x in (("originals", a), ("reconstructions", b)):
        if not np.all(np.isfinite(x)) or x.min() < 0.0 or x.max() > 1.0:
            raise ValueError(f"{name} must be finite and in [0, 1]")
    return a.transpose(0, 2, 3, 1), b.transpose(0, 2, 3, 1)


def psnr(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio (dB) of each reconstruction, (B,) float64; +inf where identical.

    10 log10(1 / MSE) over all pixels and channels of an image (data range 1)."""
    a, b = _pairs_hwc(originals, reconstructions)
    with np.errstate(divide="ignore"):
        return np.array([peak_signal_noise_ratio(x, y, data_range=1.0) for x, y in zip(a, b)])


def ssim(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Structural similarity of each reconstruction, (B,) float64 in [-1, 1] (1 = identical): scikit-image's
    mean SSIM over a 7x7 window (smaller for images under 7 pixels), averaged over the RGB channels."""
    a, b = _pairs_hwc(originals, reconstructions)
    win = min(7, a.shape[1], a.shape[2])
    win -= 1 - win % 2
    return np.array([structural_similarity(x, y, data_range=1.0, channel_axis=-1, win_size=win) for x, y in zip(a, b)])


def match_faces(originals: np.ndarray, reconstructions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which original each reconstruction shows: the one-to-one assignment of reconstructions to originals (both
    (B, 3, H, W) in [0, 1]) that maximizes the summed PSNR, each original taken as is or mirrored left-right
    (the attacker learns neither the faces' order nor whether training flipped them). Returns ``order`` (B,) int,
    the original of each reconstruction, and ``flipped`` (B,) bool; ``originals[order]`` mirrored where
    ``flipped`` lines up with ``reconstructions``."""
    a, b = _pairs_hwc(originals, reconstructions)
    as_is = ((b[:, None] - a[None]) ** 2).mean(axis=(2, 3, 4))
    mirrored = ((b[:, None] - a[None, :, :, ::-1]) ** 2).mean(axis=(2, 3, 4))
    mse = np.minimum(as_is, mirrored)
    rows, order = linear_sum_assignment(np.log10(np.maximum(mse, 1e-20)))
    return order[np.argsort(rows)], (mirrored < as_is)[rows, order][np.argsort(rows)]


def matched_originals(originals: np.ndarray, order: np.ndarray, flipped: np.ndarray) -> np.ndarray:
    """``originals[order]`` (B, 3, H, W), mirrored left-right where ``flipped`` (see :func:`match_faces`)."""
    out = np.asarray(originals)[order].copy()
    out[flipped] = out[flipped][..., ::-1]
    return out


def identity_templates(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One template per identity: (templates (U, D) unit rows, identities (U,) sorted), from (N, D)
    embeddings and (N,) labels; each template is the normalized mean of its identity's normalized rows."""
    unit = l2_normalize(embeddings)
    labels = np.asarray(labels)
    if labels.shape != (len(unit),) or len(unit) == 0:
        raise ValueError(f"labels must have shape ({len(unit)},) and be non-empty, got {labels.shape}")
    identities, inverse = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(identities), unit.shape[1]))
    np.add.at(sums, inverse, unit)
    return l2_normalize(sums, name="identity templates"), identities


def reidentification(
    probe_emb: np.ndarray,
    probe_labels: np.ndarray,
    templates: np.ndarray,
    identities: np.ndarray,
    threshold: float,
) -> dict[str, np.ndarray]:
    """Whether each probe (a reconstruction) is re-identified as its true identity.

    probe_emb (P, D), probe_labels (P,) true identities (each must be among ``identities``);
    templates (U, D) with their ``identities`` (U,) (see :func:`identity_templates`); threshold: the
    cosine a match must reach (the verification threshold at the chosen FAR).
    Returns (P,) arrays: ``score`` (cosine to the true template), ``rank1`` (true identity strictly
    first), ``accepted`` (score >= threshold), ``reidentified`` (rank1 and accepted), ``predicted``
    (the best-scoring identity)."""
    probe_labels, identities = np.asarray(probe_labels), np.asarray(identities)
    sim = similarity_matrix(probe_emb, templates)
    if probe_labels.shape != (sim.shape[0],) or identities.shape != (sim.shape[1],):
        raise ValueError(f"probe_labels {probe_labels.shape} and identities {identities.shape} must match "
                         f"the probes and templates {sim.shape}")
    column = {label: i for i, label in enumerate(identities.tolist())}
    missing = [label for label in probe_labels.tolist() if label not in column]
    if missing:
        raise ValueError(f"probe identities {missing[:5]} have no template")
    rows = np.arange(len(sim))
    score = sim[rows, [column[label] for label in probe_labels.tolist()]]
    rank1 = np.sum(sim >= score[:, None], axis=1) == 1
    accepted = score >= threshold
    return {
        "score": score,
        "rank1": rank1,
        "accepted": accepted,
        "reidentified": rank1 & accepted,
        "predicted": identities[np.argmax(sim, axis=1)],
    }
