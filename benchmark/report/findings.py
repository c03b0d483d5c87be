"""What the numbers show, per source method: sentences built from the metrics, pure functions.

Every comparison is a claim decided by a paired test on the same pairs (``reports/metrics/findings.json``, written by
the evaluate stage from :mod:`benchmark.evaluation.claims`): the sentence gives the difference, its 95% interval,
McNemar's p and the verdict (met, missed, or not shown when the interval straddles the target). A variant the
pipeline did not produce is reported as missing, never filled in.

``evaluation`` is ``reports/metrics/evaluation.json``, ``{variant: {benchmark_set: {...}}}``; ``decided`` is
findings.json's list; the sentences are written for one benchmark set (the report passes the headline set) and
name it.
"""

from __future__ import annotations

from benchmark.evaluation.paired import verdict
from benchmark.evaluation.robustness_runner import HEADLINE_ATTACK, worst_case
from benchmark.report.pareto import KNOBS

MASKING_GAP = 0.05  # a worst case this far below PGD's robust accuracy flags gradient masking
RECOVERY_DB = 3.0  # PSNR gain over the attack's random start below which it recovered no image worth the name
STRUCTURE_SSIM = 0.03  # SSIM gain over the random start from which a reconstruction carries the faces' structure
METRIC_WORDS = {"clean": "clean accuracy", "robust": "robust accuracy under PGD-L∞ at 4/255"}


def _acc(evaluation: dict, variant: str, benchmark: str) -> tuple[float, float] | None:
    v = evaluation.get(variant, {}).get(benchmark, {}).get("verification")
    return (v["accuracy_mean"], v["accuracy_std"]) if v else None


def _robust(evaluation: dict, variant: str, benchmark: str) -> float | None:
    """PGD-L-inf's robust accuracy at the headline budget in the headline check, or None."""
    worst = worst_case(evaluation, variant, benchmark)
    return worst[HEADLINE_ATTACK]["value"] if worst else None


def claim_sentence(f: dict) -> str:
    """One decided claim (an entry of findings.json) as a sentence."""
    lo, hi = f["ci"]
    target = {"better": "above 0", "no_worse": f"above −{100 * f['margin']:.1f}",
              "within": f"inside ±{100 * f['margin']:.1f}"}[f["kind"]]
    return (f"{f['statement'][0].upper()}{f['statement'][1:]} ({METRIC_WORDS[f['metric']]}): {f['a']} − {f['b']} = "
            f"{100 * f['difference']:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] on {f['benchmark']} (paired "
            f"bootstrap over {f['pairs']} pairs, 95%; McNemar p = {f['p_value']:.2g}); target {target} points: "
            f"{f['verdict']}.")


def claims(decided: list[dict] | None, source: str, benchmark: str) -> list[str]:
    """The sentences of ``source``'s claims decided on ``benchmark``; one line saying so when none was."""
    lines = [claim_sentence(f) for f in decided or [] if f["source"] == source and f["benchmark"] == benchmark]
    return lines or [f"No {source} claim was decided on {benchmark}: a variant it compares was not evaluated."]


def semisupervised(stages: dict, decided: list[dict] | None, benchmark: str) -> list[str]:
    """Patent CN112364828B: does the unlabelled data buy accuracy over the supervised-only model (on ``benchmark``)?"""
    semi = stages.get("semisupervised", {})
    out = claims(decided, "semisupervised", benchmark)
    if semi:
        out.append(f"The semi-supervised model trained on {semi.get('labelled_images')} labelled and "
                   f"{semi.get('unlabelled_images')} unlabelled images for {semi.get('epochs')} epochs "
                   f"({semi.get('train_seconds')} s).")
    return out


def frame_selection(identification: dict | None) -> list[str]:
    """The identification stage's question: does the quality-checked frame identify better than a random one?
    (``reports/metrics/identification.json``; nothing when the stage identified still images, not videos.)"""
    if not identification or "selection_difference" not in identification:
        return []
    d, p = identification["selection_difference"], identification["selection_p_value"]
    lo, hi = d["ci"]
    shown = "not shown" if verdict(d["ci"]) == "not shown" else "shown"
    return [f"Frame selection on {identification['closed_set_videos']} videos of enrolled people "
            f"({100 * identification['spoiled_share']:.0f}% of the frames spoiled): rank-1 "
            f"{100 * identification['rank1_selected_frame']:.1f}% with the selected frame, "
            f"{100 * identification['rank1_random_frame']:.1f}% with a random one, "
            f"{100 * identification['rank1_worst_frame']:.1f}% with the worst and "
            f"{100 * identification['rank1_best_frame_oracle']:.1f}% with the best by ground truth; selected − random "
            f"= {100 * d['difference']:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] (paired bootstrap over videos, "
            f"95%; McNemar p = {p:.2g}): a difference {shown}."]


def hardened(evaluation: dict, stages: dict, decided: list[dict] | None, benchmark: str) -> list[str]:
    """Patent CN116665282A: the gated hardened model against static PGD-AT, TRADES, natural training then PGD-AT and
    the clean model, with clean, PGD and worst-case robust accuracy on ``benchmark``, its claims, and its training time
    against PGD-AT's."""
    out = []
    for variant in ("adversarial", "pgd_at", "trades", "natural_then_at", "supervised"):
        acc, robust = _acc(evaluation, variant, benchmark), _robust(evaluation, variant, benchmark)
        if acc is None:
            out.append(f"{variant}: not evaluated on {benchmark}.")
            continue
        text = f"{variant} on {benchmark}: clean {acc[0]:.3f}, robust accuracy under PGD-L∞ at 4/255 "
        text += "n/a" if robust is None else f"{robust:.3f}"
        worst = worst_case(evaluation, variant, benchmark)
        if worst:
            text += f", worst case over {', '.join(worst['attacks'])} {worst['value']:.3f}"
        m = stages.get(variant, {})
        if "adversarial_fraction" in m:
            text += f"; regularizer on for {100 * m['adversarial_fraction']:.0f}% of steps, {m.get('switches')} switches"
        if "train_seconds" in m:
            text += f"; trained in {m['train_seconds']:.0f} s"
        out.append(text + ".")
    out += claims(decided, "hardened", benchmark)
    gated, static = stages.get("adversarial", {}), stages.get("pgd_at", {})
    if gated.get("train_seconds") and static.get("train_seconds"):
        ratio = gated["train_seconds"] / static["train_seconds"]
        out.append(f"Training time against static PGD-AT: {ratio:.2f}x (target at most 0.7x: "
                   f"{'met' if ratio <= 0.7 else 'missed'}; one run of each on this machine, no interval).")
    return out


def label_study(study: dict) -> list[str]:
    """The label-fraction study (the study file of ``make label-study``): per init, the data it ran on and, per label
    fraction, semi-supervised against supervised-only with the paired test over seeds and its verdict."""
    out = []
    for init, entry in study.items():
        data, counts = entry["data"], entry["data"]["counts"]
        out.append(f"Label study from {init} ({entry['command']}, {entry['date']}): {data['source']['kind']} "
                   f"{data['source'].get('path') or ''}, {counts['identities']} identities, {counts['images']} images, "
                   f"cut as {data['geometry']}; test pairs of its {counts.get('test_identities', '?')} held-out identities.")
        for fraction, r in sorted(entry["fractions"].items(), key=lambda kv: float(kv[0])):
            lo, hi = r["ci"]
            out.append(f"{init}, label fraction {fraction} ({r['labelled_images']} labelled, {r['unlabelled_images']} "
                       f"unlabelled): semi-supervised {r['semisupervised']:.3f} against supervised-only "
                       f"{r['supervised']:.3f}, difference {100 * r['difference']:+.1f} points [{100 * lo:+.1f}, "
                       f"{100 * hi:+.1f}] (paired over {r['pairs']} pairs and seeds {', '.join(map(str, r['seeds']))}; "
                       f"sign-flip p = {r['p_value']:.2g}): {r['verdict']}.")
    return out


def gate_front(pareto: dict) -> list[str]:
    """Where the gated model lies on the cost-robustness front (:func:`benchmark.report.pareto.gate_pareto`): on
    validation pairs, this run's gated and natural_then_at points (or, where the run did not score them there, the
    sweep's points at the run's settings) against the others, the sweep's choices, and this run's adversarial stages
    on the test pairs with intervals."""
    rows, out = pareto["rows"], []
    sweep = pareto["sweep"]
    if not sweep["used"]:
        out.append(f"Gate sweep: not shown here ({sweep['reason']}); the front holds only this run's stages that were "
                   "scored on the validation worst case.")
    else:
        for c in sweep["choice"].values():
            out.append(f"The sweep ({sweep['command']}) chose {c['variant']}.{c['knob']} = {c['chosen']:g} on validation "
                       f"pairs among {', '.join(f'{v:g}' for v in c['settings'])} ({c['rule']}).")
    if sweep.get("differs"):
        out.append(f"The sweep's points at this run's settings are not this run's models ({'; '.join(sweep['differs'])}): "
                   "the sweep ran with other code or settings, so the front below is the sweep's, not this run's; rerun "
                   "`make gate-sweep`.")
    # this run's own point where it has one, else the sweep's point at this run's setting
    placed = [r for r in rows if r["variant"] in KNOBS and
              (r["source"] == "run" or r.get("run_setting"))]
    for r in placed:
        static = next((o for o in rows if o["variant"] == "pgd_at" and o["source"] == r["source"]), None)
        lo, hi = r["worst_case_ci"]
        knob = f"threshold {r['threshold']:g}" if r["variant"] == "adversarial" else f"switch {r['switch']:g}"
        ratio = f" ({r['passes'] / static['passes']:.2f}x PGD-AT's {static['passes']})" if static else ""
        where = "on the front" if r["on_front"] else f"off the front (dominated by {', '.join(r['dominated_by'])})"
        out.append(f"{r['variant']} ({knob}, {'this run' if r['source'] == 'run' else 'the sweep'}) on validation pairs: "
                   f"worst-case robust accuracy {r['worst_case_robust_accuracy']:.3f} [{lo:.3f}, {hi:.3f}] ({r['n']} "
                   f"pairs), clean {r['clean_accuracy']:.3f}, {r['passes']} passes{ratio}: {where} of passes; one seed, "
                   "and a point whose interval overlaps the front's is not shown to differ.")
    for r in pareto["test"]:
        if r["worst_case_robust_accuracy"] is None:
            continue
        lo, hi = r["worst_case_ci"]
        out.append(f"{r['variant']} on the test pairs of {pareto['benchmark']}: worst case {r['worst_case_robust_accuracy']:.3f} "
                   f"[{lo:.3f}, {hi:.3f}] ({r['n']} pairs), clean {r['clean_accuracy']:.3f}, {r['passes']} passes, "
                   f"{r['seconds']:.0f} s of training.")
    return out


def federated(fed: dict | None, decided: list[dict] | None, benchmark: str) -> list[str]:
    """Knowledge federation: the encrypted modes' HE cost and their measurement in deployment mode when there is one,
    their claims against plaintext FedAvg and plaintext
    FedAvg's against centralized training (decided on ``benchmark``), the institutions' differential privacy (epsilon
    or off), and the gradient-inversion measurement."""
    if not fed:
        return ["The federated stage did not run."]
    out = []
    for mode in ("third_party", "blind"):
        m = fed.get(mode)
        if m and m.get("encrypt_seconds"):
            rounds = len(m["encrypt_seconds"])
            he = sum(map(sum, (m["encrypt_seconds"], m["aggregate_seconds"], m["decrypt_seconds"]))) / rounds
            out.append(f"{mode}: {he:.1f} s of encryption work and {sum(m['bytes_sent']) / rounds / 1e6:.0f} MB sent "
                       "per round.")
        if m and m.get("deployment"):
            d = m["deployment"]
            out.append(f"{mode} in deployment mode ({d['command']}, {d['date']}; "
                       f"{'these' if d['same_settings'] else 'other'} federated settings): rounds of "
                       f"{', '.join(f'{s:.0f}' for s in d['round_wall_seconds'])} s wall time carrying "
                       f"{', '.join(f'{b / 1e6:.0f}' for b in d['bytes_on_wire'])} MB on the SuperNodes' links.")
    out += claims(decided, "federated", benchmark)
    dp = next((m["dp_epsilon"] for m in fed.values() if isinstance(m, dict) and m.get("dp_epsilon")), None)
    out.append(f"Differential privacy at the institutions: each update clipped to L2 norm {dp['clip']:g} with Gaussian "
               f"noise multiplier {dp['noise_multiplier']:g}; epsilon per institution {dp['per_round']:.2f} a round, "
               f"{dp['cumulative'][-1]:.2f} after {len(dp['cumulative'])} rounds (delta {dp['delta']:g})." if dp else
               "No differential privacy at the institutions (federated.dp off): an update's protection is its encryption alone.")
    if fed.get("privacy"):
        out.append(inversion(fed["privacy"]))
    return out


def inversion(privacy: dict) -> str:
    """The gradient-inversion measurement (federated.json's ``privacy``), its verdict worded from its numbers: faces
    the recognizer re-identifies, images closer to the faces than the random start (by :data:`RECOVERY_DB` or
    more), the faces' structure only (SSIM up by :data:`STRUCTURE_SSIM` or more), or nothing."""
    p = privacy
    text = (f"Gradient inversion ({p['threat']} attacker) of the update institution {p['institution']} ships after a "
            f"round of local training ({p['steps']} {p['optimizer']} step(s) over {p['faces']} of its faces, "
            f"{p['batch_size']} a step): PSNR {p['psnr_plaintext']:.1f} dB, SSIM {p['ssim_plaintext']:.2f} against the "
            f"originals (the random start: {p['psnr_start']:.1f} dB, {p['ssim_start']:.2f}); the recognizer "
            f"re-identifies {100 * p['reidentified_plaintext']:.0f}% of the reconstructions and "
            f"{100 * p['reidentified_originals']:.0f}% of the originals. ")
    if p["reidentified_plaintext"] > 0:
        return text + "It recovers faces the recognizer names: whoever sees an individual update sees its faces."
    if p["psnr_plaintext"] - p["psnr_start"] >= RECOVERY_DB:
        return text + "It recovers images closer to the faces than its random start, none of which the recognizer names."
    untested = (" That is this attack at these settings, not proof that the update leaks nothing: attacks that also use "
                "the update's BatchNorm statistics, or far more iterations, were not run.")
    if p["ssim_plaintext"] - p["ssim_start"] >= STRUCTURE_SSIM:
        return text + ("Pixel for pixel it is no closer to the faces than its random start, but its structure is (SSIM): "
                       "the reconstructions carry outlines of the faces in noise (see the figure), none of which the "
                       "recognizer names." + untested)
    return text + "It recovers nothing closer to the faces than its random start." + untested


def robustness(evaluation: dict, benchmark: str) -> list[str]:
    """Which variants resist PGD-L-inf at 4/255 on ``benchmark``, how precisely (the pairs and the widest interval),
    and which variants' worst case over the L-inf attacks lies more than :data:`MASKING_GAP` below their PGD figure
    (gradient masking: PGD's gradients mislead it)."""
    ranked = sorted((r, v) for v in evaluation if (r := _robust(evaluation, v, benchmark)) is not None)
    if not ranked:
        return [f"No robustness result on {benchmark}."]
    checks = [worst_case(evaluation, v, benchmark) for _, v in ranked]
    half = max((c[HEADLINE_ATTACK]["ci"][1] - c[HEADLINE_ATTACK]["ci"][0]) / 2 for c in checks)
    masked = [f"{v} ({r:.3f} under PGD, {c['value']:.3f} worst case)" for (r, v), c in zip(ranked, checks)
              if r - c["value"] > MASKING_GAP]
    return [f"On {benchmark}, robust accuracy under PGD-L∞ at 4/255 ranges from {ranked[0][0]:.3f} ({ranked[0][1]}) to "
            f"{ranked[-1][0]:.3f} ({ranked[-1][1]}); with {max(c['n'] for c in checks)} attacked pairs per variant each "
            f"figure is known to ±{100 * half:.0f} points at worst (Wilson 95%): closer variants are not told apart.",
            f"The worst case over {', '.join(checks[0]['attacks'])} on the same pairs flags gradient masking (more than "
            f"{100 * MASKING_GAP:.0f} points below PGD's robust accuracy) in: " + ("; ".join(masked) or "none") + "."]


def _min_perturbation(evaluation: dict, variant: str, benchmark: str) -> float | None:
    r = evaluation.get(variant, {}).get(benchmark, {}).get("robustness", {}).get(HEADLINE_ATTACK, {})
    return r.get("median_min_perturbation", {}).get("dodging")


def pretrained(evaluation: dict, comparisons: dict | None, run: dict | None, decided: list[dict] | None,
               benchmark: str) -> list[str]:
    """The pretrained reference (the converted FaceNet as is) on ``benchmark``: its accuracy and robustness against
    RobFR's yardstick, each variant against it with the paired test of ``comparisons.json``, and the fine-tuned
    variants' claim (no worse than it by more than their own fold std) from findings.json."""
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
        if _acc(evaluation, variant, benchmark) is None:
            continue
        lo, hi = c["ci"]
        text.append(f"{variant} − {reference}: {100 * c['difference']:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] "
                    f"(paired bootstrap over {c['pairs']} pairs, 95%), McNemar p = {c['p_value']:.2g}.")
    return text + [claim_sentence(f) for f in decided or [] if f["source"] == "pretrained" and f["benchmark"] == benchmark]
