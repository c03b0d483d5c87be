"""What the numbers show, per source method: sentences built from the metrics, pure functions.

Every sentence states measured values and the comparison a reviewer would make (a difference against the
fold standard deviation, a target met or missed); a variant the pipeline did not produce is reported as
missing, never filled in.

``evaluation`` is ``reports/metrics/evaluation.json``, ``{variant: {benchmark_set: {...}}}``; the sentences about
accuracy and robustness are written for one benchmark set (the report passes the headline set) and name it.
"""

from __future__ import annotations

from benchmark.evaluation.paired import verdict
from benchmark.report.headline import HEADLINE_ATTACK, HEADLINE_EPS


def _acc(evaluation: dict, variant: str, benchmark: str) -> tuple[float, float] | None:
    v = evaluation.get(variant, {}).get(benchmark, {}).get("verification")
    return (v["accuracy_mean"], v["accuracy_std"]) if v else None


def _robust(evaluation: dict, variant: str, benchmark: str) -> float | None:
    r = evaluation.get(variant, {}).get(benchmark, {}).get("robustness", {}).get(HEADLINE_ATTACK, {}).get(HEADLINE_EPS)
    return r["robust_accuracy"] if r else None


def compare(evaluation: dict, a: str, b: str, benchmark: str) -> str:
    """"On <benchmark>, a reaches X ± s, b Y ± t: a difference of D points, within/beyond the larger fold std"."""
    ra, rb = _acc(evaluation, a, benchmark), _acc(evaluation, b, benchmark)
    if ra is None or rb is None:
        missing = [name for name, r in ((a, ra), (b, rb)) if r is None]
        return f"Not compared on {benchmark}: no clean verification result for {', '.join(missing)}."
    diff, std = 100 * (ra[0] - rb[0]), 100 * max(ra[1], rb[1])
    verdict = "within" if abs(diff) <= std else "beyond"
    return (f"On {benchmark}, {a} reaches {ra[0]:.3f} ± {ra[1]:.3f} clean 10-fold accuracy and {b} "
            f"{rb[0]:.3f} ± {rb[1]:.3f}: a difference of {diff:+.1f} points, {verdict} the fold standard deviation "
            f"({std:.1f} points).")


def semisupervised(evaluation: dict, stages: dict, benchmark: str) -> list[str]:
    """Patent CN112364828B: does the unlabelled data buy accuracy over the supervised-only model (on ``benchmark``)?"""
    semi = stages.get("semisupervised", {})
    out = [compare(evaluation, "semisupervised", "supervised", benchmark)]
    if semi:
        out.append(f"The semi-supervised model trained on {semi.get('labelled_images')} labelled and "
                   f"{semi.get('unlabelled_images')} unlabelled images for {semi.get('epochs')} epochs "
                   f"({semi.get('train_seconds')} s).")
    out.append(compare(evaluation, "semisupervised", "timm_reference", benchmark))
    return out


def hardened(evaluation: dict, stages: dict, benchmark: str) -> list[str]:
    """Patent CN116665282A: the gated hardened model against static PGD-AT, TRADES and the clean model, with
    clean and robust accuracy on ``benchmark``."""
    out = []
    for variant in ("adversarial", "pgd_at", "trades", "supervised"):
        acc, robust = _acc(evaluation, variant, benchmark), _robust(evaluation, variant, benchmark)
        if acc is None:
            out.append(f"{variant}: not evaluated on {benchmark}.")
            continue
        text = f"{variant} on {benchmark}: clean {acc[0]:.3f}, robust accuracy under PGD-L∞ at 4/255 "
        text += "n/a" if robust is None else f"{robust:.3f}"
        m = stages.get(variant, {})
        if "adversarial_fraction" in m:
            text += f"; regularizer on for {100 * m['adversarial_fraction']:.0f}% of steps, {m.get('switches')} switches"
        if "train_seconds" in m:
            text += f"; trained in {m['train_seconds']:.0f} s"
        out.append(text + ".")
    gated, static = stages.get("adversarial", {}), stages.get("pgd_at", {})
    ra, rp = _robust(evaluation, "adversarial", benchmark), _robust(evaluation, "pgd_at", benchmark)
    if gated and static and ra is not None and rp is not None:
        ca, cp = _acc(evaluation, "adversarial", benchmark), _acc(evaluation, "pgd_at", benchmark)
        ratio = gated["train_seconds"] / static["train_seconds"]
        checks = [
            ("robust accuracy within 2 points of PGD-AT or better", ra >= rp - 0.02),
            ("clean accuracy at least PGD-AT's", ca[0] >= cp[0]),
            ("training time at most 0.7x PGD-AT's", ratio <= 0.7),
        ]
        met = "; ".join(f"{name}: {'met' if ok else 'missed'}" for name, ok in checks)
        out.append(f"Targets against static PGD-AT on {benchmark} (training time ratio {ratio:.2f}): {met}.")
    return out


def federated(fed: dict | None) -> list[str]:
    """Knowledge federation: encrypted modes against plaintext FedAvg and centralized training, and HE cost."""
    if not fed:
        return ["The federated stage did not run."]
    out = []
    plain = fed.get("plaintext", {}).get("verification", {}).get("accuracy_mean")
    central = fed.get("centralized", {}).get("verification", {}).get("accuracy_mean")
    for mode in ("third_party", "blind"):
        m = fed.get(mode)
        if not m:
            continue
        acc = m["verification"]["accuracy_mean"]
        text = f"{mode}: accuracy {acc:.3f}"
        if plain is not None:
            met = "met" if abs(acc - plain) <= 0.005 else "missed"
            text += f", {100 * (acc - plain):+.2f} points from plaintext FedAvg ({plain:.3f}; target within 0.5 points: {met})"
        if m.get("encrypt_seconds"):
            rounds = len(m["encrypt_seconds"])
            he = sum(map(sum, (m["encrypt_seconds"], m["aggregate_seconds"], m["decrypt_seconds"]))) / rounds
            text += f"; {he:.1f} s of encryption work and {sum(m['bytes_sent']) / rounds / 1e6:.0f} MB sent per round"
        out.append(text + ".")
    if plain is not None and central is not None:
        gap = 100 * (plain - central)
        out.append(f"Plaintext FedAvg reaches {plain:.3f} against {central:.3f} for centralized training on the union "
                   f"of the institutions' data ({gap:+.1f} points; target: within 3 points: {'met' if gap >= -3 else 'missed'}).")
    privacy = fed.get("privacy") or {}
    if privacy:
        out.append(f"Gradient inversion of one plaintext update ({privacy.get('batch_size')} face(s)) recovers faces at PSNR "
                   f"{privacy['psnr_plaintext']:.1f} dB, SSIM {privacy['ssim_plaintext']:.2f} (random start: "
                   f"{privacy.get('psnr_start', float('nan')):.1f} dB); share re-identified by the recognizer: "
                   f"{100 * privacy['reidentified_plaintext']:.0f}%.")
    return out


def robustness(evaluation: dict, pairs: int, benchmark: str) -> list[str]:
    """Which variants resist PGD-L-inf at 4/255 on ``benchmark``, and how precise robust accuracy is with ``pairs``
    attacked pairs."""
    ranked = sorted((r, v) for v in evaluation if (r := _robust(evaluation, v, benchmark)) is not None)
    if not ranked:
        return [f"No robustness result on {benchmark}."]
    half_width = 100 * 1.96 * (0.25 / pairs) ** 0.5
    return [f"On {benchmark}, robust accuracy under PGD-L∞ at 4/255 ranges from {ranked[0][0]:.3f} ({ranked[0][1]}) to "
            f"{ranked[-1][0]:.3f} ({ranked[-1][1]}). With {pairs} attacked pairs per variant a robust accuracy is "
            f"known to about ±{half_width:.0f} points (95% binomial interval at worst): closer variants are not told apart."]


def _min_perturbation(evaluation: dict, variant: str, benchmark: str) -> float | None:
    r = evaluation.get(variant, {}).get(benchmark, {}).get("robustness", {}).get(HEADLINE_ATTACK, {})
    return r.get("median_min_perturbation", {}).get("dodging")


def pretrained(evaluation: dict, comparisons: dict | None, run: dict | None, benchmark: str) -> list[str]:
    """The pretrained reference (the converted FaceNet as is) on ``benchmark``: its accuracy and robustness against
    RobFR's yardstick, and each variant against it with the paired test of ``comparisons.json``; a fine-tuned
    variant's target is to be no worse than it by more than the variant's own fold std."""
    reference = (comparisons or {}).get("reference")
    weights = (run or {}).get("variants", {}).get(reference, {}).get("weights", "")
    if not weights.endswith(" as is") or _acc(evaluation, reference, benchmark) is None:
        return []  # the reference is a trained variant (no pretrained row was evaluated)
    acc, std = _acc(evaluation, reference, benchmark)
    robust, pert = _robust(evaluation, reference, benchmark), _min_perturbation(evaluation, reference, benchmark)
    text = [f"On {benchmark}, {reference} ({weights}) reaches {acc:.3f} ± {std:.3f} clean 10-fold accuracy."]
    if robust is not None:
        budget = "beyond the largest budget (16/255)" if pert is None else f"{pert * 255:.2f}/255"
        text.append(f"White-box, {reference} keeps {robust:.3f} robust accuracy under PGD-L∞ at 4/255, and half of "
                    f"its genuine pairs are dodged within {budget}. RobFR (Yang et al. 2020, arXiv:2007.04118) finds "
                    "naturally trained face recognizers, FaceNet among them, broken by white-box L∞ attacks at budgets "
                    "of a few /255: the yardstick this row is read against.")
    for variant, c in (comparisons or {}).get("sets", {}).get(benchmark, {}).items():
        own = _acc(evaluation, variant, benchmark)
        if own is None:
            continue
        lo, hi = c["ci"]
        sentence = (f"{variant} − {reference}: {100 * c['difference']:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] "
                    f"(paired bootstrap over {c['pairs']} pairs, 95%), McNemar p = {c['p_value']:.2g}")
        weights = (run or {}).get("variants", {}).get(variant, {}).get("weights", "")
        if weights.startswith("fine-tuned"):
            target = verdict(c["ci"], -own[1])
            word = {"above": "met", "below": "missed", "not shown": "not shown"}[target]
            sentence += (f"; target (fine-tuned, no worse than {reference} by more than its fold std, "
                         f"{100 * own[1]:.1f} points): {word}")
        text.append(sentence + ".")
    return text
