"""The headline figures over training seeds (``make seeds``), from a ``dvc exp show --json``-shaped tree."""

import copy
import json
import subprocess
import sys

import pytest
import yaml

from benchmark import cli
from benchmark.errors import DataError
from benchmark.report.experiments import runs, seed_table
from benchmark.report.headline import SEED_FIGURES, seed_block, seed_cell, seed_markdown

PARAMS = {"seed": 0, "data": {"seed": 0, "protocol": {"label_fraction": 0.25},
                              "benchmarks": [{"name": "heldout", "format": "split"}, {"name": "lfw", "format": "lfw_pairs"}]},
          "supervised": {"lr": 0.002}}


def result(acc, tar, robust, worst):
    return {"verification": {"accuracy_mean": acc, "accuracy_std": 0.02, "tar_at_far_1e-3": tar},
            "robustness": {"worst_case_robust_accuracy": {"eps_4": {"value": worst, "n": 256,
                                                                    "pgd_linf": {"value": robust}}}}}


def evaluation(acc, robust, adversarial_robust=0.6):
    # Each variant on the headline set and on a second set whose numbers must not leak into the table.
    return {"supervised": {"heldout": result(acc, 0.2, robust, robust - 0.01), "lfw": result(0.5, 0.1, 0.1, 0.1)},
            "adversarial": {"heldout": result(acc - 0.01, 0.1, adversarial_robust, adversarial_robust),
                            "lfw": result(0.5, 0.1, 0.1, 0.1)}}


def run(name, seed, metrics, **changes):
    params = copy.deepcopy(PARAMS)
    params["seed"] = seed
    for section, values in changes.items():
        params[section].update(values)
    return {"rev": name, "name": name,
            "data": {"params": {"params.yaml": {"data": params}},
                     "metrics": {"reports/metrics/evaluation.json": {"data": metrics},
                                 "reports/metrics/data.json": {"data": {"images": 10}}}}}


def exp_show(*experiments, workspace=None, head=None):
    """The shape of ``dvc exp show --all-commits --json``: the workspace, then a commit with its experiments (the
    commit's own run, seed 0, comes before them)."""
    head = head or run("abc123", 0, evaluation(0.50, 0.50))
    head["name"] = "main"
    return [{**(workspace or run("workspace", 0, evaluation(0.90, 0.30))), "experiments": None},
            {**head, "experiments": [{"revs": [e], "name": e["name"]} for e in experiments]}]


def test_mean_std_and_seeds_over_the_matching_runs_beside_the_workspace_value():
    # Prepare: seeds 1 and 2 match the workspace but for `seed`; an older seed-0 run, a run with another
    # label_fraction, one with another data seed (other faces and pairs) and a queued one do not count.
    tree = exp_show(run("exp-s2", 2, evaluation(0.88, 0.40)),
                    run("exp-s1", 1, evaluation(0.86, 0.20, adversarial_robust=None)),
                    run("exp-other", 1, evaluation(0.10, 0.10), data={"protocol": {"label_fraction": 0.1}}),
                    run("exp-data", 2, evaluation(0.10, 0.10), data={"seed": 1}),
                    {"rev": "q", "name": "exp-queued", "data": {"params": {"params.yaml": {"data": PARAMS}}, "metrics": None}})
    # Execute
    table = seed_table(list(runs(tree)))
    # Assert: 0.90, 0.86, 0.88 -> 0.88 +- 0.02; 0.30, 0.20, 0.40 -> 0.30 +- 0.10 (ddof 1)
    assert table["benchmark"] == "heldout" and table["single_seed"] == 0 and table["seeds"] == [0, 1, 2]
    rows = {row["variant"]: row for row in table["rows"]}
    assert list(rows) == ["supervised", "adversarial"]
    acc = rows["supervised"]["accuracy"]
    assert acc["mean"] == pytest.approx(0.88) and acc["std"] == pytest.approx(0.02)
    assert acc["n"] == 3 and acc["seeds"] == [0, 1, 2] and acc["single"] == 0.90
    robust = rows["supervised"]["robust_accuracy"]
    assert robust["mean"] == pytest.approx(0.30) and robust["std"] == pytest.approx(0.10) and robust["single"] == 0.30
    assert rows["supervised"]["worst_case_robust_accuracy"]["mean"] == pytest.approx(0.29)
    assert rows["supervised"]["tar_at_far_1e-3"] == {"mean": pytest.approx(0.2), "std": pytest.approx(0.0), "n": 3,
                                                     "seeds": [0, 1, 2], "single": 0.2}
    # seed 1 has no robust accuracy for adversarial: two seeds stand behind it
    adv = rows["adversarial"]["robust_accuracy"]
    assert adv["n"] == 2 and adv["seeds"] == [0, 2] and adv["mean"] == pytest.approx(0.6) and adv["std"] == pytest.approx(0.0)


def test_the_workspace_is_the_single_seed_run_whatever_its_seed():
    tree = exp_show(run("exp-s0", 0, evaluation(0.80, 0.30)), workspace=run("workspace", 3, evaluation(0.84, 0.30)),
                    head=run("abc123", 0, evaluation(0.50, 0.50), supervised={"lr": 0.1}))
    table = seed_table(list(runs(tree)))
    assert table["single_seed"] == 3 and table["seeds"] == [0, 3]
    assert table["rows"][0]["accuracy"]["single"] == 0.84 and table["rows"][0]["accuracy"]["mean"] == pytest.approx(0.82)


def test_a_workspace_without_other_seeds_or_without_metrics_is_a_one_line_error():
    with pytest.raises(DataError, match=r"only seed 0 \(the workspace\) has runs .*: run `make seeds`"):
        seed_table(list(runs(exp_show(run("exp-other", 1, evaluation(0.8, 0.3), supervised={"lr": 0.1})))))
    with pytest.raises(DataError, match="no workspace run with reports/metrics/evaluation.json: run `make repro` first"):
        seed_table(list(runs(exp_show(workspace={"rev": "workspace", "data": {"params": {}, "metrics": None}}))))


def test_seed_block_tables_mean_std_and_the_single_value_and_says_how_many_seeds():
    table = seed_table(list(runs(exp_show(run("exp-s2", 2, evaluation(0.88, 0.40)),
                                          run("exp-s1", 1, evaluation(0.86, 0.20, adversarial_robust=None))))))
    block = seed_block(table, 0)
    assert block["sentence"].startswith("Over 3 seeds (0, 1, 2): mean ± std beside the single-seed value (seed 0")
    assert "Each figure stands on 3 training and evaluation runs" in block["sentence"]
    assert block["columns"] == ["variant", *(f"{title}: mean ± std (seed 0)" for _, title in SEED_FIGURES)]
    assert block["rows"][0] == ["supervised", "0.880 ± 0.020 (0.900)", "0.200 ± 0.000 (0.200)", "0.300 ± 0.100 (0.300)",
                                "0.290 ± 0.100 (0.290)"]
    assert block["rows"][1][3] == "0.600 ± 0.000 (0.600) [2 seeds]"
    assert "| supervised | 0.880 ± 0.020 (0.900) |" in seed_markdown(block)


def test_seed_cell_without_a_spread_or_a_value():
    assert seed_cell({"mean": 0.5, "std": None, "n": 1, "seeds": [1], "single": None}, 2) == "0.500 (n/a) [1 seed]"
    assert seed_cell({"mean": None, "std": None, "n": 0, "seeds": [], "single": None}, 2) == "n/a"


def test_without_seed_runs_the_block_says_the_figures_are_single_seed():
    block = seed_block(None, 0)
    assert block["rows"] == [] and "one run, training seed 0" in block["sentence"] and "`make seeds`" in block["sentence"]
    assert seed_markdown(block) == f"### Over training seeds\n\n{block['sentence']}\n"


# A one-stage DVC pipeline whose evaluation.json depends on the training seed only: what `facebench seeds` reads.
EVALUATE = """import json, pathlib, yaml
seed = yaml.safe_load(open("params.yaml"))["seed"]
result = {"verification": {"accuracy_mean": 0.8 + seed / 100, "tar_at_far_1e-3": 0.1}}
pathlib.Path("reports/metrics").mkdir(parents=True, exist_ok=True)
pathlib.Path("reports/metrics/evaluation.json").write_text(json.dumps({"supervised": {"heldout": result}}))
"""


@pytest.mark.slow
def test_facebench_seeds_tables_real_dvc_experiments(tmp_path, monkeypatch, capsys):
    # Prepare: a git + DVC repository, its workspace run (seed 0) and one experiment per other seed
    def sh(*cmd):
        subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True, text=True)

    params = {"seed": 0, "data": {"seed": 0, "benchmarks": [{"name": "heldout", "format": "split"}]}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "evaluate.py").write_text(EVALUATE)
    stage = {"cmd": f"{sys.executable} evaluate.py", "deps": ["evaluate.py"], "params": ["seed", "data"],
             "metrics": [{"reports/metrics/evaluation.json": {"cache": False}}]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"evaluate": stage}}))
    dvc = (sys.executable, "-m", "dvc")
    sh("git", "init", "-q")
    sh(*dvc, "init", "-q")
    sh(*dvc, "repro")
    sh("git", "add", "-A")
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", "seed 0")
    for seed in (1, 2):
        sh(*dvc, "exp", "run", "--temp", "-S", f"seed={seed}")
    sh(*dvc, "exp", "run", "--temp", "-S", "seed=3", "-S", "data.seed=1")  # other data: not a seed run
    monkeypatch.chdir(tmp_path)
    # Execute
    code = cli.main(["seeds"])
    # Assert: 0.80, 0.81, 0.82 -> 0.81 +- 0.01
    assert code == 0 and "wrote reports/metrics/seeds.json: 3 seeds (0, 1, 2) on heldout" in capsys.readouterr().out
    table = json.loads((tmp_path / "reports/metrics/seeds.json").read_text())
    accuracy = table["rows"][0]["accuracy"]
    assert table["seeds"] == [0, 1, 2] and accuracy["single"] == pytest.approx(0.80)
    assert accuracy["mean"] == pytest.approx(0.81) and accuracy["std"] == pytest.approx(0.01)
    assert table["rows"][0]["robust_accuracy"] == {"mean": None, "std": None, "n": 0, "seeds": [], "single": None}


def test_facebench_seeds_outside_a_dvc_repository_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["seeds"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facebench seeds: error: dvc exp show failed: ") and err.count("\n") == 1
