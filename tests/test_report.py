"""The report: headline rows, findings, the page's rendering, and the page in a real headless Chromium."""

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from benchmark import config
from benchmark.plots import save_figure
from benchmark.report import findings, stage
from benchmark.report.browser import check_page, chromium_path
from benchmark.report.environment import manifest_digest
from benchmark.report.headline import COLUMNS, format_cell, he_cost, headline_rows, markdown_table
from benchmark.report.html import png_data_uri, render_page



def verification(acc, std=0.02, tar=0.3):
    return {"accuracy_mean": acc, "accuracy_std": std, "auc": 0.9, "eer": 0.1, "tar_at_far_1e-2": 0.5,
            "tar_at_far_1e-3": tar, "threshold": 0.2}


def robustness(robust_acc, min_pert):
    return {"pgd_linf": {"eps_4": {"dodging_asr": 0.9, "impersonation_asr": 0.4, "robust_accuracy": robust_acc},
                         "median_min_perturbation": {"dodging": min_pert, "impersonation": 2 * min_pert}}}


EVALUATION = {
    "supervised": {"verification": verification(0.877), "robustness": robustness(0.05, 1 / 255)},
    "adversarial": {"verification": verification(0.85), "robustness": robustness(0.40, 6 / 255)},
    "federated_third_party": {"verification": verification(0.80)},
}
STAGES = {"supervised": {"train_seconds": 20.0}, "adversarial": {"train_seconds": 60.0, "adversarial_fraction": 0.5, "switches": 7}}
FEDERATED = {"third_party": {"train_seconds": [40.0, 50.0], "encrypt_seconds": [1.0, 3.0], "aggregate_seconds": [0.5, 0.5],
                             "decrypt_seconds": [1.0, 1.0], "bytes_sent": [2e8, 4e8], "bytes_plaintext": [1e7, 1e7],
                             "verification": verification(0.80)}}


def test_headline_rows_take_each_value_from_its_source():
    rows = {r["variant"]: r for r in headline_rows(EVALUATION, STAGES, FEDERATED)}
    assert list(rows) == list(EVALUATION)
    assert rows["adversarial"]["robust_accuracy"] == 0.40
    assert rows["adversarial"]["median_min_perturbation"] == pytest.approx(6.0)
    assert rows["adversarial"]["train_seconds"] == 60.0
    fed = rows["federated_third_party"]
    assert fed["train_seconds"] == 90.0 and fed["robust_accuracy"] is None
    assert fed["he_seconds_per_round"] == pytest.approx(3.5) and fed["he_megabytes_per_round"] == pytest.approx(300.0)


def test_he_cost_is_none_for_a_mode_without_encryption():
    assert he_cost({"verification": verification(0.8)}) == (None, None)


def test_missing_values_show_as_na_and_accuracy_with_its_std():
    row = headline_rows({"x": {"verification": verification(0.8766, 0.0123)}}, {}, None)[0]
    assert format_cell(row, "accuracy") == "0.877 ± 0.012"
    assert format_cell(row, "robust_accuracy") == "n/a"
    assert format_cell({"median_min_perturbation": float("inf")}, "median_min_perturbation") == "> budget"


def test_markdown_table_has_a_header_and_one_line_per_variant():
    lines = markdown_table(headline_rows(EVALUATION, STAGES, FEDERATED)).strip().splitlines()
    assert len(lines) == 2 + len(EVALUATION)
    assert all(line.count("|") == len(COLUMNS) + 1 for line in lines)
    assert lines[2].startswith("| supervised | 0.877 ± 0.020 |")


def test_compare_states_the_difference_against_the_fold_std():
    text = findings.compare(EVALUATION, "adversarial", "supervised")
    assert "-2.7 points" in text and "beyond" in text
    assert "no clean verification result for semisupervised" in findings.compare(EVALUATION, "semisupervised", "supervised")


def test_hardened_findings_judge_the_targets_against_pgd_at():
    evaluation = {**EVALUATION, "pgd_at": {"verification": verification(0.84), "robustness": robustness(0.41, 5 / 255)}}
    stages = {**STAGES, "pgd_at": {"train_seconds": 100.0, "adversarial_fraction": 1.0, "switches": 0}}
    verdict = findings.hardened(evaluation, stages)[-1]
    assert "ratio 0.60" in verdict
    assert "within 2 points of PGD-AT or better: met" in verdict and "at least PGD-AT's: met" in verdict


def test_robustness_findings_rank_variants_and_state_the_precision():
    text = findings.robustness(EVALUATION, pairs=64)[0]
    assert "from 0.050 (supervised) to 0.400 (adversarial)" in text and "±12 points" in text


def test_federated_findings_judge_the_encrypted_mode_against_plaintext():
    fed = {**FEDERATED, "plaintext": {"verification": verification(0.804)}, "centralized": {"verification": verification(0.90)}}
    lines = findings.federated(EVALUATION, fed)
    assert "-0.40 points from plaintext FedAvg (0.804; target within 0.5 points: met)" in lines[0]
    assert "-9.6 points; target: within 3 points: missed" in lines[1]


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
    page = render_page({"rows": [], "headline_note": "", "sections": [], "limits": [], "notebooks": [], "env": env, "generated": "now"})
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page


def make_reports(root: Path) -> config.Params:
    """A reports tree as the pipeline leaves it: metrics, a real PNG figure, an executed notebook."""
    reports, artifacts = root / "reports", root / "artifacts"
    (reports / "metrics").mkdir(parents=True)
    (artifacts / "data").mkdir(parents=True)
    (artifacts / "data" / "manifest.json").write_text(json.dumps(
        {"source": {"kind": "synthetic"}, "counts": {"identities": 4, "images": 8}, "hashes": {"faces_sha256": "aa"}}))
    (reports / "metrics" / "evaluation.json").write_text(json.dumps(EVALUATION))
    (reports / "metrics" / "federated.json").write_text(json.dumps(FEDERATED))
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
    assert page.count("<tr>") >= 1 + len(EVALUATION) and "data:image/png;base64," in page
    assert 'href="html/02_train_supervised.html"' in page
    assert (tmp_path / "reports" / "html" / "02_train_supervised.html").is_file()
    assert "| adversarial | 0.850 ± 0.020 |" in Path(out["summary"]).read_text()


@pytest.mark.browser
def test_report_page_loads_in_headless_chromium(tmp_path):
    if chromium_path() is None:
        pytest.skip("Chromium not installed (apt-get install chromium; .ci/run installs it)")
    params = make_reports(tmp_path)
    shot = tmp_path / "report.png"
    seen = check_page(stage.run(params)["index"], shot)
    assert seen["table_rows"] == len(EVALUATION)
    assert seen["image_widths"] and all(w > 0 for w in seen["image_widths"]), seen["image_widths"]
    assert seen["console_errors"] == []
    assert shot.stat().st_size > 10_000
