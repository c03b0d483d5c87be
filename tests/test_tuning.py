"""The validation sweep's table and choices (make tune), from runs as ``experiments.runs`` yields them."""

import copy

import pytest

from benchmark.report.tuning import choices, tuning_table

DEFAULTS = {
    "seed": 0,
    "data": {"image_size": 64},
    "evaluate": {"robustness": {"pairs": 32}},
    "adversarial": {"threshold": 6.0, "beta": 6.0, "gamma": 1.0, "max_epochs": 10, "patience": 10},
    "semisupervised": {"g": 0.75},
    "timm_reference": {"backbone": "resnet18"},
}


def run(name, clean, robust=None, **changes):
    params = copy.deepcopy(DEFAULTS)
    for key, value in changes.items():
        section, knob = key.split("__")
        params[section][knob] = value
    validation = {"accuracy": clean, "threshold": 0.3, "pairs": 2000}
    if robust is not None:
        validation["robust_accuracy"] = {"value": robust, "n": 1000}  # as dvc exp show gives it: no list
    stage = "adversarial" if robust is not None else ("semisupervised" if "semisupervised__g" in changes else "timm_reference")
    return {"name": name, "params": params, "metrics": {f"reports/metrics/{stage}.json": {"validation": validation}}}


def test_each_run_lands_in_the_rows_of_the_one_knob_it_moves_and_the_default_in_every_knob():
    # Prepare: the default run, one run per knob, a run moving two knobs, a run at another seed, a stale run
    default = run("default", 0.88, 0.60)
    default["metrics"]["reports/metrics/semisupervised.json"] = {"validation": {"accuracy": 0.85, "pairs": 2000}}
    found = [
        run("t4", 0.90, 0.50, adversarial__beta=4),
        run("t8", 0.86, 0.70, adversarial__beta=8.0),
        run("e15", 0.89, 0.62, adversarial__max_epochs=15, adversarial__patience=15),
        run("two", 0.99, 0.99, adversarial__beta=4, adversarial__gamma=0.5),
        {**run("seed1", 0.99, 0.99), "params": {**DEFAULTS, "seed": 1}},
        run("stale", 0.99, None, adversarial__gamma=2.0) | {"metrics": {"reports/metrics/adversarial.json": {"validation": {"accuracy": 0.99, "pairs": 2000}}}},
        run("g9", 0.87, semisupervised__g=0.9),
        default,
    ]
    # Execute
    table = tuning_table(found, DEFAULTS)
    # Assert
    beta = table[table["knob"] == "beta"]
    assert beta["value"].tolist() == [4, 6.0, 8.0] and beta["name"].tolist() == ["t4", "default", "t8"]
    assert beta["score"].tolist() == pytest.approx([0.70, 0.74, 0.78])
    assert table[table["knob"] == "max_epochs"]["name"].tolist() == ["default", "e15"]
    assert table[table["knob"] == "gamma"]["name"].tolist() == ["default"]  # the stale run has no robust score
    g = table[table["knob"] == "g"]
    assert g["name"].tolist() == ["default", "g9"] and g["val_robust_accuracy"].isna().all()
    assert "two" not in table["name"].tolist() and "seed1" not in table["name"].tolist()
    assert "threshold" not in table["knob"].tolist()  # the gate's threshold is make gate-sweep's (docs/gate_sweep.json)
    lo, hi = beta["val_robust_ci"].iloc[0]
    assert lo < 0.50 < hi and hi - lo == pytest.approx(0.062, abs=0.002)  # Wilson 95% on 1000 pairs


def test_choices_move_a_default_only_when_the_best_score_beats_it_by_more_than_its_interval():
    # Prepare: beta 8 beats the default by 4 points, gamma 2 by 0.5 (the default's half-width is about 1.6)
    table = tuning_table([run("b4", 0.90, 0.50, adversarial__beta=4), run("b8", 0.90, 0.70, adversarial__beta=8),
                          run("c2", 0.89, 0.61, adversarial__gamma=2.0), run("default", 0.88, 0.60)], DEFAULTS)
    # Execute
    chosen = choices(table).set_index("knob")
    # Assert
    assert 0.014 < chosen.loc["beta", "halfwidth"] < 0.018
    assert chosen.loc["beta", "moved"] and chosen.loc["beta", "chosen"] == 8
    assert chosen.loc["gamma", "best"] == 2.0 and not chosen.loc["gamma", "moved"] and chosen.loc["gamma", "chosen"] == 1.0
    assert chosen.loc["beta", "settings"] == 3 and chosen.loc["max_epochs", "settings"] == 1
