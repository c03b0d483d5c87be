"""The runs found in a ``dvc exp show --json``-shaped tree (what make seeds and make tune read)."""

import pytest

from benchmark.report.experiments import runs


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
    found = list(runs(tree))
    # queued and running experiments are left out: they carry no metrics of their own
    assert [r["name"] for r in found] == ["workspace", "exp-a", "exp-b"]
    assert found[1]["params"]["data"]["protocol"]["label_fraction"] == 0.05 and found[2]["params"]["semisupervised"]["g"] == 0.6
    assert found[1]["metrics"]["reports/metrics/semisupervised.json"]["verification"]["accuracy_mean"] == pytest.approx(0.70)
