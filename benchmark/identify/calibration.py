"""The quality gate calibrated on videos whose spoiled frames are known, never on the test videos.

The identification stage scores the synthetic videos of the training source's validation identities (people
neither enrolled nor tested) and sets the thresholds of the checks (:data:`~benchmark.identify.quality.CHECKS`)
that the gate applies together, so that the whole gate best separates their clean frames from their spoiled ones:
it maximizes Youden's J = (share of clean frames that pass every check) - (share of spoiled frames that do), one
threshold at a time with the others held (coordinate ascent from every check open, until a sweep changes none).
Ties go to the threshold that passes more frames, so a check that rejects no spoiled frame the others let
through stays open (0 for a minimum, 1 for a maximum). The calibrated gate is then applied, unchanged, to the
test videos.

Pure functions of the measured :class:`~benchmark.identify.quality.FrameQuality` lists and the ground-truth
spoiled flags.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from benchmark.identify.quality import CHECKS, FrameQuality, failed_checks
from benchmark.identify.settings import QualityConfig

MAX_SWEEPS = 20


def youden_threshold(clean: np.ndarray, spoiled: np.ndarray, need: str, clean_total: int | None = None,
                     spoiled_total: int | None = None) -> tuple[float, float]:
    """``(threshold, J)``: the threshold on a measurement that maximizes J = (``clean`` values passing) /
    ``clean_total`` - (``spoiled`` values passing) / ``spoiled_total`` (default totals: the values given; larger
    when other checks have already rejected some frames). ``need`` ">=": a value passes when >= the threshold;
    "<=": when <=. Ties go to the loosest threshold, and the loosest of all is the open check: -inf (">=") or
    +inf ("<=")."""
    if need not in (">=", "<="):
        raise ValueError(f"need must be '>=' or '<=', got {need!r}")
    clean_total = len(clean) if clean_total is None else clean_total
    spoiled_total = len(spoiled) if spoiled_total is None else spoiled_total
    if clean_total == 0 or spoiled_total == 0:
        raise ValueError(f"need clean and spoiled frames, got {clean_total} clean and {spoiled_total} spoiled")
    sign = 1.0 if need == ">=" else -1.0  # turn "<=" into ">=" on the negated values
    c, s = np.sort(sign * np.asarray(clean, np.float64)), np.sort(sign * np.asarray(spoiled, np.float64))
    candidates = np.concatenate([[-np.inf], np.unique(np.concatenate([c, s]))])  # ascending: loosest first
    j = (len(c) - np.searchsorted(c, candidates)) / clean_total - (len(s) - np.searchsorted(s, candidates)) / spoiled_total
    best = int(np.argmax(j))  # the first maximum: the loosest threshold among ties
    return float(sign * candidates[best]), float(j[best])


def calibrate(qualities: list[list[FrameQuality]], spoiled: np.ndarray, cfg: QualityConfig) -> tuple[QualityConfig, dict]:
    """``(calibrated cfg, report)`` from the scored frames of calibration videos (``qualities[v][t]``) and their
    ground truth ``spoiled`` (V, T) bool. Checks without measurements on both clean and spoiled frames
    (``symmetry`` in detector mode; confidence, face size and frontalness with ``assume_cropped``) keep ``cfg``'s
    value. The report holds, per calibrated threshold, ``{"value", "params_value"}``, the sweeps it took, and the
    pass rates of the calibrated gate and of ``cfg``'s on the clean and on the spoiled calibration frames
    (``calibrated_clean_pass_rate``, ..., ``params_spoiled_pass_rate``)."""
    spoiled = np.asarray(spoiled, bool)
    frames = [q for video in qualities for q in video]
    flags = np.array([spoiled[v, q.index] for v, video in enumerate(qualities) for q in video], bool)
    if len(frames) == 0 or flags.all() or not flags.any():
        raise ValueError("calibration needs scored frames, some clean and some spoiled")
    face = np.array([not (q.confidence == 0.0 and q.sharpness is None) for q in frames])
    measured = {key: (np.array([np.nan if getattr(q, name) is None else getattr(q, name) for q in frames]), need)
                for name, key, need in CHECKS}
    keys = [key for key, (v, _) in measured.items() if (~np.isnan(v) & flags).any() and (~np.isnan(v) & ~flags).any()]
    open_value = {">=": -np.inf, "<=": np.inf}
    thresholds = {key: open_value[measured[key][1]] for key in keys}

    def passes(key: str) -> np.ndarray:
        values, need = measured[key]
        with np.errstate(invalid="ignore"):
            ok = values >= thresholds[key] if need == ">=" else values <= thresholds[key]
        return ok | np.isnan(values)  # an unmeasured check passes, as in failed_checks

    for sweep in range(1, MAX_SWEEPS + 1):
        changed = False
        for key in keys:
            others = face & np.logical_and.reduce([passes(k) for k in keys if k != key] or [face])
            values, need = measured[key]
            seen = others & ~np.isnan(values)
            value, _ = youden_threshold(values[seen & ~flags], values[seen & flags], need, int((~flags).sum()),
                                        int(flags.sum()))
            changed |= value != thresholds[key]
            thresholds[key] = value
        if not changed:
            break
    chosen = {key: min(max(value, 0.0), 1.0) for key, value in thresholds.items()}
    calibrated = replace(cfg, **chosen)  # QualityConfig refuses an empty brightness range
    report = {key: {"value": value, "params_value": getattr(cfg, key)} for key, value in chosen.items()}
    return calibrated, {"thresholds": report, "sweeps": sweep, **_pass_rates(frames, flags, calibrated, "calibrated"),
                        **_pass_rates(frames, flags, cfg, "params")}


def _pass_rates(frames: list[FrameQuality], spoiled: np.ndarray, cfg: QualityConfig, prefix: str) -> dict:
    passed = np.array([not failed_checks(q, cfg) for q in frames])
    return {f"{prefix}_clean_pass_rate": float(passed[~spoiled].mean()),
            f"{prefix}_spoiled_pass_rate": float(passed[spoiled].mean())}
