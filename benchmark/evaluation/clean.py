"""Clean (unattacked) evaluation of one variant under the shared protocol, and the plot rows that compare
variants: the evaluate stage's non-adversarial half.

* :func:`clean_report`: verification on a benchmark set's 10-fold pairs (accuracy mean/std, AUC, EER,
  TAR at FAR 1e-2 and 1e-3, threshold) and identification of the probes against the gallery (closed-set
  rank-1/rank-5, open-set DIR at FPIR 0.01 and 0.1), from the model's embeddings of the test images;
* :func:`roc_rows`: every variant's ROC sampled on one log-spaced FAR grid, so ``dvc plots`` can overlay
  them from a single file (one column per variant).
"""

from __future__ import annotations

import numpy as np

from benchmark.evaluation.identification import identification_report, similarity_matrix
from benchmark.evaluation.verification import cosine_scores, roc_points, verification_report

VERIFICATION_KEYS = ("accuracy_mean", "accuracy_std", "accuracy_ci", "auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-2_ci",
                     "tar_at_far_1e-2_reliable", "tar_at_far_1e-3", "tar_at_far_1e-3_ci", "tar_at_far_1e-3_reliable",
                     "threshold")


def clean_report(embeddings: np.ndarray, labels: np.ndarray, pairs: np.ndarray, is_same: np.ndarray, folds: np.ndarray,
                 gallery: np.ndarray, probes: np.ndarray) -> tuple[dict, np.ndarray]:
    """``({"verification": {...}, "identification": {...}}, pair scores (P,))`` for one variant on one set.

    embeddings: (N, D) float, one row per image of the set (only the rows pairs, gallery and probes use are read);
    labels: (N,) identity labels; pairs (P, 2), is_same (P,), folds (P,); gallery, probes: index arrays. With an
    empty gallery or probe list (an LFW pairs set) there is no "identification" key; otherwise it needs at least
    one probe whose identity is enrolled.
    """
    scores = cosine_scores(embeddings, pairs)
    verification = verification_report(scores, is_same, folds)
    report = {"verification": {k: verification[k] for k in VERIFICATION_KEYS}}
    if len(gallery) and len(probes):
        sim = similarity_matrix(embeddings[probes], embeddings[gallery])
        report["identification"] = identification_report(sim, labels[probes], labels[gallery])
    return report, scores


def roc_rows(scores: dict[str, np.ndarray], is_same: np.ndarray, points: int = 50, min_far: float = 1e-3) -> list[dict]:
    """Rows ``{"far": f, <variant>: TAR at FAR <= f, ...}`` on ``points`` log-spaced FARs from ``min_far`` to 1.

    TAR at a grid FAR is the highest TAR among the ROC's operating points whose FAR does not exceed it (the
    same rule as ``tar_at_far``), so each column is a step-wise, non-decreasing ROC.
    """
    grid = np.logspace(np.log10(min_far), 0.0, points)
    columns = {}
    for variant, s in scores.items():
        far, tar, _ = roc_points(s, is_same)
        idx = np.searchsorted(far, grid, side="right") - 1
        columns[variant] = tar[np.maximum(idx, 0)]
    return [{"far": float(f), **{v: float(c[i]) for v, c in columns.items()}} for i, f in enumerate(grid)]
