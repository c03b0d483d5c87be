"""Face identification metrics (1:N search): pure functions of a probe x gallery similarity matrix.

Closed set: rank-k accuracy (the CMC curve at k). Open set, following ISO/IEC 19795-1 and NIST
FRVT 1:N: a probe is *mated* when its identity is enrolled in the gallery and *non-mated*
otherwise; the false positive identification rate FPIR(t) is the fraction of non-mated probes
whose top score is >= t, and the detection-and-identification rate DIR(t) is the fraction of mated
probes whose true identity is ranked first with a score >= t.

Shapes: ``sim`` (P, G) cosine similarities, higher = more similar; ``probe_labels`` (P,);
``gallery_labels`` (G,), any hashable comparable type (ints or strings). A gallery may hold
several images of one identity: identities are ranked by their best-matching image (max score).
Ties: a probe's true identity is ranked behind every other identity with an equal score, so a
tie never counts as a success.
"""

from __future__ import annotations

import numpy as np

from benchmark.evaluation.intervals import rate_interval
from benchmark.evaluation.verification import l2_normalize


def similarity_matrix(probe_emb: np.ndarray, gallery_emb: np.ndarray) -> np.ndarray:
    """Cosine similarity (P, G) between probe (P, D) and gallery (G, D) embeddings (normalized here)."""
    probes = l2_normalize(probe_emb, name="probe_emb")
    gallery = l2_normalize(gallery_emb, name="gallery_emb")
    if probes.shape[1] != gallery.shape[1]:
        raise ValueError(f"probe_emb and gallery_emb must share D, got {probes.shape[1]} and {gallery.shape[1]}")
    return np.clip(probes @ gallery.T, -1.0, 1.0)


def _check(sim: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray):
    """Validated (sim float64 (P, G), probe_labels (P,), gallery_labels (G,))."""
    sim = np.asarray(sim, dtype=np.float64)
    probe_labels, gallery_labels = np.asarray(probe_labels), np.asarray(gallery_labels)
    if sim.ndim != 2 or sim.shape[0] == 0 or sim.shape[1] == 0:
        raise ValueError(f"sim must be a non-empty 2-D (P, G) matrix, got shape {sim.shape}")
    if probe_labels.shape != (sim.shape[0],) or gallery_labels.shape != (sim.shape[1],):
        raise ValueError(f"probe_labels {probe_labels.shape} and gallery_labels {gallery_labels.shape} must be "
                         f"({sim.shape[0]},) and ({sim.shape[1]},) to match sim {sim.shape}")
    if not np.all(np.isfinite(sim)):
        raise ValueError("sim must be finite, got NaN or inf")
    return sim, probe_labels, gallery_labels


def _identity_scores(sim: np.ndarray, gallery_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(identities (U,) sorted, scores (P, U)): each probe's best score against each identity."""
    identities, inverse = np.unique(gallery_labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(len(identities)))
    return identities, np.maximum.reduceat(sim[:, order], starts, axis=1)


def _true_rank(sim: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray):
    """(rank (P,), true_score (P,)) of each (mated) probe's identity; rank 1 is best, ties count against."""
    identities, scores = _identity_scores(sim, gallery_labels)
    true_score = scores[np.arange(len(scores)), np.searchsorted(identities, probe_labels)]
    return np.sum(scores >= true_score[:, None], axis=1), true_score


def rank_k_accuracy(sim: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray, k: int = 1) -> float:
    """Closed-set rank-k identification rate: fraction of probes whose identity is among the top k.

    Every probe identity must be in the gallery (ValueError otherwise). k >= 1; with k at least the
    number of gallery identities every probe counts as correct.
    """
    return float(np.mean(rank_k_hits(sim, probe_labels, gallery_labels, k)))


def rank_k_hits(sim: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray, k: int = 1) -> np.ndarray:
    """Each probe's rank-k outcome, bool (P,), as :func:`rank_k_accuracy` counts it (its mean)."""
    sim, probe_labels, gallery_labels = _check(sim, probe_labels, gallery_labels)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    missing = ~np.isin(probe_labels, gallery_labels)
    if missing.any():
        raise ValueError(f"closed-set identification needs every probe identity in the gallery; "
                         f"{int(missing.sum())} probes are not, e.g. {np.unique(probe_labels[missing])[:5].tolist()}")
    rank, _ = _true_rank(sim, probe_labels, gallery_labels)
    return rank <= k


def dir_at_fpir(sim: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray, fpir: float) -> dict:
    """Open-set detection-and-identification rate at a target FPIR (ISO/IEC 19795-1, NIST FRVT).

    Threshold rule (exact for the empirical distribution): with n non-mated probes, m is the largest
    integer with m / n <= fpir; t is the smallest float with at most m non-mated top scores >= t,
    i.e. the next float above the (m+1)-th highest non-mated top score (-inf when m = n).
    Returns {"dir", "threshold": t, "fpir": achieved FPIR(t) <= fpir, "mated", "non_mated"} (counts).
    """
    sim, probe_labels, gallery_labels = _check(sim, probe_labels, gallery_labels)
    if not 0.0 <= fpir <= 1.0:
        raise ValueError(f"fpir must be in [0, 1], got {fpir}")
    mated = np.isin(probe_labels, gallery_labels)
    if mated.all() or not mated.any():
        raise ValueError(f"open-set identification needs mated and non-mated probes, got {int(mated.sum())} "
                         f"mated and {int((~mated).sum())} non-mated")
    non_mated_top = np.sort(sim[~mated].max(axis=1))[::-1]
    n = len(non_mated_top)
    m = int(np.count_nonzero(np.arange(1, n + 1) / n <= fpir))
    threshold = -np.inf if m == n else float(np.nextafter(non_mated_top[m], np.inf))
    rank, true_score = _true_rank(sim[mated], probe_labels[mated], gallery_labels)
    return {"dir": float(np.mean((rank == 1) & (true_score >= threshold))), "threshold": float(threshold),
            "fpir": float(np.mean(non_mated_top >= threshold)), "mated": int(mated.sum()), "non_mated": n}


def identification_report(sim: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray,
                          fpirs: tuple[float, ...] = (0.01, 0.1)) -> dict:
    """All identification metrics of the protocol as a JSON-serializable dict.

    rank1 and rank5 are closed-set rates over the mated probes only (non-mated probes have no
    correct answer); for each fpir, ``dir_at_fpir_<fpir>`` and ``threshold_at_fpir_<fpir>`` come
    from ``dir_at_fpir`` (needs non-mated probes). Each rate has its Wilson 95% interval over the mated
    probes (``<rate>_ci``). Also "mated" and "non_mated" probe counts.
    """
    sim, probe_labels, gallery_labels = _check(sim, probe_labels, gallery_labels)
    mated = np.isin(probe_labels, gallery_labels)
    if not mated.any():
        raise ValueError("identification needs at least one mated probe (identity in the gallery), got none")
    report = {}
    for k in (1, 5):
        report[f"rank{k}"] = rank_k_accuracy(sim[mated], probe_labels[mated], gallery_labels, k)
        report[f"rank{k}_ci"] = rate_interval(report[f"rank{k}"], int(mated.sum()))
    for fpir in fpirs:
        result = dir_at_fpir(sim, probe_labels, gallery_labels, fpir)
        report[f"dir_at_fpir_{fpir:g}"] = result["dir"]
        report[f"dir_at_fpir_{fpir:g}_ci"] = rate_interval(result["dir"], result["mated"])
        report[f"threshold_at_fpir_{fpir:g}"] = result["threshold"]
    report.update(mated=int(mated.sum()), non_mated=int((~mated).sum()))
    return report
