"""The pretrained FaceNet as a variant of the pipeline: face geometry carried from the data stage to every model,
``init: facenet_casia`` for the training stages, the ``pretrained`` reference row with thresholds from validation
pairs, the paired comparison against it, the real clip identified with it, and its embedding throughput.

Real faces are read in place from ../shared/data/real, never copied.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmark import cli, config, presets
from benchmark.data import stage as data_stage
from benchmark.data.align import Geometry
from benchmark.errors import ConfigError, DataError
from benchmark.evaluation import stage as evaluate_stage
from benchmark.evaluation.paired import paired_difference, verdict
from benchmark.evaluation.verification import kfold_accuracy, kfold_correct
from benchmark.models.face_model import build_face_model
from benchmark.models.facenet import GEOMETRY
from benchmark.models.pretrained import cache_path, pretrained_face_model
from benchmark.models.throughput import embed_vs_bare
from benchmark.report.findings import pretrained as pretrained_findings
from benchmark.train.recipe import build_model, check_crops


@pytest.mark.parametrize("geometry", [Geometry(112), Geometry(64, "arcface"), GEOMETRY, Geometry(96, "box", 8)])
def test_a_geometry_reads_back_from_its_description(geometry):
    assert Geometry.parse(geometry.describe()) == geometry


@pytest.mark.parametrize("text", ["", "arcface", "box+32px", "round 112px", "arcface 4px"])
def test_a_bad_geometry_description_is_refused_naming_it(text):
    with pytest.raises(ValueError, match="is not a face geometry"):
        Geometry.parse(text)


def test_kfold_correct_is_the_per_pair_outcome_behind_kfold_accuracy():
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 0], 200)
    scores = rng.normal(labels * 0.8, 1.0)
    folds = np.tile(np.arange(10), 40)
    correct = kfold_correct(scores, labels, folds)
    report = kfold_accuracy(scores, labels, folds)
    assert [correct[folds == f].mean() for f in range(10)] == pytest.approx(report["fold_accuracies"])


def test_paired_difference_finds_a_real_gap_and_not_a_tie():
    rng = np.random.default_rng(1)
    b = rng.random(2000) < 0.7
    a = b | (rng.random(2000) < 0.5)  # a gets every pair b gets, and about half of the others
    gap = paired_difference(a, b)
    assert gap["difference"] == pytest.approx(a.mean() - b.mean())
    assert gap["ci"][0] > 0 and gap["p_value"] < 1e-10 and gap["b_only"] == 0
    assert verdict(gap["ci"]) == "above" and verdict(gap["ci"], margin=1.0) == "below"
    tie = paired_difference(b, b)
    assert tie == {"difference": 0.0, "ci": [0.0, 0.0], "p_value": 1.0, "pairs": 2000, "a_only": 0, "b_only": 0}
    noise = paired_difference(rng.random(300) < 0.7, rng.random(300) < 0.7)
    assert noise["ci"][0] < noise["difference"] < noise["ci"][1]


def test_paired_difference_refuses_unpaired_outcomes():
    with pytest.raises(ValueError, match="one shape"):
        paired_difference(np.ones(5, bool), np.ones(4, bool))


def test_init_facenet_needs_facenet_s_backbone_and_embedding():
    with pytest.raises(ConfigError, match="'supervised.init' = 'facenet_casia' .* needs 'backbone' = 'facenet_casia'"):
        config.build(config.Params, {"supervised": {"init": "facenet_casia"}})
    with pytest.raises(ConfigError, match="semisupervised.init"):
        config.build(config.Params, {"semisupervised": {"init": "facenet_casia"}})
    ok = config.build(config.Params, {"pgd_at": {"init": "facenet_casia", "backbone": "facenet_casia",
                                                 "embedding_dim": 512}})
    assert ok.pgd_at.init == "facenet_casia" and ok.supervised.init == "scratch"


def test_the_facenet_preset_extends_the_real_one_and_validates():
    base = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    merged = presets.apply(base, "real_facenet")
    real = presets.load("real")
    assert merged["data"]["image_size"] == 160 and merged["data"]["alignment"] == "box"
    assert merged["semisupervised"]["max_epochs"] == real["semisupervised"]["max_epochs"]  # from `real`
    assert merged["adversarial"]["init"] == "facenet_casia" and merged["adversarial"]["attack_steps"] == 2
    assert merged["evaluate"]["variants"][0] == "pretrained" and merged["identify"]["model"] == "pretrained"
    assert "_extends" not in merged


def test_a_preset_that_extends_itself_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(presets, "FOLDER", tmp_path)
    (tmp_path / "a.yaml").write_text("_extends: b\n")
    (tmp_path / "b.yaml").write_text("_extends: a\n")
    with pytest.raises(ConfigError, match="preset 'a' extends itself: a -> b -> a"):
        presets.load("a")


def test_a_model_refuses_faces_cut_another_way_naming_both():
    model = build_face_model("ae_encoder", embedding_dim=8, input_size=32, geometry="box+8px 32px", image_size=32,
                             channels=(4, 4, 4))
    check_crops(model, "box+8px 32px", "the training source")  # the same cut: no error
    with pytest.raises(DataError, match=r"takes faces cut as box\+8px 32px, but benchmark set 'x' was cut as "
                                        r"arcface 32px"):
        check_crops(model, "arcface 32px", "benchmark set 'x'")


def test_fine_tuning_from_facenet_needs_facenet_s_crops(facenet_cache):
    cfg = config.build(config.Params, {"supervised": {"init": "facenet_casia", "backbone": "facenet_casia",
                                                      "embedding_dim": 512}}).supervised
    with pytest.raises(DataError, match=r"init 'facenet_casia' .* box\+32px 160px; the data stage cut arcface 112px"):
        build_model(cfg, Geometry(112), seed=0, cache_dir=facenet_cache)
    model = build_model(cfg, GEOMETRY, seed=0, cache_dir=facenet_cache)
    reference = pretrained_face_model(facenet_cache)
    assert model.training and model.geometry == GEOMETRY.describe()
    assert all(np.array_equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))


def test_the_suite_embeds_as_fast_as_the_bare_network_and_the_same(facenet_cache, one_thread):
    model = pretrained_face_model(facenet_cache)
    faces = np.random.default_rng(0).integers(0, 256, (4, 160, 160, 3), dtype=np.uint8)
    out = embed_vs_bare(model, faces, batch_size=2, repeats=1)
    assert out["max_abs_difference"] < 1e-5 and out["images"] == 4
    assert out["suite_images_per_second"] > 0 and out["bare_images_per_second"] > 0


def test_findings_compare_every_variant_with_the_pretrained_row_by_a_paired_test():
    verification = {"accuracy_mean": 0.95, "accuracy_std": 0.02}
    evaluation = {"pretrained": {"h": {"verification": verification, "robustness": {
        "pgd_linf": {"eps_4": {"robust_accuracy": 0.0}, "median_min_perturbation": {"dodging": 1 / 255}},
        "worst_case_robust_accuracy": {"eps_4": {"value": 0.0, "ci": [0.0, 0.015], "n": 256, "attacks": ["pgd_linf"],
                                                 "pgd_linf": {"value": 0.0, "ci": [0.0, 0.015]}}}}}},
        "supervised": {"h": {"verification": {"accuracy_mean": 0.94, "accuracy_std": 0.03}}}}
    comparisons = {"reference": "pretrained", "sets": {"h": {"supervised": {
        "difference": -0.01, "ci": [-0.02, 0.0], "p_value": 0.04, "pairs": 6000}}}}
    run = {"variants": {"pretrained": {"weights": "facenet_casia as is"},
                        "supervised": {"weights": "fine-tuned from facenet_casia"}}}
    decided = [{"source": "pretrained", "statement": "fine-tuned supervised no worse than pretrained by more than its "
                "own fold std", "benchmark": "h", "a": "supervised", "b": "pretrained", "metric": "clean",
                "kind": "no_worse", "margin": 0.03, "difference": -0.01, "ci": [-0.02, 0.0], "p_value": 0.04,
                "pairs": 6000, "verdict": "met"}]
    text = " ".join(pretrained_findings(evaluation, comparisons, run, decided, "h"))
    assert "pretrained (facenet_casia as is) reaches 0.950 ± 0.020" in text
    assert "dodged within 1.00/255" in text and "RobFR" in text
    assert "supervised − pretrained: -1.0 points [-2.0, +0.0]" in text and "McNemar p = 0.04" in text
    assert "Fine-tuned supervised no worse than pretrained by more than its own fold std (clean accuracy)" in text
    assert "target above −3.0 points: met" in text
    assert pretrained_findings(evaluation, None, run, decided, "h") == []
    trained = {"variants": {"pretrained": {"weights": "scratch"}}}  # a trained reference: no pretrained paragraph
    assert pretrained_findings(evaluation, comparisons, trained, decided, "h") == []


@pytest.fixture(scope="module")
def orl_facenet(tmp_path_factory, real_data_dir, facenet_cache):
    """The data stage on ORL cut as FaceNet takes faces (160 px box), the converted weights in its cache."""
    root = tmp_path_factory.mktemp("orl_facenet")
    raw = {
        "paths": {"artifacts": str(root / "a"), "reports": str(root / "r")},
        "data": {"source": "folder", "path": str(real_data_dir / "orl"), "image_size": 160, "alignment": "box",
                 "box_margin": 32,
                 "protocol": {"folds": 2, "pairs_per_fold": 100, "val_pairs": 200, "label_fraction": 1.0}},
        "identify": {"model": "pretrained", "database": str(root / "a/identify/people.sqlite")},
        "evaluate": {"variants": ["pretrained"],
                     "robustness": {"attacks": ["pgd_linf"], "pairs": 4, "steps": 2, "binary_steps": 0}},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    params = config.load(root / "params.yaml")
    data_stage.run(params)
    cache = cache_path(root / "a/pretrained")
    cache.parent.mkdir(parents=True)
    shutil.copy(cache_path(facenet_cache), cache)
    return root, params


@pytest.mark.slow
@pytest.mark.real_data
def test_the_pretrained_row_is_evaluated_like_any_variant(orl_facenet, one_thread):
    root, params = orl_facenet
    result = evaluate_stage.run(params)
    evaluation = json.loads((root / "r/metrics/evaluation.json").read_text())
    run = json.loads((root / "r/metrics/evaluate_run.json").read_text())
    comparisons = json.loads((root / "r/metrics/comparisons.json").read_text())
    assert evaluation == result.evaluation and list(evaluation) == ["pretrained"]
    assert evaluation["pretrained"]["heldout"]["verification"]["accuracy_mean"] >= 0.95  # FaceNet on ORL
    assert "pgd_linf" in evaluation["pretrained"]["heldout"]["robustness"]
    assert run["variants"]["pretrained"]["weights"] == "facenet_casia as is" and run["peak_rss_mb"] > 100
    assert comparisons == {"reference": "pretrained", "sets": {"heldout": {}}}


@pytest.mark.slow
@pytest.mark.real_data
def test_the_real_clip_names_lin_manuel_miranda_with_the_pretrained_embedder(orl_facenet, real_data_dir, capsys):
    root, _ = orl_facenet
    args = ["--params", str(root / "params.yaml"), "--model", "pretrained"]
    assert cli.main(["enroll", *args, "--folder", str(real_data_dir / "photos")]) == 0
    clip = real_data_dir / "videos" / "lin_manuel_miranda" / "short_hamilton_clip.mp4"
    assert cli.main(["identify", *args, "--video", str(clip)]) == 0
    out = capsys.readouterr().out
    assert "enrolled 6 identities" in out
    line = out.strip().splitlines()[-1]
    assert line.startswith("identity: lin_manuel_miranda ") and "on the model's validation pairs" in line
    assert "runner-up: " in line
