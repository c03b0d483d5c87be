"""Collect DVC experiments into a table: the label-fraction and g study of the semi-supervised variant.

``dvc exp show --json`` nests runs (workspace, commits, experiments, queued ones) several levels deep;
:func:`runs` walks it and keeps every run that has both params and metrics, so the parser does not
depend on the exact nesting. :func:`study_table` is a pure function of those runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, Iterator

import pandas as pd

STUDY_STAGES = ("supervised", "semisupervised")


def exp_show_json(cwd: str = ".", all_commits: bool = True) -> Any:
    """The output of ``dvc exp show --json`` run with this Python's DVC: with ``all_commits`` the experiments of
    every commit, newest first (a study run before a later commit still counts), else the workspace's and those
    of the current commit (a sweep of this code alone)."""
    command = [sys.executable, "-m", "dvc", "exp", "show", "--json", *(["--all-commits"] if all_commits else [])]
    return json.loads(subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout)


def runs(tree: Any) -> Iterator[dict]:
    """Every ``{"name", "params", "metrics"}`` found in a ``dvc exp show --json`` tree."""
    if isinstance(tree, list):
        for item in tree:
            yield from runs(item)
    elif isinstance(tree, dict):
        data = tree.get("data")
        if isinstance(data, dict) and data.get("params") and data.get("metrics"):
            params = data["params"].get("params.yaml", {}).get("data", {})
            metrics = {path: entry.get("data", {}) for path, entry in data["metrics"].items()}
            yield {"name": tree.get("name") or tree.get("rev"), "params": params, "metrics": metrics}
        for value in tree.values():
            if isinstance(value, (list, dict)):
                yield from runs(value)


def study_table(found: list[dict]) -> pd.DataFrame:
    """One row per run with both training stages' metrics: label_fraction, g and their accuracies.

    Columns: name, label_fraction, g, supervised (10-fold accuracy), supervised_std, semisupervised,
    semisupervised_std, gain (semi minus supervised). Duplicate parameter settings keep the first
    (newest) run.
    """
    rows = []
    for run in found:
        acc = {}
        for stage in STUDY_STAGES:
            entry = next((m for path, m in run["metrics"].items() if path.endswith(f"metrics/{stage}.json")), None)
            if not entry or "verification" not in entry:
                break
            acc[stage] = entry["verification"]["accuracy_mean"]
            acc[f"{stage}_std"] = entry["verification"]["accuracy_std"]
        else:
            rows.append({
                "name": run["name"],
                "label_fraction": run["params"]["data"]["protocol"]["label_fraction"],
                "g": run["params"]["semisupervised"]["g"],
                **acc,
            })
    table = pd.DataFrame(rows, columns=["name", "label_fraction", "g", "supervised", "supervised_std", "semisupervised", "semisupervised_std"])
    table = table.drop_duplicates(subset=["label_fraction", "g"]).sort_values(["g", "label_fraction"]).reset_index(drop=True)
    table["gain"] = table["semisupervised"] - table["supervised"]
    return table
