"""Runs the attacks of :mod:`benchmark.attacks` against one face recognizer (or across several, for the
transfer matrix) on verification pairs and scores them with :mod:`benchmark.evaluation.robustness`.

Protocol, per variant (kept cheap: the evaluation stage calls it for every variant on 2 CPU cores):

* a deterministic, balanced subset of the test pairs (:func:`select_pairs`: ``cfg.pairs`` pairs, half
  genuine, half impostor, drawn by ``seed``); the first image of each pair is attacked, the second one's
  embedding is the fixed reference. Genuine pairs get dodging, impostor pairs impersonation, both in one
  batch (:func:`~benchmark.attacks.objectives.verification`);
* every attack maximizes the pair's verification margin at the model's threshold (``+-(cos - threshold)``,
  positive once the decision flips); CW-L2 searches its weight c per pair on that sign (``cfg.cw_search_steps``
  rounds of ``cfg.steps`` steps, Carlini and Wagner's binary search);
* budgets ``eps_N`` for N in :data:`LEVELS`: N/255 in L-inf; for the L2 attacks
  ``cfg.l2_scale * N/255 * sqrt(3 * H * W)`` (:func:`budgets`; with the default 0.25 at 64 x 64 that is
  0.11, 0.22, 0.43, 0.87, 1.74 for N = 1..16), reported under the same ``eps_N`` keys;
* only the pairs classified correctly before the attack are attacked (the others are already wrong and
  stay so). A pair broken within a smaller budget counts as broken within every larger one and is not
  attacked again (an adversary with the larger budget has that example), so success rates rise with
  eps and the coarse sweep brackets each pair's minimal successful budget;
* the minimal successful budget is then refined by ``cfg.binary_steps`` bisections inside each broken
  pair's bracket, all pairs in one batch with per-sample budgets; the upper end (a budget at which the
  attack succeeded) is the pair's value, +inf for pairs never broken within eps_16;
* every rate carries its Wilson 95% interval and the pairs behind it;
* the **headline check** (:func:`headline_check`) at the headline budget (PGD-L-inf, 4/255) on
  ``cfg.headline_pairs`` pairs (256 by default: a robust accuracy known to +-6 points; the sweep's pairs are
  among them): PGD on every pair, then APGD and the gradient-free Square attack (``cfg.worst_case_attacks``) on
  the pairs still unbroken. ``worst_case_robust_accuracy`` is the share no attack broke: the figure to read when
  PGD's gradients mislead it (gradient masking), beside PGD's own figure on the same pairs.

JSON values that are not finite are written as ``null``: a success rate with no pair to attack, or a
median minimal perturbation that is +inf (at least half the pairs resisted the largest budget).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmark.attacks import ATTACKS, create_attack
from benchmark.attacks.objectives import dodging, verification
from benchmark.config import L2_ATTACK_NAMES, RobustnessConfig
from benchmark.evaluation.intervals import wilson
from benchmark.evaluation.robustness import attack_success_rate, bracket, budget_rates, correct, median_min_perturbation
from benchmark.models.face_model import FaceModel, to_float_nchw

LEVELS = (1, 2, 4, 8, 16)
LEVELS_BY_KEY = {f"eps_{n}": n for n in LEVELS}
HEADLINE_ATTACK, HEADLINE_EPS = "pgd_linf", "eps_4"  # the robust accuracy the headline and the claims use
WORST_CASE = "worst_case_robust_accuracy"


@dataclass
class RobustnessResult:
    """report: ``{attack: {"eps_N": {...}, "median_min_perturbation": {...}}, WORST_CASE: {HEADLINE_EPS: ...}}`` (the
    module docstring); pgd_correct: bool (P,), whether each pair of the headline check (:func:`select_pairs` with
    ``headline_pairs``, in order) is still decided correctly after PGD at the headline budget."""

    report: dict
    pgd_correct: np.ndarray


def select_pairs(is_same: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of ``n`` pairs (n // 2 genuine, the rest impostor; fewer if the set is smaller),
    drawn without replacement by ``seed``."""
    same = np.asarray(is_same, dtype=bool)
    rng = np.random.default_rng(seed)
    genuine = rng.permutation(np.flatnonzero(same))[: n // 2]
    impostor = rng.permutation(np.flatnonzero(~same))[: n - n // 2]
    return np.sort(np.concatenate([genuine, impostor]))


def budgets(attack: str, image_shape: tuple[int, int, int], cfg: RobustnessConfig) -> np.ndarray:
    """(L,) budgets of ``attack`` for :data:`LEVELS`; image_shape (3, H, W). See the module docstring."""
    linf = np.asarray(LEVELS, dtype=np.float64) / 255.0
    if attack in L2_ATTACK_NAMES:
        return cfg.l2_scale * linf * math.sqrt(float(np.prod(image_shape)))
    return linf


class _Pairs:
    """The attacked side of each pair, (P, 3, H, W) in [0, 1], its reference embeddings and labels; attacks maximize
    the verification margin at ``threshold`` (:func:`~benchmark.attacks.objectives.verification`)."""

    def __init__(self, model: FaceModel, images: np.ndarray, pairs: np.ndarray, is_same: np.ndarray,
                 cfg: RobustnessConfig, threshold: float = 0.0):
        device = next(model.parameters()).device
        self.model, self.cfg, self.batch, self.threshold = model, cfg, cfg.batch_size, threshold
        self.x = to_float_nchw(images[pairs[:, 0]]).to(device)
        self.other = _embed(model, to_float_nchw(images[pairs[:, 1]]).to(device), self.batch)
        self.same = np.asarray(is_same, dtype=bool)
        self.before = self.scores(self.x, np.arange(len(pairs)))

    def scores(self, x: torch.Tensor, idx: np.ndarray) -> np.ndarray:
        """Cosine of images ``x`` (for pairs ``idx``) with their references, (len(idx),) float64."""
        emb = _embed(self.model, x, self.batch)
        return (emb * self.other[torch.as_tensor(idx, device=emb.device)]).sum(dim=1).double().cpu().numpy()

    def attack(self, name: str, idx: np.ndarray, eps: np.ndarray, steps: int, seed: int) -> np.ndarray:
        """Scores after attacking pairs ``idx`` with per-pair budgets ``eps`` (len(idx),), in batches."""
        out = np.empty(len(idx))
        for start in range(0, len(idx), self.batch):
            part = idx[start : start + self.batch]
            sel = torch.as_tensor(part, device=self.x.device)
            attack = create_attack(name, **self._attack_kwargs(name, eps[start : start + self.batch], steps, seed))
            objective = verification(self.other[sel], torch.as_tensor(self.same[part]), self.threshold)
            out[start : start + len(part)] = self.scores(attack(self.model, self.x[sel], objective), part)
        return out

    def _attack_kwargs(self, name: str, eps: np.ndarray, steps: int, seed: int) -> dict:
        accepted = inspect.signature(ATTACKS.get(name)).parameters
        kwargs = {"eps": torch.as_tensor(eps, dtype=torch.float32), "seed": seed}
        if "steps" in accepted:
            kwargs["steps"] = steps
        if "search_steps" in accepted:
            kwargs["search_steps"] = self.cfg.cw_search_steps
        return kwargs


def _embed(model: FaceModel, x: torch.Tensor, batch: int) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([model.embed(x[i : i + batch]) for i in range(0, len(x), batch)])
    finally:
        model.train(was_training)


def _finite(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def _json(rates: dict) -> dict:
    """Rates rounded for JSON (:func:`_finite`), intervals' ends too; counts as they are."""
    return {k: v if isinstance(v, int) or v is None else [_finite(x) for x in v] if isinstance(v, list) else _finite(v)
            for k, v in rates.items()}


def attack_report(data: _Pairs, name: str, threshold: float, cfg: RobustnessConfig, seed: int,
                  bar: tqdm | None = None) -> dict:
    """One attack's ``{"eps_N": {...}, "median_min_perturbation": {...}}`` on prepared pairs ``data``."""
    levels = budgets(name, tuple(data.x.shape[1:]), cfg)
    ok_before = correct(data.before, data.same, threshold)
    after, broken = data.before.copy(), np.zeros((len(levels), len(data.before)), dtype=bool)
    out: dict = {}
    for i, (level, eps) in enumerate(zip(LEVELS, levels)):
        todo = np.flatnonzero(ok_before & ~broken[i - 1]) if i else np.flatnonzero(ok_before)
        after[todo] = data.attack(name, todo, np.full(len(todo), eps), cfg.steps, seed + i)
        broken[i] = ok_before & ~correct(after, data.same, threshold)
        out[f"eps_{level}"] = _json(budget_rates(data.before, after, data.same, threshold))
        if bar is not None:
            bar.update()
    lo, hi = bracket(broken, levels)
    search = np.flatnonzero(np.isfinite(hi))
    for step in range(cfg.binary_steps):
        mid = (lo[search] + hi[search]) / 2
        scores = data.attack(name, search, mid, cfg.steps, seed + len(levels) + step)
        hit = ~correct(scores, data.same[search], threshold)
        hi[search] = np.where(hit, mid, hi[search])
        lo[search] = np.where(hit, lo[search], mid)
        if bar is not None:
            bar.update()
    out["median_min_perturbation"] = {
        goal: _finite(median_min_perturbation(hi[ok_before & group]))
        for goal, group in (("dodging", data.same), ("impersonation", ~data.same))
    }
    return out


def attacks_of(report: dict) -> dict:
    """The per-attack entries of one robustness report (``{attack: {...}}``), without its ``WORST_CASE`` entry."""
    return {name: r for name, r in report.items() if name != WORST_CASE}


def headline_check(data: _Pairs, threshold: float, cfg: RobustnessConfig, seed: int,
                   bar: tqdm | None = None) -> tuple[dict, np.ndarray]:
    """The headline budget's check on prepared pairs ``data``: ``({"value", "ci", "n", "attacks", HEADLINE_ATTACK:
    {"value", "ci"}}, PGD's per-pair outcome)``. PGD-L-inf (``cfg.steps``) attacks every pair correct before; then
    each attack of ``cfg.worst_case_attacks`` attacks only the pairs no earlier attack broke (AutoAttack's order of
    work); ``value`` is the share of pairs that no attack broke (the worst case), HEADLINE_ATTACK's entry PGD's own
    robust accuracy on the same pairs, both with Wilson 95% intervals."""
    eps = LEVELS_BY_KEY[HEADLINE_EPS] / 255
    robust = correct(data.before, data.same, threshold)
    for i, name in enumerate((HEADLINE_ATTACK, *cfg.worst_case_attacks)):
        todo = np.flatnonzero(robust)
        if len(todo):
            steps = cfg.square_queries if name == "square" else cfg.steps
            scores = data.attack(name, todo, np.full(len(todo), eps), steps, seed + i)
            robust[todo] = correct(scores, data.same[todo], threshold)
        if i == 0:
            pgd = robust.copy()
        if bar is not None:
            bar.update()
    return {**_share(robust), "n": len(robust), "attacks": [HEADLINE_ATTACK, *cfg.worst_case_attacks],
            HEADLINE_ATTACK: _share(pgd)}, pgd


def pgd_robust_accuracy(model: FaceModel, images: np.ndarray, pairs: np.ndarray, is_same: np.ndarray,
                        threshold: float, eps: float, n_pairs: int, seed: int) -> dict:
    """PGD-L-inf's robust accuracy at ``eps`` on ``n_pairs`` balanced pairs (:func:`select_pairs`): ``{"value", "ci",
    "n", "eps", "steps"}``, the share of pairs still decided correctly at ``threshold`` after PGD-10 with a random
    start (the evaluation's defaults, :class:`RobustnessConfig`), with its Wilson 95% interval. The training stages
    score hyperparameters with it on validation pairs; images, pairs and is_same as :func:`robustness_report`."""
    cfg = RobustnessConfig()
    data = _validation_pairs(model, images, pairs, is_same, threshold, n_pairs, seed, cfg)
    robust = correct(data.before, data.same, threshold)
    todo = np.flatnonzero(robust)
    if len(todo):
        scores = data.attack(HEADLINE_ATTACK, todo, np.full(len(todo), eps), cfg.steps, seed)
        robust[todo] = correct(scores, data.same[todo], threshold)
    return {**_share(robust), "n": len(robust), "eps": _finite(eps), "steps": cfg.steps}


def worst_case_robust_accuracy(model: FaceModel, images: np.ndarray, pairs: np.ndarray, is_same: np.ndarray,
                               threshold: float, n_pairs: int, seed: int) -> dict:
    """The evaluation's headline check (:func:`headline_check` with the default :class:`RobustnessConfig`: PGD-10,
    then APGD and Square on what PGD left, at 4/255) on the ``n_pairs`` balanced pairs of
    :func:`pgd_robust_accuracy`: ``{"value", "ci", "n", "attacks", "pgd_linf": {"value", "ci"}}``. The adversarial
    stages score it on validation pairs: the worst case that ``make gate-sweep`` places on the cost front."""
    cfg = RobustnessConfig()
    data = _validation_pairs(model, images, pairs, is_same, threshold, n_pairs, seed, cfg)
    return headline_check(data, threshold, cfg, seed)[0]


def _validation_pairs(model: FaceModel, images: np.ndarray, pairs: np.ndarray, is_same: np.ndarray, threshold: float,
                      n_pairs: int, seed: int, cfg: RobustnessConfig) -> _Pairs:
    same = np.asarray(is_same, dtype=bool)
    chosen = select_pairs(same, n_pairs, seed)
    return _Pairs(model, images, np.asarray(pairs)[chosen], same[chosen], cfg, threshold)


def _share(ok: np.ndarray) -> dict:
    return {"value": _finite(float(ok.mean())), "ci": [_finite(v) for v in wilson(int(ok.sum()), len(ok))]}


def robustness_report(
    model: FaceModel,
    images: np.ndarray,
    pairs: np.ndarray,
    is_same: np.ndarray,
    threshold: float,
    cfg: RobustnessConfig,
    seed: int,
    desc: str = "robustness",
) -> RobustnessResult:
    """The sweep (every attack in ``cfg.attacks`` at every budget on ``cfg.pairs`` pairs) and the headline check: the
    report ``{attack: {"eps_1": {"dodging_asr", "impersonation_asr", "robust_accuracy", each with "_ci" and "_n"},
    ..., "eps_16": ..., "median_min_perturbation": {"dodging", "impersonation"}}, WORST_CASE: {HEADLINE_EPS:
    :func:`headline_check`}}`` and PGD's per-pair outcome in the headline check.

    model:     a FaceModel (its mode is restored); images: uint8 (N, H, W, 3); pairs: (P, 2) indices into
    images; is_same: (P,) bool; threshold: the model's cosine decision threshold; seed: picks the pairs
    and seeds the random starts.
    """
    same = np.asarray(is_same, dtype=bool)
    sweep_pairs, headline_pairs = select_pairs(same, cfg.pairs, seed), select_pairs(same, cfg.headline_pairs, seed)
    sweep = _Pairs(model, images, np.asarray(pairs)[sweep_pairs], same[sweep_pairs], cfg, threshold)
    check = _Pairs(model, images, np.asarray(pairs)[headline_pairs], same[headline_pairs], cfg, threshold)
    total = len(cfg.attacks) * (len(LEVELS) + cfg.binary_steps) + 1 + len(cfg.worst_case_attacks)
    with tqdm(total=total, desc=desc, unit="run") as bar:
        report = {name: attack_report(sweep, name, threshold, cfg, seed, bar) for name in cfg.attacks}
        worst, pgd = headline_check(check, threshold, cfg, seed, bar)
    return RobustnessResult({**report, WORST_CASE: {HEADLINE_EPS: worst}}, pgd)


def transfer_matrix(
    models: dict[str, FaceModel],
    images: np.ndarray,
    pairs: np.ndarray,
    is_same: np.ndarray,
    thresholds: dict[str, float],
    cfg: RobustnessConfig,
    seed: int,
) -> dict:
    """``{source: {target: dodging_asr}}``: PGD-L-inf (``cfg.steps`` steps, ``cfg.transfer_eps``/255)
    dodging examples crafted on ``source`` against its own embeddings of the reference images, scored by
    ``target`` with its threshold; the rate's denominator is the genuine pairs of the balanced subset
    that ``target`` accepts before the attack (the diagonal is the white-box rate)."""
    chosen = select_pairs(is_same, cfg.pairs, seed)
    genuine = np.asarray(pairs)[chosen[np.asarray(is_same, dtype=bool)[chosen]]]
    ones = np.ones(len(genuine), dtype=bool)
    data = {name: _Pairs(m, images, genuine, ones, cfg) for name, m in models.items()}
    matrix: dict = {}
    for source, d in tqdm(data.items(), desc="transfer", unit="model"):
        attack = create_attack("pgd_linf", eps=cfg.transfer_eps / 255, steps=cfg.steps, seed=seed)
        x_adv = attack(d.model, d.x, dodging(d.other)).cpu()
        matrix[source] = {}
        for target, t in data.items():
            after = t.scores(x_adv.to(t.x.device), np.arange(len(genuine)))
            matrix[source][target] = _finite(attack_success_rate(t.before, after, ones, thresholds[target])["dodging"])
    return matrix


def worst_case(evaluation: dict, variant: str, benchmark: str) -> dict | None:
    """The headline check's entry in evaluation.json (``{variant: {benchmark: {"robustness": ...}}}``): the worst case,
    its attacks and PGD's figure on the same pairs, at the headline budget; None when there is none."""
    return evaluation.get(variant, {}).get(benchmark, {}).get("robustness", {}).get(WORST_CASE, {}).get(HEADLINE_EPS)
