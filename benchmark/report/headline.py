"""The report's headline tables: one per benchmark set (the headline set first), one row per variant; pure
functions of the pipeline's metrics.

Inputs are the parsed metrics files, passed in as plain dicts (no I/O here):

* ``evaluation``: ``reports/metrics/evaluation.json``, ``{variant: {benchmark_set: {"verification": {...},
  "identification": {...}, "robustness": {attack: {"eps_4": {...}, "median_min_perturbation": {...}},
  "worst_case_robust_accuracy": {"eps_4": {"value", "ci", "n", "attacks", "pgd_linf": {"value", "ci"}}}}}}}``, the
  sets in params.yaml order (the first is the headline set);
* ``stages``: ``{variant: <reports/metrics/<variant>.json>}`` for the training stages (``train_seconds``);
* ``federated``: ``reports/metrics/federated.json`` (``{mode: {...}}``) or None; its variants are named
  ``federated_<mode>`` in ``evaluation``; their training time is the sum over rounds of every institution's
  local training seconds (the compute a centralized run would spend), HE work apart;
* ``benchmarks``: the ``"benchmarks"`` block of ``reports/metrics/data.json`` (each set's ``format``) or None;
* ``run``: ``reports/metrics/evaluate_run.json`` (``{"variants": {variant: {"weights", ...}}}``: where each
  variant's weights came from) or None.

A value the pipeline did not produce is ``None`` and shows as "n/a": nothing is filled in by guess.
"""

from __future__ import annotations

import math
from typing import Any

from benchmark.evaluation.robustness_runner import HEADLINE_ATTACK, HEADLINE_EPS, WORST_CASE
from benchmark.report.benchmarks import set_title

FEDERATED_PREFIX = "federated_"

COLUMNS = (
    ("variant", "variant"),
    ("accuracy", "clean accuracy (10-fold mean ± std) [95% CI]"),
    ("tar_at_far_1e-3", "TAR @ FAR 1e-3 [95% CI]"),
    ("robust_accuracy", "robust accuracy, PGD-L∞ 4/255 [95% CI] (pairs)"),
    ("worst_case_robust_accuracy", "worst case of the L∞ attacks, 4/255 [95% CI]"),
    ("median_min_perturbation", "median minimal PGD-L∞ dodging perturbation (/255)"),
    ("train_seconds", "training time (s)"),
    ("he_seconds_per_round", "HE cost per round (s)"),
    ("he_megabytes_per_round", "ciphertext per round (MB)"),
    ("weights", "weights"),
)


def _get(tree: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None


def he_cost(mode_metrics: dict) -> tuple[float | None, float | None]:
    """Mean seconds (encrypt + aggregate + decrypt) and mean ciphertext megabytes sent per round of one
    encrypted federated mode; (None, None) for a mode without encryption."""
    parts = [mode_metrics.get(k) for k in ("encrypt_seconds", "aggregate_seconds", "decrypt_seconds")]
    if not all(parts):
        return None, None
    seconds = _mean([sum(r) for r in zip(*parts)])
    sent = mode_metrics.get("bytes_sent")
    return seconds, (_mean(sent) / 1e6 if sent else None)


def benchmark_sets(evaluation: dict) -> list[str]:
    """The benchmark sets of ``evaluation`` in the order they first appear: params.yaml order, headline set first."""
    return list(dict.fromkeys(name for sets in evaluation.values() for name in sets))


def headline_rows(evaluation: dict, stages: dict[str, dict], federated: dict | None, benchmark: str,
                  run: dict | None = None) -> list[dict]:
    """One dict per variant of ``evaluation`` (in its order) with the keys of :data:`COLUMNS`, measured on the
    benchmark set ``benchmark`` (training time, HE cost and weights do not depend on it)."""
    rows = []
    for variant, sets in evaluation.items():
        result = sets.get(benchmark)
        mode = variant[len(FEDERATED_PREFIX):] if variant.startswith(FEDERATED_PREFIX) else None
        fed = _get(federated, mode) if mode else None
        check = _get(result, "robustness", WORST_CASE, HEADLINE_EPS)
        min_pert = _get(result, "robustness", HEADLINE_ATTACK, "median_min_perturbation", "dodging")
        seconds, megabytes = he_cost(fed) if fed else (None, None)
        train_seconds = sum(fed["train_seconds"]) if fed and fed.get("train_seconds") else _get(stages, variant, "train_seconds")
        rows.append({
            "variant": variant,
            "weights": _get(run, "variants", variant, "weights"),
            "accuracy": _get(result, "verification", "accuracy_mean"),
            "accuracy_std": _get(result, "verification", "accuracy_std"),
            "accuracy_ci": _get(result, "verification", "accuracy_ci"),
            "tar_at_far_1e-3": _get(result, "verification", "tar_at_far_1e-3"),
            "tar_at_far_1e-3_ci": _get(result, "verification", "tar_at_far_1e-3_ci"),
            "tar_at_far_1e-3_reliable": _get(result, "verification", "tar_at_far_1e-3_reliable"),
            "robust_accuracy": _get(check, HEADLINE_ATTACK, "value"),
            "robust_accuracy_ci": _get(check, HEADLINE_ATTACK, "ci"),
            "robust_accuracy_n": _get(check, "n"),
            "worst_case_robust_accuracy": _get(check, "value"),
            "worst_case_robust_accuracy_ci": _get(check, "ci"),
            "median_min_perturbation": None if min_pert is None else min_pert * 255,
            "train_seconds": train_seconds,
            "he_seconds_per_round": seconds,
            "he_megabytes_per_round": megabytes,
        })
    return rows


def headline_tables(evaluation: dict, stages: dict[str, dict], federated: dict | None,
                    benchmarks: dict | None, run: dict | None = None) -> list[dict]:
    """``[{"name", "title", "rows"}]``: one table per benchmark set of ``evaluation``, the headline set first;
    ``title`` is :func:`~benchmark.report.benchmarks.set_title` with the format from ``benchmarks``, the first
    one marked "(headline set)"."""
    return [{"name": name,
             "title": set_title(name, _get(benchmarks, name, "format")) + (" (headline set)" if k == 0 else ""),
             "rows": headline_rows(evaluation, stages, federated, name, run)}
            for k, name in enumerate(benchmark_sets(evaluation))]


UNRELIABLE = "†"  # marks a TAR whose FAR rests on fewer than ten expected false accepts
UNRELIABLE_NOTE = (f"{UNRELIABLE} TAR at a FAR that rests on fewer than ten expected false accepts among the set's "
                   "impostor pairs: unreliable, its interval covers the genuine pairs' sampling only.")


def _interval(ci: list[float] | None) -> str:
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def format_cell(row: dict, key: str) -> str:
    """A headline cell as text: rates with their 95% interval (accuracy also with its fold std, robust accuracy
    with its pair count, an unreliable TAR marked :data:`UNRELIABLE`), numbers to 3 significant places, "n/a"
    when absent."""
    value = row.get(key)
    if value is None:
        return "n/a"
    if key in ("variant", "weights"):
        return str(value)
    if isinstance(value, float) and math.isinf(value):
        return "> budget"
    if key == "accuracy":
        std = row.get("accuracy_std")
        return (f"{value:.3f} ± {std:.3f}" if std is not None else f"{value:.3f}") + _interval(row.get("accuracy_ci"))
    if key == "tar_at_far_1e-3":
        flag = UNRELIABLE if row.get("tar_at_far_1e-3_reliable") is False else ""
        return f"{value:.3f}{_interval(row.get('tar_at_far_1e-3_ci'))}{flag}"
    if key == "robust_accuracy":
        n = row.get("robust_accuracy_n")
        return f"{value:.3f}{_interval(row.get('robust_accuracy_ci'))}" + (f" ({n})" if n else "")
    if key == "worst_case_robust_accuracy":
        return f"{value:.3f}{_interval(row.get('worst_case_robust_accuracy_ci'))}"
    if key == "median_min_perturbation":
        return f"{value:.2f}"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def markdown_grid(columns: list[str], cells: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table of ``columns`` and rows of ``cells`` (text)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def markdown_table(rows: list[dict]) -> str:
    """The headline rows as a GitHub-flavoured Markdown table."""
    return markdown_grid([title for _, title in COLUMNS], [[format_cell(row, key) for key, _ in COLUMNS] for row in rows])


def markdown_tables(tables: list[dict]) -> str:
    """:func:`headline_tables` as Markdown: each set's title as a heading, then its table (and
    :data:`UNRELIABLE_NOTE` under a table with an unreliable TAR)."""
    return "\n".join(f"### {t['title']}\n\n{markdown_table(t['rows'])}" + (f"\n{UNRELIABLE_NOTE}\n" if unreliable(t) else "")
                     for t in tables)


def unreliable(table: dict) -> bool:
    """Whether a headline table shows a TAR marked :data:`UNRELIABLE`."""
    return any(row.get("tar_at_far_1e-3_reliable") is False for row in table["rows"])


# The headline figures the seed table gives over training seeds (keys of :func:`headline_rows`, titles).
SEED_FIGURES = (
    ("accuracy", "clean accuracy"),
    ("tar_at_far_1e-3", "TAR @ FAR 1e-3"),
    ("robust_accuracy", "robust accuracy, PGD-L∞ 4/255"),
    ("worst_case_robust_accuracy", "worst case of the L∞ attacks, 4/255"),
)


def seed_cell(entry: dict, seeds: int) -> str:
    """One figure over seeds as text: ``0.895 ± 0.004 (0.896)``, mean ± std over seeds with the single-seed value in
    brackets ("n/a" where absent), ``[2 seeds]`` appended when fewer than the table's ``seeds`` runs have it."""
    if entry["mean"] is None:
        return "n/a"
    std = f" ± {entry['std']:.3f}" if entry["std"] is not None else ""
    single = "n/a" if entry["single"] is None else f"{entry['single']:.3f}"
    fewer = f" [{entry['n']} seed{'s' * (entry['n'] != 1)}]" if entry["n"] < seeds else ""
    return f"{entry['mean']:.3f}{std} ({single}){fewer}"


def seed_block(seeds: dict | None, seed: int) -> dict:
    """The report's figures over training seeds: ``{"sentence", "columns", "rows"}`` (rows of text) from
    ``reports/metrics/seeds.json`` (:func:`~benchmark.report.experiments.seed_table`); without it (None) the
    sentence says the figures are from the single training seed ``seed`` and there is no table."""
    if seeds is None:
        return {"sentence": f"Every figure is from one run, training seed {seed}: `make seeds` reruns training and "
                            "evaluation over more training seeds and adds their mean ± std here.",
                "columns": [], "rows": []}
    n, single = len(seeds["seeds"]), f"seed {seeds['single_seed']}"
    sentence = (f"Over {n} seeds ({', '.join(map(str, seeds['seeds']))}): mean ± std beside the single-seed value "
                f"({single}, the headline table's run) on {seeds['benchmark']}. Each figure stands on {n} training and "
                "evaluation runs of every variant with the same faces and test pairs (one data seed); std is the "
                "sample standard deviation over seeds.")
    columns = ["variant", *(f"{title}: mean ± std ({single})" for _, title in SEED_FIGURES)]
    rows = [[row["variant"], *(seed_cell(row[key], n) for key, _ in SEED_FIGURES)] for row in seeds["rows"]]
    return {"sentence": sentence, "columns": columns, "rows": rows}


def seed_markdown(block: dict) -> str:
    """:func:`seed_block` as Markdown: a heading, its sentence and, when there is one, its table."""
    table = f"\n{markdown_grid(block['columns'], block['rows'])}" if block["rows"] else ""
    return f"### Over training seeds\n\n{block['sentence']}\n{table}"
