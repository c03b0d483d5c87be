"""The report: headline tables per benchmark set, findings on the headline set, the data stage's benchmark sets,
the page's rendering, and the page in a real headless Chromium."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from benchmark import config
from benchmark.plots import save_figure
from benchmark.report import findings, stage
from benchmark.report.benchmarks import benchmarks_table, overlap_warnings, set_title
from benchmark.report.browser import check_page, chromium_path
from benchmark.report.environment import manifest_digest
from benchmark.report.headline import (COLUMNS, SEED_FIGURES, UNRELIABLE_NOTE, benchmark_sets, format_cell, he_cost,
                                       headline_rows, headline_tables, markdown_table, markdown_tables)
from benchmark.report.html import png_data_uri, render_page


def verification(acc, std=0.02, tar=0.3):
    return {"accuracy_mean": acc, "accuracy_std": std, "auc": 0.9, "eer": 0.1, "tar_at_far_1e-2": 0.5,
            "tar_at_far_1e-3": tar, "threshold": 0.2}


def robustness(robust_acc, min_pert, worst=None, n=256):
    worst = robust_acc if worst is None else worst
    return {"pgd_linf": {"eps_4": {"dodging_asr": 0.9, "impersonation_asr": 0.4, "robust_accuracy": robust_acc},
                         "median_min_perturbation": {"dodging": min_pert, "impersonation": 2 * min_pert}},
            "worst_case_robust_accuracy": {"eps_4": {
                "value": worst, "ci": [max(worst - 0.05, 0), worst + 0.05], "n": n, "attacks": ["pgd_linf", "apgd", "square"],
                "pgd_linf": {"value": robust_acc, "ci": [max(robust_acc - 0.06, 0), robust_acc + 0.06]}}}}


# Two benchmark sets in params.yaml order: the headline set (held-out identities) first, then an LFW-layout set
# (no identification, no gallery). Different numbers per set so that a value taken from the wrong set shows.
EVALUATION = {
    "supervised": {"heldout": {"verification": verification(0.877), "robustness": robustness(0.05, 1 / 255)},
                   "lfw": {"verification": verification(0.70), "robustness": robustness(0.02, 1 / 255)}},
    "adversarial": {"heldout": {"verification": verification(0.85), "robustness": robustness(0.40, 6 / 255)},
                    "lfw": {"verification": verification(0.66), "robustness": robustness(0.30, 3 / 255)}},
    "federated_third_party": {"heldout": {"verification": verification(0.80)}, "lfw": {"verification": verification(0.61)}},
}
SETS = ("heldout", "lfw")
BENCHMARKS = {
    "heldout": {"format": "split", "pairs": 6000, "identities": 99, "images": 1188, "unusable": 0, "overlap_identities": 0},
    "lfw": {"format": "lfw_pairs", "pairs": 6000, "identities": 5749, "images": 13233, "unusable": 3, "overlap_identities": 12},
}
DATA = {"identities": 4, "images": 8, "benchmarks": BENCHMARKS,
        "training": {"identities": 201, "images": 2412, "val_identities": 20, "val_pairs": 600}}
STAGES = {"supervised": {"train_seconds": 20.0}, "adversarial": {"train_seconds": 60.0, "adversarial_fraction": 0.5, "switches": 7}}
FEDERATED = {"third_party": {"train_seconds": [40.0, 50.0], "encrypt_seconds": [1.0, 3.0], "aggregate_seconds": [0.5, 0.5],
                             "decrypt_seconds": [1.0, 1.0], "bytes_sent": [2e8, 4e8], "bytes_plaintext": [1e7, 1e7],
                             "verification": verification(0.80)}}


def test_headline_rows_take_each_value_from_its_source():
    rows = {r["variant"]: r for r in headline_rows(EVALUATION, STAGES, FEDERATED, "heldout")}
    assert list(rows) == list(EVALUATION)
    assert rows["adversarial"]["robust_accuracy"] == 0.40
    assert rows["adversarial"]["median_min_perturbation"] == pytest.approx(6.0)
    assert rows["adversarial"]["train_seconds"] == 60.0
    fed = rows["federated_third_party"]
    assert fed["train_seconds"] == 90.0 and fed["robust_accuracy"] is None
    assert fed["he_seconds_per_round"] == pytest.approx(3.5) and fed["he_megabytes_per_round"] == pytest.approx(300.0)


def test_headline_rows_read_the_asked_benchmark_set():
    rows = {r["variant"]: r for r in headline_rows(EVALUATION, STAGES, FEDERATED, "lfw")}
    assert rows["adversarial"]["accuracy"] == 0.66 and rows["adversarial"]["robust_accuracy"] == 0.30
    assert rows["adversarial"]["median_min_perturbation"] == pytest.approx(3.0)
    assert rows["adversarial"]["train_seconds"] == 60.0
    assert all(r["accuracy"] is None for r in headline_rows(EVALUATION, STAGES, FEDERATED, "orl"))


def test_headline_tables_give_each_set_its_table_headline_set_first():
    evaluation = {**EVALUATION, "pgd_at": {"lfw": {"verification": verification(0.5)}}}
    tables = headline_tables(evaluation, STAGES, FEDERATED, BENCHMARKS)
    assert benchmark_sets(evaluation) == list(SETS)
    assert [t["name"] for t in tables] == list(SETS)
    assert tables[0]["title"] == "heldout: held-out identities of the training source (headline set)"
    assert tables[1]["title"] == "lfw: LFW View 2 pairs.txt"
    assert [r["accuracy"] for r in tables[1]["rows"]] == [0.70, 0.66, 0.61, 0.5]
    assert tables[0]["rows"][-1]["variant"] == "pgd_at" and tables[0]["rows"][-1]["accuracy"] is None


def test_set_title_falls_back_to_the_name_without_a_format():
    assert headline_tables(EVALUATION, STAGES, FEDERATED, None)[1]["title"] == "lfw"
    assert set_title("orl", "folder") == "orl: a folder per identity, generated pairs"


def test_he_cost_is_none_for_a_mode_without_encryption():
    assert he_cost({"verification": verification(0.8)}) == (None, None)


def test_missing_values_show_as_na_and_accuracy_with_its_std():
    row = headline_rows({"x": {"heldout": {"verification": verification(0.8766, 0.0123)}}}, {}, None, "heldout")[0]
    assert format_cell(row, "accuracy") == "0.877 ± 0.012"
    assert format_cell(row, "robust_accuracy") == "n/a"
    assert format_cell({"median_min_perturbation": float("inf")}, "median_min_perturbation") == "> budget"


def test_headline_cells_carry_intervals_pair_counts_and_the_unreliable_tar_mark():
    # Prepare: a verification result with its intervals (TAR at 1e-3 on too few impostors) and a robust rate
    verification_ = {**verification(0.8766, 0.0123), "accuracy_ci": [0.85, 0.9], "tar_at_far_1e-3": 0.2,
                     "tar_at_far_1e-3_ci": [0.15, 0.26], "tar_at_far_1e-3_reliable": False}
    evaluation = {"x": {"heldout": {"verification": verification_, "robustness": robustness(0.5, 1 / 255, worst=0.3)}}}
    # Execute
    tables = headline_tables(evaluation, {}, None, None)
    row = tables[0]["rows"][0]
    # Assert
    assert format_cell(row, "accuracy") == "0.877 ± 0.012 [0.850, 0.900]"
    assert format_cell(row, "tar_at_far_1e-3") == "0.200 [0.150, 0.260]†"
    assert format_cell(row, "robust_accuracy") == "0.500 [0.440, 0.560] (256)"
    assert format_cell(row, "worst_case_robust_accuracy") == "0.300 [0.250, 0.350]"
    assert UNRELIABLE_NOTE in markdown_tables(tables)
    verification_["tar_at_far_1e-3_reliable"] = True
    assert UNRELIABLE_NOTE not in markdown_tables(headline_tables(evaluation, {}, None, None))


def test_headline_rows_say_where_each_variant_s_weights_came_from():
    run = {"variants": {"supervised": {"weights": "fine-tuned from facenet_casia"}}}
    rows = {r["variant"]: r for r in headline_rows(EVALUATION, STAGES, FEDERATED, "heldout", run)}
    assert rows["supervised"]["weights"] == "fine-tuned from facenet_casia"
    assert all(r["weights"] is None for v, r in rows.items() if v != "supervised")
    assert format_cell(rows["supervised"], "weights") == "fine-tuned from facenet_casia"


def test_markdown_table_has_a_header_and_one_line_per_variant():
    lines = markdown_table(headline_rows(EVALUATION, STAGES, FEDERATED, "heldout")).strip().splitlines()
    assert len(lines) == 2 + len(EVALUATION)
    assert all(line.count("|") == len(COLUMNS) + 1 for line in lines)
    assert lines[2].startswith("| supervised | 0.877 ± 0.020 |")


def test_markdown_tables_head_each_set_table_with_its_title():
    text = markdown_tables(headline_tables(EVALUATION, STAGES, FEDERATED, BENCHMARKS))
    headings = [line for line in text.splitlines() if line.startswith("###")]
    assert headings == ["### heldout: held-out identities of the training source (headline set)",
                        "### lfw: LFW View 2 pairs.txt"]
    lfw = text[text.index("### lfw"):]
    assert "| supervised | 0.700 ± 0.020 |" in lfw and "0.877" not in lfw


def finding(source, a, b, metric, kind, margin, ci, verdict, benchmark="heldout"):
    return {"source": source, "statement": f"{a} against {b}", "benchmark": benchmark, "a": a, "b": b,
            "metric": metric, "kind": kind, "margin": margin, "difference": sum(ci) / 2, "ci": ci, "p_value": 0.01,
            "pairs": 6000, "verdict": verdict}


def test_claim_sentences_give_the_difference_interval_test_and_verdict_on_the_named_set():
    decided = [finding("semisupervised", "semisupervised", "supervised", "clean", "better", 0.0, [-0.008, 0.005],
                       "not shown"),
               finding("semisupervised", "semisupervised", "supervised", "clean", "better", 0.0, [0.01, 0.02], "met",
                       benchmark="lfw")]
    lines = findings.semisupervised({}, decided, "heldout")
    assert lines == ["Semisupervised against supervised (clean accuracy): semisupervised − supervised = -0.1 points "
                     "[-0.8, +0.5] on heldout (paired bootstrap over 6000 pairs, 95%; McNemar p = 0.01); target above "
                     "0 points: not shown."]
    assert "+1.5 points [+1.0, +2.0] on lfw" in findings.semisupervised({}, decided, "lfw")[0]
    assert findings.semisupervised({}, decided, "orl") == [
        "No semisupervised claim was decided on orl: a variant it compares was not evaluated."]


def test_hardened_findings_give_worst_cases_claims_and_the_time_ratio():
    evaluation = {**EVALUATION, "pgd_at": {"heldout": {"verification": verification(0.84),
                                                       "robustness": robustness(0.41, 5 / 255, worst=0.2)}}}
    stages = {**STAGES, "pgd_at": {"train_seconds": 100.0, "adversarial_fraction": 1.0, "switches": 0}}
    decided = [finding("hardened", "adversarial", "pgd_at", "robust", "no_worse", 0.02, [-0.05, 0.03], "not shown")]
    lines = findings.hardened(evaluation, stages, decided, "heldout")
    assert lines[0].startswith("adversarial on heldout: clean 0.850, robust accuracy under PGD-L∞ at 4/255 0.400")
    assert "0.410, worst case over pgd_linf, apgd, square 0.200" in lines[1]
    assert "trades: not evaluated on heldout." in lines
    assert "robust accuracy under PGD-L∞ at 4/255): adversarial − pgd_at = -1.0 points [-5.0, +3.0]" in lines[-2]
    assert lines[-2].endswith("target above −2.0 points: not shown.")
    assert lines[-1].startswith("Training time against static PGD-AT: 0.60x (target at most 0.7x: met")


def test_robustness_findings_rank_state_the_precision_and_flag_gradient_masking():
    evaluation = copy.deepcopy(EVALUATION)
    evaluation["adversarial"]["heldout"]["robustness"] = robustness(0.40, 6 / 255, worst=0.30)  # 10 points below PGD
    text = findings.robustness(evaluation, "heldout")
    assert text[0].startswith("On heldout,")
    assert "from 0.050 (supervised) to 0.400 (adversarial)" in text[0] and "256 attacked pairs" in text[0]
    assert "±6 points" in text[0]
    assert text[1].startswith("The worst case over pgd_linf, apgd, square on the same pairs flags gradient masking")
    assert text[1].endswith("in: adversarial (0.400 under PGD, 0.300 worst case).")
    assert findings.robustness(EVALUATION, "heldout")[1].endswith("in: none.")
    assert findings.robustness(EVALUATION, "orl") == ["No robustness result on orl."]


def test_federated_findings_give_the_he_cost_and_the_claims():
    fed = {**FEDERATED, "plaintext": {"verification": verification(0.804)}}
    decided = [finding("federated", "federated_third_party", "federated_plaintext", "clean", "within", 0.005,
                       [-0.012, 0.004], "not shown")]
    lines = findings.federated(fed, decided, "heldout")
    assert lines[0] == "third_party: 3.5 s of encryption work and 300 MB sent per round."
    assert "target inside ±0.5 points: not shown." in lines[1]
    assert lines[2].startswith("No differential privacy at the institutions")
    dp = {"per_round": 4.21, "cumulative": [4.21, 6.1], "delta": 1e-5, "noise_multiplier": 1.0, "clip": 0.5}
    noised = findings.federated({**fed, "plaintext": {**fed["plaintext"], "dp_epsilon": dp}}, decided, "heldout")
    assert noised[2] == ("Differential privacy at the institutions: each update clipped to L2 norm 0.5 with Gaussian noise "
                         "multiplier 1; epsilon per institution 4.21 a round, 6.10 after 2 rounds (delta 1e-05).")
    assert findings.federated(None, decided, "heldout") == ["The federated stage did not run."]
    deployed = {**fed["third_party"], "deployment": {"command": "facebench fl-deploy", "date": "2026-12-07",
                                                     "same_settings": False, "round_wall_seconds": [88.2, 83.4],
                                                     "bytes_on_wire": [380_052_972, 336_673_890]}}
    assert findings.federated({**fed, "third_party": deployed}, decided, "heldout")[1] == (
        "third_party in deployment mode (facebench fl-deploy, 2026-12-07; other federated settings): rounds of 88, 83 s "
        "wall time carrying 380, 337 MB on the SuperNodes' links.")


def test_the_inversion_finding_is_worded_from_its_numbers():
    # Prepare: the measurement as the federated stage writes it (2026-12-08's default run, rounded)
    measured = {"threat": "agnostic", "institution": 0, "steps": 2, "optimizer": "adamw", "faces": 8, "batch_size": 4,
                "psnr_plaintext": 9.57, "ssim_plaintext": 0.064, "psnr_start": 9.22, "ssim_start": 0.012,
                "reidentified_plaintext": 0.0, "reidentified_originals": 0.5}
    # Execute
    structure = findings.inversion(measured)
    nothing = findings.inversion({**measured, "ssim_plaintext": 0.012 + findings.STRUCTURE_SSIM / 2})
    closer = findings.inversion({**measured, "psnr_plaintext": 9.22 + findings.RECOVERY_DB})
    named = findings.inversion({**measured, "psnr_plaintext": 20.0, "reidentified_plaintext": 0.25})
    # Assert
    assert structure.startswith("Gradient inversion (agnostic attacker) of the update institution 0 ships after a round of "
                              "local training (2 adamw step(s) over 8 of its faces, 4 a step): PSNR 9.6 dB, SSIM 0.06 "
                              "against the originals (the random start: 9.2 dB, 0.01); the recognizer re-identifies 0% "
                              "of the reconstructions and 50% of the originals.")
    assert "no closer to the faces than its random start, but its structure is (SSIM)" in structure
    assert "It recovers nothing closer to the faces than its random start." in nothing and "were not run" in nothing
    assert closer.endswith("closer to the faces than its random start, none of which the recognizer names.")
    assert named.endswith("It recovers faces the recognizer names: whoever sees an individual update sees its faces.")
    assert findings.federated({**FEDERATED, "privacy": measured}, [], "heldout")[-1] == structure


def test_benchmarks_table_has_a_row_per_set_in_order():
    table = benchmarks_table({**BENCHMARKS, "orl": {"format": "folder", "pairs": 600}})
    assert table["columns"][0] == "benchmark set" and len(table["columns"]) == 7
    assert table["rows"][0] == ["heldout", "split", "6000", "99", "1188", "0", "0"]
    assert table["rows"][1] == ["lfw", "lfw_pairs", "6000", "5749", "13233", "3", "12"]
    assert table["rows"][2] == ["orl", "folder", "600", "n/a", "n/a", "n/a", "n/a"]


def test_overlap_warning_only_for_sets_that_share_identities_with_training():
    assert overlap_warnings(BENCHMARKS) == [
        "Warning: 12 identities of lfw also appear in the training source: accuracy on it is inflated."]
    assert overlap_warnings({"heldout": BENCHMARKS["heldout"], "orl": {"format": "folder"}}) == []


def test_manifest_digest_changes_with_the_data_hashes():
    a = manifest_digest({"hashes": {"faces_sha256": "aa", "protocol_sha256": "bb"}})
    assert a == manifest_digest({"hashes": {"protocol_sha256": "bb", "faces_sha256": "aa"}})
    assert a != manifest_digest({"hashes": {"faces_sha256": "ab", "protocol_sha256": "bb"}})


def test_png_data_uri_rejects_what_is_not_a_png(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"GIF89a")
    with pytest.raises(ValueError, match="not a PNG"):
        png_data_uri(bad)


def test_page_escapes_text_from_the_metrics():
    env = {"git_revision": "abc", "seed": 0, "data_source": "<b>x</b>", "data_manifest_sha256": "0" * 64, "packages": {}}
    seeds = {"sentence": "", "columns": [], "rows": []}
    page = render_page({"tables": [], "headline_note": "", "seeds": seeds, "sections": [], "limits": [], "notebooks": [],
                        "env": env, "generated": "now"})
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page


def make_reports(root: Path, data: dict = DATA) -> config.Params:
    """A reports tree as the pipeline leaves it: metrics (``data`` as data.json), a real PNG figure, an executed
    notebook."""
    reports, artifacts = root / "reports", root / "artifacts"
    (reports / "metrics").mkdir(parents=True)
    (artifacts / "data").mkdir(parents=True)
    (artifacts / "data" / "manifest.json").write_text(json.dumps(
        {"source": {"kind": "synthetic"}, "counts": {"identities": 4, "images": 8}, "hashes": {"faces_sha256": "aa"}}))
    (reports / "metrics" / "evaluation.json").write_text(json.dumps(EVALUATION))
    (reports / "metrics" / "federated.json").write_text(json.dumps(FEDERATED))
    (reports / "metrics" / "data.json").write_text(json.dumps(data))
    for name, metrics in STAGES.items():
        (reports / "metrics" / f"{name}.json").write_text(json.dumps(metrics))
    fig = Figure(figsize=(3, 2))
    fig.subplots().plot(np.arange(5), np.arange(5) ** 2)
    save_figure(fig, reports / "figures" / "supervised" / "roc.png")
    nb = {"cells": [{"id": "c1", "cell_type": "markdown", "metadata": {}, "source": "# a stage"}], "metadata": {},
          "nbformat": 4, "nbformat_minor": 5}
    (reports / "notebooks").mkdir()
    (reports / "notebooks" / "02_train_supervised.ipynb").write_text(json.dumps(nb))
    return config.build(config.Params, {"paths": {"artifacts": str(artifacts), "reports": str(reports)}})


def test_report_stage_writes_page_summary_and_notebook_pages(tmp_path):
    params = make_reports(tmp_path)
    out = stage.run(params)
    page = Path(out["index"]).read_text()
    assert page.count('<table class="headline">') == len(SETS) and "data:image/png;base64," in page
    assert page.index('id="headline-heldout"') < page.index('id="headline-lfw"')
    assert "<td>0.877 ± 0.020</td>" in page and "<td>0.700 ± 0.020</td>" in page
    assert 'href="html/02_train_supervised.html"' in page
    assert (tmp_path / "reports" / "html" / "02_train_supervised.html").is_file()
    summary = Path(out["summary"]).read_text()
    assert "| adversarial | 0.850 ± 0.020 |" in summary and "| adversarial | 0.660 ± 0.020 |" in summary


def test_report_shows_the_seed_table_when_seed_runs_exist_and_says_single_seed_otherwise(tmp_path):
    # Prepare: seeds.json as `facebench seeds` writes it (benchmark.report.experiments.seed_table)
    params = make_reports(tmp_path)
    figure = {"mean": 0.88, "std": 0.02, "n": 3, "seeds": [0, 1, 2], "single": 0.9}
    seeds = {"benchmark": "heldout", "single_seed": 0, "seeds": [0, 1, 2],
             "rows": [{"variant": "supervised", **{key: figure for key, _ in SEED_FIGURES}}]}
    single = Path(stage.run(params)["index"]).read_text()
    (tmp_path / "reports" / "metrics" / "seeds.json").write_text(json.dumps(seeds))
    # Execute
    out = stage.run(params)
    # Assert
    page, summary = Path(out["index"]).read_text(), Path(out["summary"]).read_text()
    assert "Every figure is from one run, training seed 0: `make seeds`" in single and 'class="seeds"' not in single
    assert page.count('<table class="seeds">') == 1 and "Every figure is from one run" not in page
    assert "Over 3 seeds (0, 1, 2): mean ± std beside the single-seed value (seed 0" in page
    assert "<td>supervised</td>" + "<td>0.880 ± 0.020 (0.900)</td>" * len(SEED_FIGURES) + "</tr>" in page
    assert "### Over training seeds\n\nOver 3 seeds (0, 1, 2)" in summary
    assert "| supervised |" + " 0.880 ± 0.020 (0.900) |" * len(SEED_FIGURES) in summary


def test_report_page_shows_the_benchmark_sets_and_warns_about_overlap(tmp_path):
    page = Path(stage.run(make_reports(tmp_path))["index"]).read_text()
    assert "<td>lfw</td><td>lfw_pairs</td><td>6000</td><td>5749</td><td>13233</td><td>3</td><td>12</td>" in page
    assert "12 identities of lfw also appear in the training source: accuracy on it is inflated." in page
    assert "identities of heldout also appear" not in page
    assert "Training source: 4 identities, 8 images, source: synthetic." in page
    assert "201 identities (2412 images) train the models; 20 validation identities give 600 validation pairs" in page
    assert "adversarial on heldout: clean 0.850" in page and "on lfw:" not in page


def test_report_page_without_overlap_has_no_warning(tmp_path):
    data = {**DATA, "benchmarks": {**BENCHMARKS, "lfw": {**BENCHMARKS["lfw"], "overlap_identities": 0}}}
    page = Path(stage.run(make_reports(tmp_path, data))["index"]).read_text()
    assert "also appear in the training source" not in page
    assert "<td>lfw</td><td>lfw_pairs</td>" in page


@pytest.mark.browser
def test_report_page_loads_in_headless_chromium(tmp_path):
    if chromium_path() is None:
        pytest.skip("Chromium not installed (apt-get install chromium; .ci/run installs it)")
    params = make_reports(tmp_path)
    shot = tmp_path / "report.png"
    seen = check_page(stage.run(params)["index"], shot)
    assert seen["table_rows"] == len(EVALUATION) * len(SETS)
    assert seen["image_widths"] and all(w > 0 for w in seen["image_widths"]), seen["image_widths"]
    assert seen["console_errors"] == []
    assert shot.stat().st_size > 10_000


def test_frame_selection_sentence_gives_every_choice_the_interval_and_the_verdict():
    from benchmark.report.findings import frame_selection

    metrics = {"closed_set_videos": 79, "spoiled_share": 0.5, "rank1_selected_frame": 0.62, "rank1_random_frame": 0.49,
               "rank1_worst_frame": 0.24, "rank1_best_frame_oracle": 0.63, "selection_p_value": 0.004,
               "selection_difference": {"difference": 0.13, "ci": [0.05, 0.21], "a_only": 14, "b_only": 4}}
    (line,) = frame_selection(metrics)
    assert "79 videos" in line and "50% of the frames spoiled" in line and "62.0%" in line and "49.0%" in line
    assert "+13.0 points [+5.0, +21.0]" in line and "p = 0.004" in line and line.endswith("a difference shown.")
    metrics["selection_difference"]["ci"] = [-0.01, 0.2]
    assert frame_selection(metrics)[0].endswith("not shown.")
    assert frame_selection({"probes": 40}) == [] and frame_selection(None) == []


def test_report_places_the_gate_against_its_sweep_and_writes_gate_pareto(tmp_path):
    # Prepare: this run's gated and PGD-AT stages with their cost and validation worst case, and a sweep file of the
    # same data (the manifest's hashes) with two thresholds
    params = make_reports(tmp_path)
    params = config.build(config.Params, {"paths": {**config.as_dict(params.paths),
                                                    "gate_sweep": str(tmp_path / "gate_sweep.json")}})
    metrics = tmp_path / "reports" / "metrics"

    def stage_metrics(passes, worst, **knob):
        return {"train_seconds": passes / 10, "passes": passes, **knob, "validation": {
            "accuracy": 0.8, "pairs": 2000, "worst_case_robust_accuracy": {"value": worst, "ci": [worst - 0.1, worst + 0.1], "n": 100}}}

    (metrics / "adversarial.json").write_text(json.dumps({**STAGES["adversarial"], **stage_metrics(300, 0.35, threshold=6.0)}))
    (metrics / "pgd_at.json").write_text(json.dumps(stage_metrics(800, 0.5)))
    sweep_rows = [{"variant": "adversarial", "threshold": t, "switch": None, "seed": 0, "passes": p, "seconds": p / 10,
                   "worst_case_robust_accuracy": w, "worst_case_ci": [w - 0.1, w + 0.1], "n": 100,
                   "clean_accuracy": 0.8, "clean_pairs": 2000, "source": "sweep", "pairs": "validation"}
                  for t, p, w in ((2.0, 250, 0.5), (8.0, 200, 0.2))]
    choice = {"variant": "adversarial", "knob": "threshold", "chosen": 2.0, "best": 2.0, "best_score": 0.65,
              "halfwidth": 0.05, "settings": [2.0, 8.0], "rule": "the rule"}
    (tmp_path / "gate_sweep.json").write_text(json.dumps({"command": "facebench gate-sweep", "rows": sweep_rows,
                                                          "data_hashes": {"faces_sha256": "aa", "protocol_sha256": None},
                                                          "choice": {"adversarial": choice}}))
    # Execute
    page = Path(stage.run(params)["index"]).read_text()
    # Assert: every point with its front flag; threshold 2 (cheaper, more robust) dominates the default and PGD-AT
    pareto = json.loads((metrics / "gate_pareto.json").read_text())
    assert [(r["variant"], r["threshold"], r["source"], r["on_front"]) for r in pareto["rows"]] == [
        ("adversarial", 2.0, "sweep", True), ("adversarial", 8.0, "sweep", True), ("adversarial", 6.0, "run", False),
        ("pgd_at", None, "run", False)]
    assert {"variant", "threshold", "passes", "seconds", "worst_case_robust_accuracy", "clean_accuracy"} <= set(pareto["rows"][0])
    assert [r["variant"] for r in pareto["test"]] == ["adversarial", "pgd_at"] and pareto["test"][0]["n"] == 256
    assert (tmp_path / "reports" / "figures" / "gate_pareto" / "gate_pareto.png").is_file()
    assert "The sweep (facebench gate-sweep) chose adversarial.threshold = 2 on validation pairs among 2, 8" in page
    assert "off the front (dominated by adversarial 2)" in page and "0.38x PGD-AT&#39;s 800" in page
    # a sweep of other data is left out, and the page says why
    (tmp_path / "gate_sweep.json").write_text(json.dumps({"rows": sweep_rows, "data_hashes": {"faces_sha256": "bb"}}))
    page = Path(stage.run(params)["index"]).read_text()
    assert "the sweep ran on other data" in page
    assert len(json.loads((metrics / "gate_pareto.json").read_text())["rows"]) == 2


def test_report_shows_the_label_study_with_its_tests_and_writes_its_contract(tmp_path):
    # Prepare: a study file with one init and two fractions, as make label-study writes it
    params = make_reports(tmp_path)
    params = config.build(config.Params, {"paths": {**config.as_dict(params.paths),
                                                    "label_study": str(tmp_path / "label_study.json")}})
    row = {"supervised": 0.62, "supervised_std": 0.01, "semisupervised": 0.65, "semisupervised_std": 0.02,
           "difference": 0.03, "ci": [0.01, 0.05], "p_value": 0.002, "verdict": "gain shown", "pairs": 6000,
           "seeds": [0, 1, 2], "labelled_images": 170, "unlabelled_images": 3230,
           "epochs": {"supervised": [6, 6, 6], "semisupervised": [6, 5, 6]}}
    study = {"scratch": {"command": "facebench label-study --seeds 0,1,2", "date": "2026-12-01",
                         "data": {"source": {"kind": "folder", "path": "celeba"}, "geometry": "arcface 64px",
                                  "counts": {"identities": 299, "images": 6220, "test_identities": 99}, "hashes": {}},
                         "params": {}, "fractions": {"0.05": row, "1.0": {**row, "ci": [-0.01, 0.04],
                                                                          "verdict": "not shown"}}}}
    (tmp_path / "label_study.json").write_text(json.dumps(study))
    # Execute
    page = Path(stage.run(params)["index"]).read_text()
    # Assert: the contract {init: {fraction: {...}}}, the figure, and the table and sentences on the page
    written = json.loads((tmp_path / "reports" / "metrics" / "label_study.json").read_text())
    assert list(written) == ["scratch"] and list(written["scratch"]) == ["0.05", "1.0"]
    assert {"supervised", "semisupervised", "difference", "ci", "p_value"} <= set(written["scratch"]["0.05"])
    assert (tmp_path / "reports" / "figures" / "label_study" / "label_study.png").is_file()
    assert "Label study from scratch (facebench label-study --seeds 0,1,2, 2026-12-01): folder celeba" in page
    assert "<td>170 / 3230</td><td>0.620 ± 0.010</td><td>0.650 ± 0.020</td><td>+3.0 [+1.0, +5.0]</td>" in page
    assert "difference +3.0 points [+1.0, +5.0] (paired over 6000 pairs and seeds 0, 1, 2; sign-flip p = 0.002): gain shown." in page
    # without a study file the report leaves the study out
    (tmp_path / "label_study.json").unlink()
    assert "Label study" not in Path(stage.run(params)["index"]).read_text()
