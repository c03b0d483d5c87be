"""The label-fraction study table, from a ``dvc exp show --json``-shaped tree."""

import pytest

from benchmark.report.experiments import runs, study_table


def run(name, fraction, g, sup, semi):
    metric = lambda acc: {"data": {"verification": {"accuracy_mean": acc, "accuracy_std": 0.01}}}  # noqa: E731
    return {
        "rev": name,
        "name": name,
        "data": {
            "params": {"params.yaml": {"data": {"data": {"protocol": {"label_fraction": fraction}}, "semisupervised": {"g": g}}}},
            "metrics": {"reports/metrics/supervised.json": metric(sup), "reports/metrics/semisupervised.json": metric(semi),
                        "reports/metrics/data.json": {"data": {"images": 10}}},
        },
    }


def test_runs_are_found_at_any_depth_and_tabled():
    tree = [
        {**run("workspace", 0.25, 0.75, 0.80, 0.82), "experiments": None},
        {"rev": "abc", "data": {"params": {}, "metrics": {}}, "experiments": [
            {"revs": [run("exp-a", 0.05, 0.75, 0.60, 0.70)]},
            {"revs": [run("exp-b", 0.25, 0.6, 0.80, 0.81)]},
            {"revs": [{"rev": "queued", "name": "exp-c", "data": {"params": {}, "metrics": None}}]},
            {"revs": [run("exp-d", 0.5, 0.75, 0.1, 0.1)], "executor": {"state": "running"}},  # workspace metrics
        ]},
    ]
    table = study_table(list(runs(tree)))
    assert table["name"].tolist() == ["exp-b", "exp-a", "workspace"]
    assert table.loc[table["name"] == "exp-a", "gain"].item() == pytest.approx(0.10)
    assert table.loc[table["name"] == "exp-b", "g"].item() == 0.6


def test_runs_missing_a_stage_are_left_out():
    partial = run("exp-x", 0.1, 0.75, 0.7, 0.7)
    del partial["data"]["metrics"]["reports/metrics/semisupervised.json"]
    assert study_table(list(runs([partial]))).empty
