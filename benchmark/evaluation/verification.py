"""Face verification metrics: pure functions of (embeddings or scores, labels, folds).

Protocol: LFW View 2 (10 folds of pairs; the threshold is chosen on the other nine folds and
applied to the held-out one; accuracy mean +- std over folds), with the fold loop of insightface
``recognition/arcface_torch/eval/verification.py`` (population std, ddof=0), plus ROC AUC, EER and
TAR at a fixed FAR computed exactly on the empirical score distributions.

Conventions for every function: ``scores`` has shape (P,), one similarity per pair, higher meaning
"more likely the same person"; ``labels`` has shape (P,), 1 genuine (same identity) / 0 impostor;
a pair is predicted genuine when ``score >= threshold``. FAR is the fraction of impostor pairs
accepted, TAR the fraction of genuine pairs accepted, FRR = 1 - TAR.
"""

from __future__ import annotations

import numpy as np

from benchmark.evaluation.intervals import far_is_reliable, rate_interval, wilson


def l2_normalize(x: np.ndarray, name: str = "embeddings", rows: np.ndarray | None = None) -> np.ndarray:
    """Rows of ``x`` (N, D) scaled to unit L2 norm, as float64.

    Raises ValueError when ``x`` is not 2-D, is not finite, or has an all-zero row (its direction,
    hence its cosine similarity, is undefined); the message names ``name`` and the bad row indices,
    reported as ``rows[i]`` when ``rows`` (N,) gives each row's index in a larger array.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite, got NaN or inf")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if rows is not None:
        zero = np.asarray(rows)[zero]
    if zero.size:
        raise ValueError(f"{name} rows {zero[:10].tolist()} are zero vectors; cosine needs non-zero rows")
    return x / norms


def cosine_scores(embeddings: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair of embedding rows.

    embeddings: (N, D) float, normalized here (need not be unit length).
    pairs:      (P, 2) integer indices into the rows of ``embeddings``.
    Returns (P,) float64 in [-1, 1]. Only the rows named in ``pairs`` must be non-zero.
    """
    embeddings = np.asarray(embeddings)
    pairs = np.asarray(pairs)
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, D), got shape {embeddings.shape}")
    if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.integer):
        raise ValueError(f"pairs must be an integer array of shape (P, 2), got {pairs.dtype} {pairs.shape}")
    if pairs.size and (pairs.min() < 0 or pairs.max() >= len(embeddings)):
        raise ValueError(f"pairs must index rows 0..{len(embeddings) - 1}, got {pairs.min()}..{pairs.max()}")
    used, inverse = np.unique(pairs, return_inverse=True)
    unit = l2_normalize(embeddings[used], rows=used)
    inverse = inverse.reshape(pairs.shape)
    return np.clip(np.einsum("pd,pd->p", unit[inverse[:, 0]], unit[inverse[:, 1]]), -1.0, 1.0)


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated (scores float64 (P,), labels int64 (P,)); ValueError naming what is wrong."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 1 or labels.ndim != 1 or len(scores) != len(labels):
        raise ValueError(f"scores and labels must be 1-D of equal length, got {scores.shape} and {labels.shape}")
    if np.isnan(scores).any():
        raise ValueError(f"scores must not be NaN ({int(np.isnan(scores).sum())} NaN of {len(scores)})")
    bad = ~np.isin(labels, (0, 1))
    if bad.any():
        raise ValueError(f"labels must be 1 (genuine) or 0 (impostor), got {np.unique(labels[bad])[:10].tolist()}")
    labels = labels.astype(np.int64)
    if labels.min(initial=1) != 0 or labels.max(initial=0) != 1:
        raise ValueError(f"need both genuine (1) and impostor (0) pairs, got {int(labels.sum())} genuine "
                         f"of {len(labels)}")
    return scores, labels


def _best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """Threshold maximizing accuracy on (scores, labels), as LFW picks it on the training folds.

    Candidates: -inf, the midpoints between consecutive sorted unique scores, +inf. Ties in accuracy
    go to the smallest candidate.
    """
    unique = np.unique(scores)
    candidates = np.concatenate(([-np.inf], unique[:-1] / 2 + unique[1:] / 2, [np.inf]))
    genuine = np.sort(scores[labels == 1])
    impostor = np.sort(scores[labels == 0])
    accepted_genuine = len(genuine) - np.searchsorted(genuine, candidates, side="left")
    rejected_impostor = np.searchsorted(impostor, candidates, side="left")
    return float(candidates[np.argmax(accepted_genuine + rejected_impostor)])


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """``(threshold, accuracy)``: the accuracy-maximizing threshold on all of (scores, labels) and the
    accuracy it reaches there (accept when score >= threshold). The rule a model's operating threshold is
    chosen by on validation pairs, and the early-stopping signal of the training stages."""
    scores, labels = _check(scores, labels)
    threshold = _best_threshold(scores, labels)
    return threshold, float(np.mean((scores >= threshold) == (labels == 1)))


def kfold_accuracy(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> dict:
    """LFW k-fold verification accuracy (insightface ``eval/verification.py`` fold loop).

    folds: (P,) integer fold id per pair, at least two distinct ids (LFW View 2 has 10).
    For each fold f (in ascending id order) the threshold maximizing accuracy on all other folds is
    chosen (see ``_best_threshold``) and applied to fold f. A training set with one class yields
    a threshold of -inf or +inf.
    Returns {"accuracy_mean", "accuracy_std" (ddof=0), "fold_accuracies", "thresholds"}, the last two
    as lists in fold id order.
    """
    scores, labels = _check(scores, labels)
    folds = np.asarray(folds)
    if folds.shape != scores.shape or not np.issubdtype(folds.dtype, np.integer):
        raise ValueError(f"folds must be integer fold ids of shape {scores.shape}, got {folds.dtype} {folds.shape}")
    ids = np.unique(folds)
    if len(ids) < 2:
        raise ValueError(f"folds must contain at least 2 distinct ids, got {ids.tolist()}")
    accuracies, thresholds = [], []
    for f in ids:
        test = folds == f
        threshold = _best_threshold(scores[~test], labels[~test])
        accuracies.append(float(np.mean((scores[test] >= threshold) == (labels[test] == 1))))
        thresholds.append(threshold)
    return {"accuracy_mean": float(np.mean(accuracies)), "accuracy_std": float(np.std(accuracies)),
            "fold_accuracies": accuracies, "thresholds": thresholds}


def kfold_correct(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """bool (P,): whether each pair is decided correctly at the threshold :func:`kfold_accuracy` applies to its
    fold (chosen on the other folds); its mean per fold is that fold's accuracy. What paired tests compare."""
    report = kfold_accuracy(scores, labels, folds)
    folds = np.asarray(folds)
    thresholds = np.asarray(report["thresholds"])[np.searchsorted(np.unique(folds), folds)]
    return (np.asarray(scores) >= thresholds) == (np.asarray(labels) == 1)


def roc_points(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every operating point of the empirical ROC.

    Returns (far, tar, thresholds), each (K,) with K = number of distinct scores + 1: thresholds are
    +inf followed by the distinct scores in decreasing order, and far/tar are the rates at which
    impostors/genuines have ``score >= threshold`` (both non-decreasing, from (0, 0) to (1, 1)).
    Equals ``sklearn.metrics.roc_curve(labels, scores, drop_intermediate=False)`` as (fpr, tpr, thr).
    """
    scores, labels = _check(scores, labels)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    accepted_genuine = np.cumsum(sorted_labels)[last_of_run]
    accepted_impostor = (last_of_run + 1) - accepted_genuine
    far = np.r_[0.0, accepted_impostor / (len(labels) - labels.sum())]
    tar = np.r_[0.0, accepted_genuine / labels.sum()]
    return far, tar, np.r_[np.inf, sorted_scores[last_of_run]]


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC (trapezoids; equals P(genuine score > impostor score) + 0.5 P(tie))."""
    far, tar, _ = roc_points(scores, labels)
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate: the FAR (= FRR) where the ROC crosses the line FAR = 1 - TAR.

    The crossing is found on the ROC segment whose ends straddle FAR + TAR = 1 and interpolated
    linearly along it; with no tied genuine/impostor scores it is exact (a step of the ROC).
    """
    far, tar, _ = roc_points(scores, labels)
    gap = far + tar - 1.0
    i = int(np.argmax(gap >= 0))
    if gap[i] == 0:
        return float(far[i])
    alpha = -gap[i - 1] / (gap[i] - gap[i - 1])
    return float(far[i - 1] + alpha * (far[i] - far[i - 1]))


def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """Highest TAR over all thresholds whose FAR <= ``far`` (no interpolation).

    Every threshold that changes a decision is a point of ``roc_points``, so the maximum over those
    points is exact for the empirical distributions. With n impostor pairs the smallest non-zero
    FAR is 1/n: below it this is the TAR at FAR = 0 (genuines scoring above every impostor).
    """
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"far must be in [0, 1], got {far}")
    far_points, tar_points, _ = roc_points(scores, labels)
    return float(tar_points[far_points <= far].max())


FARS = {"1e-2": 1e-2, "1e-3": 1e-3}  # the FARs TAR is reported at, by key suffix


def verification_report(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> dict:
    """All verification metrics of the protocol as a JSON-serializable dict.

    Keys: accuracy_mean, accuracy_std, fold_accuracies (``kfold_accuracy``), accuracy_ci (Wilson 95% interval of
    the share of pairs decided correctly at their fold's threshold), auc, eer, and for each FAR of :data:`FARS`
    ``tar_at_far_<f>`` with ``tar_at_far_<f>_ci`` (Wilson, over the genuine pairs) and ``tar_at_far_<f>_reliable``
    (:func:`~benchmark.evaluation.intervals.far_is_reliable` for the impostor count), threshold (median of the
    per-fold thresholds), pairs (P).
    """
    folded = kfold_accuracy(scores, labels, folds)
    correct = kfold_correct(scores, labels, folds)
    genuine = int(np.sum(np.asarray(labels) == 1))
    report = {
        "accuracy_mean": folded["accuracy_mean"],
        "accuracy_std": folded["accuracy_std"],
        "accuracy_ci": wilson(int(correct.sum()), len(correct)),
        "auc": roc_auc(scores, labels),
        "eer": eer(scores, labels),
    }
    for key, far in FARS.items():
        tar = tar_at_far(scores, labels, far)
        report[f"tar_at_far_{key}"] = tar
        report[f"tar_at_far_{key}_ci"] = rate_interval(tar, genuine)
        report[f"tar_at_far_{key}_reliable"] = far_is_reliable(far, len(correct) - genuine)
    return {**report, "threshold": float(np.median(folded["thresholds"])), "fold_accuracies": folded["fold_accuracies"],
            "pairs": len(np.asarray(scores))}


def threshold_at_far(genuine_scores: np.ndarray, impostor_scores: np.ndarray, far: float) -> float:
    """The lowest threshold whose false accept rate is at most ``far`` (accept when score >= it).

    genuine_scores (G,), impostor_scores (I,): cosine scores of same-/different-identity pairs.
    The threshold is a point of the empirical ROC (``roc_points``): among those with
    FAR <= ``far`` the one with the highest TAR. With I impostors FAR moves in steps of 1 / I,
    so a ``far`` below 1 / I gives the lowest threshold that accepts no impostor (+inf when an
    impostor has the highest score).
    """
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"far must be in [0, 1], got {far}")
    genuine, impostor = np.ravel(genuine_scores), np.ravel(impostor_scores)
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError(f"need genuine and impostor scores, got {genuine.size} genuine and {impostor.size} impostor")
    labels = np.r_[np.ones(genuine.size, np.int64), np.zeros(impostor.size, np.int64)]
    far_points, _, thresholds = roc_points(np.r_[genuine, impostor], labels)
    return float(thresholds[far_points <= far][-1])
