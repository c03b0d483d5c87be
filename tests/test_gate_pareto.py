"""The gate's cost front (benchmark/report/pareto.py): which points dominate, the sweep's choice rule, and which rows
the report keeps."""

import pytest

from benchmark.report.findings import gate_front
from benchmark.report.pareto import choose, dominated_by, gate_pareto, point_name, stage_row

HASHES = {"faces_sha256": "f", "protocol_sha256": "p"}


def _metrics(passes, worst, clean=0.8, n=100, seconds=10.0, **knob):
    return {"passes": passes, "train_seconds": seconds, **knob,
            "validation": {"accuracy": clean, "pairs": 2000,
                           "worst_case_robust_accuracy": {"value": worst, "ci": [worst - 0.05, worst + 0.05], "n": n}}}


def _row(variant, passes, worst, clean=0.8, **knob):
    return stage_row(variant, _metrics(passes, worst, clean, **knob), 0, "sweep")


def test_a_point_is_dominated_only_by_one_no_costlier_and_no_less_robust_and_strictly_better_in_one():
    # Prepare: cheap-and-weak, dear-and-strong, a point worse than the strong one at the same cost, a tie
    rows = [_row("adversarial", 100, 0.3, threshold=2.0), _row("pgd_at", 400, 0.6),
            _row("trades", 400, 0.5), _row("adversarial", 100, 0.3, threshold=4.0)]
    # Execute
    better = dominated_by(rows)
    # Assert: the two ties do not dominate each other; trades is dominated by pgd_at alone
    assert better == [[], [], ["pgd_at"], []]
    assert point_name(rows[0]) == "adversarial 2" and point_name(rows[1]) == "pgd_at"
    assert dominated_by(rows, "seconds")[2] == ["pgd_at"]


def test_choose_takes_the_fewest_passes_within_the_best_scores_half_width():
    # Prepare: thresholds 2 and 4 within noise of each other, threshold 8 clearly worse
    rows = [_row("adversarial", 300, 0.50, threshold=2.0), _row("adversarial", 200, 0.48, threshold=4.0),
            _row("adversarial", 100, 0.20, threshold=8.0), _row("natural_then_at", 250, 0.5, switch=0.5)]
    # Execute
    choice = choose(rows, "adversarial")
    # Assert: 4 is cheaper than the best (2) and within its half-width; 8 is cheapest but scores far below
    assert choice["best"] == 2.0 and choice["chosen"] == 4.0 and choice["settings"] == [2.0, 4.0, 8.0]
    assert 0 < choice["halfwidth"] < 0.05 and choice["best_score"] == pytest.approx((0.8 + 0.5) / 2)
    assert choose(rows, "natural_then_at")["chosen"] == 0.5


def test_a_clear_winner_is_chosen_even_when_dearer():
    rows = [_row("adversarial", 300, 0.70, threshold=2.0), _row("adversarial", 100, 0.30, threshold=8.0)]
    assert choose(rows, "adversarial")["chosen"] == 2.0
    assert choose([], "adversarial") is None


def test_gate_pareto_keeps_a_sweep_of_the_same_data_and_names_why_it_drops_another():
    # Prepare: a sweep of two points, this run's four stages, an evaluation with a worst case for two of them
    sweep = {"command": "facebench gate-sweep", "data_hashes": HASHES, "choice": {"adversarial": {"chosen": 4.0}},
             "rows": [_row("adversarial", 50, 0.2, threshold=1.0), _row("adversarial", 500, 0.9, threshold=8.0)]}
    stages = {"adversarial": _metrics(200, 0.5, threshold=4.0), "pgd_at": _metrics(400, 0.6),
              "trades": _metrics(500, 0.55, beta=6.0), "natural_then_at": _metrics(300, 0.55, switch=0.5),
              "supervised": {"validation": {"accuracy": 0.9}}}
    check = {"value": 0.4, "ci": [0.3, 0.5], "n": 128, "attacks": ["pgd_linf", "apgd", "square"]}
    evaluation = {v: {"heldout": {"verification": {"accuracy_mean": 0.7, "accuracy_std": 0.02},
                                  "robustness": {"worst_case_robust_accuracy": {"eps_4": check}}}}
                  for v in ("adversarial", "pgd_at")}
    # Execute
    same = gate_pareto(sweep, stages, evaluation, "heldout", HASHES, 0)
    other = gate_pareto(sweep, stages, evaluation, "heldout", {**HASHES, "faces_sha256": "x"}, 0)
    none = gate_pareto(None, stages, evaluation, "heldout", HASHES, 0)
    # Assert: sweep rows first, then the run's stages in order; the front by passes
    assert [(r["source"], point_name(r)) for r in same["rows"]] == [
        ("sweep", "adversarial 1"), ("sweep", "adversarial 8"), ("run", "adversarial 4"), ("run", "pgd_at"),
        ("run", "trades"), ("run", "natural_then_at 0.5")]
    assert [r["on_front"] for r in same["rows"]] == [True, True, True, True, False, True]
    assert same["rows"][4]["dominated_by"] == ["adversarial 8", "pgd_at", "natural_then_at 0.5"] and same["sweep"]["used"]
    assert [r["source"] for r in other["rows"]] == ["run"] * 4 and "other data" in other["sweep"]["reason"]
    assert "make gate-sweep" in none["sweep"]["reason"] and none["sweep"]["choice"] is None
    # the test rows carry the evaluate stage's worst case and clean accuracy, None where it was not attacked
    test = {r["variant"]: r for r in same["test"]}
    assert test["adversarial"]["worst_case_robust_accuracy"] == 0.4 and test["adversarial"]["n"] == 128
    assert test["trades"]["worst_case_robust_accuracy"] is None and test["pgd_at"]["clean_accuracy"] == 0.7
    assert all(r["pairs"] == "test" for r in same["test"]) and all(r["pairs"] == "validation" for r in same["rows"])


def test_the_dags_stages_unscored_on_validation_are_placed_by_the_sweeps_point_at_their_setting():
    # Prepare: the DAG's stages carry no validation worst case (only the sweep's runs score it); a sweep of the same
    # data with the gate at 1 and 4, natural_then_at at 0.5 and PGD-AT
    sweep = {"command": "facebench gate-sweep", "data_hashes": HASHES,
             "choice": {"adversarial": {"variant": "adversarial", "knob": "threshold", "chosen": 4.0, "settings": [1.0, 4.0],
                                        "rule": "r"}},
             "rows": [_row("adversarial", 50, 0.2, threshold=1.0), _row("adversarial", 200, 0.5, threshold=4.0),
                      _row("natural_then_at", 300, 0.55, switch=0.5), _row("pgd_at", 400, 0.6)]}
    unscored = {"validation": {"accuracy": 0.8, "pairs": 2000}}
    stages = {"adversarial": {**_metrics(200, 0.5, threshold=4.0), **unscored},
              "pgd_at": {**_metrics(400, 0.6), **unscored}, "natural_then_at": {**_metrics(300, 0.55, switch=0.5), **unscored}}
    # Execute
    pareto = gate_pareto(sweep, stages, {}, "heldout", HASHES, 0)
    lines = gate_front(pareto)
    # Assert: the rows are the sweep's alone; the test rows are still this run's three stages
    assert [r["source"] for r in pareto["rows"]] == ["sweep"] * 4
    assert [r["variant"] for r in pareto["test"]] == ["adversarial", "pgd_at", "natural_then_at"]
    # the run's gate (threshold 4) and natural_then_at (0.5) are placed by the sweep's points, not the threshold-1 one
    placed = [line for line in lines if "on validation pairs: worst-case" in line]
    assert len(placed) == 2 and "adversarial (threshold 4, the sweep)" in placed[0] and "0.50x PGD-AT's 400" in placed[0]
    assert "natural_then_at (switch 0.5, the sweep)" in placed[1]


def test_a_sweep_point_that_is_not_the_runs_model_is_named():
    # Prepare: the sweep's gate at 4 trained 200 passes to clean 0.8; this run's stage at 4 took 210 passes
    sweep = {"command": "c", "data_hashes": HASHES, "choice": {},
             "rows": [_row("adversarial", 200, 0.5, threshold=4.0), _row("pgd_at", 400, 0.6)]}
    unscored = {"validation": {"accuracy": 0.8, "pairs": 2000}}
    stages = {"adversarial": {**_metrics(210, 0.5, threshold=4.0), **unscored}, "pgd_at": {**_metrics(400, 0.6), **unscored}}
    # Execute
    pareto = gate_pareto(sweep, stages, {}, "heldout", HASHES, 0)
    # Assert: PGD-AT's point is its model, the gate's is not, and the report says so first
    assert pareto["sweep"]["differs"] == ["adversarial 4: the sweep's 200 passes and clean 0.8000, this run's 210 and 0.8000"]
    assert "are not this run's models (adversarial 4: the sweep's 200 passes" in gate_front(pareto)[0]
