"""Collect DVC experiments into tables: the headline figures over training seeds (``make seeds``); ``make tune``
reads the same runs (:mod:`benchmark.report.tuning`).

``dvc exp show --json`` nests runs (workspace, commits, experiments, queued ones) several levels deep;
:func:`runs` walks it and keeps every run that has both params and metrics, so the parser does not
depend on the exact nesting. :func:`seed_table` is a pure function of those runs.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any, Iterator


from benchmark.errors import DataError
from benchmark.report.headline import SEED_FIGURES, headline_rows

WORKSPACE = "workspace"  # the name :func:`runs` gives the workspace's run


def exp_show_json(cwd: str = ".", all_commits: bool = True) -> Any:
    """The output of ``dvc exp show --json`` run with this Python's DVC: with ``all_commits`` the experiments of
    every commit, newest first (a study run before a later commit still counts), else the workspace's and those
    of the current commit (a sweep of this code alone). DataError with DVC's last line if it fails."""
    command = [sys.executable, "-m", "dvc", "exp", "show", "--json", *(["--all-commits"] if all_commits else [])]
    out = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if out.returncode:
        raise DataError(f"dvc exp show failed: {(out.stderr.strip().splitlines() or ['no message'])[-1]}")
    return json.loads(out.stdout)


def runs(tree: Any) -> Iterator[dict]:
    """Every ``{"name", "params", "metrics"}`` found in a ``dvc exp show --json`` tree, but for experiments still
    queued or running (DVC shows them with the workspace's metrics) or failed."""
    if isinstance(tree, list):
        for item in tree:
            yield from runs(item)
    elif isinstance(tree, dict):
        if (tree.get("executor") or {}).get("state", "success") != "success":
            return
        data = tree.get("data")
        if isinstance(data, dict) and data.get("params") and data.get("metrics"):
            params = data["params"].get("params.yaml", {}).get("data", {})
            metrics = {path: entry.get("data", {}) for path, entry in data["metrics"].items()}
            yield {"name": tree.get("name") or tree.get("rev"), "params": params, "metrics": metrics}
        for value in tree.values():
            if isinstance(value, (list, dict)):
                yield from runs(value)


def _evaluation(run: dict) -> dict | None:
    return next((m for path, m in run["metrics"].items() if path.endswith("metrics/evaluation.json")), None)


def _without_seed(params: dict) -> dict:
    return {key: value for key, value in params.items() if key != "seed"}


def seed_table(found: list[dict]) -> dict:
    """The headline figures over training seeds, from the workspace's run (the single-seed run the headline table
    shows) and every run whose params.yaml equals the workspace's but for ``seed`` (data.seed included: the same
    faces and pairs); a seed found twice keeps its first run: the workspace, then in ``dvc exp show`` order (newest
    commit first, a commit's own run before its experiments).

    Returns ``{"benchmark", "single_seed", "seeds", "rows"}``: ``benchmark`` the headline set (the first of
    data.benchmarks), ``single_seed`` the workspace's seed, ``seeds`` every seed found (sorted), ``rows`` one per
    variant of the workspace's evaluation.json: ``{"variant", <figure>: {"mean", "std", "n", "seeds", "single"}}``
    for each figure of :data:`~benchmark.report.headline.SEED_FIGURES`: mean and sample standard deviation (ddof
    1) over the ``n`` seeds ``seeds`` that have the value, and the single-seed run's value. DataError when the
    workspace has no evaluation or no other seed matches it."""
    reference = next((run for run in found if run["name"] == WORKSPACE and _evaluation(run)), None)
    if reference is None:
        raise DataError("dvc exp show has no workspace run with reports/metrics/evaluation.json: run `make repro` first")
    same = _without_seed(reference["params"])
    evaluations: dict[int, dict] = {}
    for run in found:
        if _evaluation(run) and _without_seed(run["params"]) == same:
            evaluations.setdefault(run["params"]["seed"], _evaluation(run))
    single = reference["params"]["seed"]
    if len(evaluations) < 2:
        raise DataError(f"only seed {single} (the workspace) has runs with the workspace's params: run `make seeds`")
    benchmark = reference["params"]["data"]["benchmarks"][0]["name"]
    by_seed = {seed: {row["variant"]: row for row in headline_rows(evaluation, {}, None, benchmark)}
               for seed, evaluation in sorted(evaluations.items())}
    rows = []
    for variant in by_seed[single]:
        row = {"variant": variant}
        for key, _ in SEED_FIGURES:
            values = {seed: got[variant][key] for seed, got in by_seed.items() if got.get(variant, {}).get(key) is not None}
            row[key] = {"mean": statistics.mean(values.values()) if values else None,
                        "std": statistics.stdev(values.values()) if len(values) > 1 else None,
                        "n": len(values), "seeds": list(values), "single": values.get(single)}
        rows.append(row)
    return {"benchmark": benchmark, "single_seed": single, "seeds": list(by_seed), "rows": rows}
