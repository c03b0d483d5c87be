"""The training and identification stages end to end on a tiny preset, and the enroll/identify CLI."""

import dataclasses
import json
import shutil

import cv2
import numpy as np
import pytest
import torch
import yaml

from benchmark import cli, config, device
from benchmark.errors import ConfigError
from benchmark.evaluation import stage as evaluation_stage
from benchmark.federated import local
from benchmark.data import stage as data_stage
from benchmark.data.dataset import load_dataset
from benchmark.identify import stage as identify_stage
from benchmark.models.checkpoint import embed_images, load_model
from benchmark.train import stage as train_stage
from benchmark.train.recipe import training_images

VERIFICATION_KEYS = {"accuracy_mean", "accuracy_std", "auc", "eer", "tar_at_far_1e-3"}
SHORT = {"max_epochs": 2, "batch_size": 16, "embedding_dim": 16}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    raw = {
        "paths": {"artifacts": str(root / "a"), "reports": str(root / "r")},
        "data": {
            "image_size": 32,
            "synthetic": {"identities": 24, "images_per_identity": 4, "video_frames": 5},
            "protocol": {"folds": 4, "pairs_per_fold": 10, "institutions": 2, "label_fraction": 0.5},
        },
        "supervised": SHORT,
        "semisupervised": SHORT,
        "timm_reference": {**SHORT, "backbone": "mobilenetv3_small_100", "head": "cosface"},
        "adversarial": {**SHORT, "patience": 2, "attack_steps": 1, "threshold": 23.0},
        "pgd_at": {**SHORT, "patience": 2, "attack_steps": 1},
        "trades": {**SHORT, "patience": 2, "attack_steps": 1},
        "natural_then_at": {**SHORT, "patience": 2, "attack_steps": 1, "switch": 0.5},
        "identify": {"database": str(root / "a/identify/ids.sqlite"), "quality": {"assume_cropped": True}},
    }
    params = config.build(config.Params, raw)
    data_stage.run(params)
    return root, params


@pytest.mark.parametrize("name", train_stage.STAGES)
def test_training_stage_writes_metrics_contract_and_a_loadable_model(tiny, name):
    root, params = tiny
    adversarial = name in ("adversarial", "pgd_at", "trades", "natural_then_at")
    result = train_stage.run(name, params, worst_case=adversarial)
    metrics = json.loads((root / f"r/metrics/{name}.json").read_text())
    assert VERIFICATION_KEYS <= set(metrics["verification"])
    assert metrics["epochs"] == 2 and metrics["params"] > 0 and metrics["train_seconds"] > 0
    model = load_model(root / f"a/models/{name}.pt")
    images = load_dataset(params).images[:5]
    assert np.allclose(embed_images(model, images), embed_images(result.model, images), atol=1e-5)
    assert (root / f"r/plots/{name}_curves.json").is_file()
    if adversarial:  # scored on validation pairs after training
        robust, worst = metrics["validation"]["robust_accuracy"], metrics["validation"]["worst_case_robust_accuracy"]
        assert robust["n"] == worst["n"] == min(params.adversarial.validation_attack_pairs, metrics["validation"]["pairs"])
        # the worst case adds APGD and Square to PGD at 4/255 (= the training eps here) on the same pairs and seed
        assert worst["attacks"] == ["pgd_linf", "apgd", "square"] and worst["pgd_linf"]["value"] == robust["value"]
        assert 0 <= worst["value"] <= robust["value"] <= 1
    if name in ("pgd_at", "trades"):
        assert metrics["adversarial_fraction"] == 1.0 and metrics["switches"] == 0
        assert not (root / f"r/plots/{name}_gate.json").exists()


def test_adversarial_stages_count_forward_backward_passes_and_natural_then_at_switches_midway(tiny):
    # Prepare: 2 epochs of batches of 16, an epoch as long as the semi-supervised stage's
    root, params = tiny
    p = load_dataset(params).protocol
    steps = 2 * -(-max(len(training_images(params.pgd_at, p)), len(p.unlabelled)) // 16)
    # Execute
    passes = {name: train_stage.run(name, params).metrics["passes"] for name in ("pgd_at", "natural_then_at")}
    metrics = json.loads((root / "r/metrics/natural_then_at.json").read_text())
    # Assert: PGD-AT with 1 attack step forwards every image twice with autograd on (the attack's step and the
    # update); natural_then_at does so for the second half of its steps and once in the first half
    assert passes["pgd_at"] == 2 * 16 * steps
    assert passes["natural_then_at"] == 16 * (steps // 2) + 2 * 16 * (steps - steps // 2)
    assert metrics["adversarial_fraction"] == pytest.approx((steps - steps // 2) / steps, abs=1e-4)
    # the DAG's stages score PGD on validation pairs (make tune's measure) and leave the worst case to make gate-sweep
    assert "robust_accuracy" in metrics["validation"] and "worst_case_robust_accuracy" not in metrics["validation"]


def test_gate_sweep_writes_every_point_its_data_and_the_choices_and_leaves_the_workspace_alone(tiny, tmp_path, capsys):
    # Prepare: the tiny workspace as a params file; its gated stage's metrics as the workspace holds them
    root, params = tiny
    params_file, out = tmp_path / "params.yaml", tmp_path / "sweep.json"
    params_file.write_text(yaml.safe_dump(config.as_dict(params)))
    train_stage.run("adversarial", params)
    before = (root / "r/metrics/adversarial.json").read_bytes()
    # Execute
    code = cli.main(["gate-sweep", "--params", str(params_file), "--thresholds", "1,23", "--switches", "0.5",
                     "--out", str(out)])
    # Assert: two thresholds, one switch, PGD-AT and TRADES, each scored on validation pairs
    sweep = json.loads(out.read_text())
    assert code == 0 and [(r["variant"], r["threshold"], r["switch"]) for r in sweep["rows"]] == [
        ("adversarial", 1.0, None), ("adversarial", 23.0, None), ("natural_then_at", None, 0.5), ("pgd_at", None, None),
        ("trades", None, None)]
    manifest = json.loads((root / "a/data/manifest.json").read_text())
    assert sweep["data_hashes"] == {k: manifest["hashes"][k] for k in ("faces_sha256", "protocol_sha256")}
    assert sweep["params"]["adversarial"] == config.as_dict(params.adversarial) and sweep["params"]["seed"] == params.seed
    # a threshold of 1 nat keeps the gate off on these faces (their CE is above it): no attack, fewer passes
    assert sweep["rows"][0]["passes"] < sweep["rows"][1]["passes"] and all(0 <= r["worst_case_robust_accuracy"] <= 1 for r in sweep["rows"])
    assert sweep["choice"]["adversarial"]["settings"] == [1.0, 23.0] and sweep["choice"]["natural_then_at"]["chosen"] == 0.5
    assert "adversarial.threshold: chosen" in capsys.readouterr().out
    assert (root / "r/metrics/adversarial.json").read_bytes() == before
    # the sweep's point at the workspace's threshold is the workspace's model: the report lets it stand for the stage
    stage_metrics = json.loads(before)
    assert (sweep["rows"][1]["passes"], sweep["rows"][1]["clean_accuracy"]) == (
        stage_metrics["passes"], stage_metrics["validation"]["accuracy"])
    # bad settings are a one-line error naming them, and nothing is written
    assert cli.main(["gate-sweep", "--params", str(params_file), "--switches", "1.5", "--out", str(tmp_path / "x.json")]) == 2
    assert "--switches '1.5'" in capsys.readouterr().err and not (tmp_path / "x.json").exists()


def test_label_study_pairs_both_stages_per_fraction_over_seeds_and_keeps_other_inits(tiny, tmp_path, capsys):
    # Prepare: the tiny workspace as a params file; a study file that already holds another init's entry
    root, params = tiny
    params_file, out = tmp_path / "params.yaml", tmp_path / "study.json"
    params_file.write_text(yaml.safe_dump(config.as_dict(params)))
    out.write_text(json.dumps({"facenet_casia": {"fractions": {}}}))
    # Execute
    code = cli.main(["label-study", "--params", str(params_file), "--fractions", "0.25,1.0", "--seeds", "0,1",
                     "--out", str(out)])
    # Assert: both fractions under the scratch init, each with its paired test over the two seeds
    study = json.loads(out.read_text())
    assert code == 0 and set(study) == {"facenet_casia", "scratch"}
    rows, protocol = study["scratch"]["fractions"], load_dataset(params).protocol
    assert list(rows) == ["0.25", "1.0"] and rows["1.0"]["unlabelled_images"] == 0
    assert rows["0.25"]["labelled_images"] == round(0.25 * len(protocol.train)) and rows["0.25"]["seeds"] == [0, 1]
    for row in rows.values():
        assert row["pairs"] == len(protocol.pairs) and row["ci"][0] <= row["difference"] <= row["ci"][1]
        assert row["difference"] == pytest.approx(row["semisupervised"] - row["supervised"]) and 0 < row["p_value"] <= 1
        assert len(row["epochs"]["supervised"]) == len(row["epochs"]["semisupervised"]) == 2
    manifest = json.loads((root / "a/data/manifest.json").read_text())
    assert study["scratch"]["data"]["hashes"] == manifest["hashes"] and "label fraction 0.25" in capsys.readouterr().out
    # bad settings are a one-line error naming them
    assert cli.main(["label-study", "--params", str(params_file), "--fractions", "0", "--out", str(out)]) == 2
    assert "--fractions '0'" in capsys.readouterr().err


def test_label_study_adds_seeds_to_the_kept_runs_and_refuses_a_study_with_other_params(tiny, tmp_path, capsys):
    # Prepare: a study of fraction 0.5 at seed 0 in the file
    _, params = tiny
    params_file, out = tmp_path / "params.yaml", tmp_path / "study.json"
    params_file.write_text(yaml.safe_dump(config.as_dict(params)))
    study = ["label-study", "--params", str(params_file), "--fractions", "0.5", "--out", str(out)]
    assert cli.main([*study, "--seeds", "0"]) == 0
    first = json.loads(out.read_text())["scratch"]
    capsys.readouterr()
    # Execute: seeds 0 and 1 asked for
    assert cli.main([*study, "--seeds", "0,1"]) == 0
    # Assert: only seed 1 trained; the paired test runs over both seeds, seed 0's runs the kept ones
    printed = capsys.readouterr().out
    assert "label study 2/2: semisupervised, label fraction 0.5, seed 1" in printed and "seed 0" not in printed
    entry = json.loads(out.read_text())["scratch"]
    assert entry["fractions"]["0.5"]["seeds"] == [0, 1] and len(entry["runs"]) == 4
    assert [r for r in entry["runs"] if r["seed"] == 0] == first["runs"]
    assert entry["command"] == f"facebench label-study --params {params_file} --fractions 0.5 --seeds 0,1 --out {out}"
    # another learning rate is another study: refused with the file untouched, replaced with --fresh
    other = config.as_dict(params)
    other["supervised"]["lr"] *= 2
    params_file.write_text(yaml.safe_dump(other))
    before = out.read_text()
    assert cli.main([*study, "--seeds", "1"]) == 2
    assert "its 'scratch' study differs from this one in params; pass --fresh" in capsys.readouterr().err
    assert out.read_text() == before
    assert cli.main([*study, "--seeds", "1", "--fresh"]) == 0
    assert json.loads(out.read_text())["scratch"]["fractions"]["0.5"]["seeds"] == [1]


def test_hardened_stage_reports_fraction_and_switches_consistent_with_its_gate(tiny):
    # Prepare
    root, params = tiny
    # Execute
    train_stage.run("adversarial", params)
    # Assert
    metrics = json.loads((root / "r/metrics/adversarial.json").read_text())
    rows = json.loads((root / "r/plots/adversarial_gate.json").read_text())
    switches = json.loads((root / "r/plots/adversarial_switches.json").read_text())
    on = [r["on"] for r in rows]
    changes = [i + 1 for i in range(len(on)) if on[i] != (on[i - 1] if i else 0)]
    # a switch decided on the last batch's loss takes effect after the run: it has no row
    assert [s["step"] + 1 for s in switches if s["step"] < len(rows)] == changes and metrics["switches"] == len(switches) > 0
    assert metrics["adversarial_fraction"] == pytest.approx(sum(on) / len(on), abs=1e-4)
    assert all((r["loss"] < 23.0) == bool(nxt["on"]) for r, nxt in zip(rows, rows[1:]))


def test_identification_stage_reports_frame_choices(tiny):
    root, params = tiny
    train_stage.run("semisupervised", params)
    result = identify_stage.run(params)
    metrics = json.loads((root / "r/metrics/identification.json").read_text())
    for key in ("rank1_selected_frame", "rank1_random_frame", "rank1_worst_frame", "quality_spearman", "gallery_size"):
        assert key in metrics
    protocol = load_dataset(params)
    assert metrics["gallery_size"] == len(np.unique(protocol.labels[protocol.protocol.gallery]))
    assert result.measured.shape == result.truth.shape == (metrics["videos"], 5)
    # 5 frames a video, round(0.5 * 5) = 2 spoiled; the paired test is on the closed-set videos
    assert metrics["spoiled_share"] == pytest.approx(0.4) and 0 <= metrics["selection_p_value"] <= 1
    diff = metrics["selection_difference"]
    assert diff["difference"] == pytest.approx(metrics["rank1_selected_frame"] - metrics["rank1_random_frame"])
    assert diff["ci"][0] <= diff["difference"] <= diff["ci"][1] and metrics["closed_set_videos"] <= metrics["videos"]
    # the gate was calibrated on the validation identities' videos, not on the test videos
    gate = metrics["quality_gate"]
    validation_ids = np.unique(protocol.labels[protocol.protocol.val_pairs])
    assert gate["calibration_videos"] == len(validation_ids) and not set(validation_ids) & set(protocol.labels[protocol.protocol.test])
    assert {"min_sharpness", "min_brightness", "min_symmetry"} <= set(gate["thresholds"])  # assume_cropped's checks
    assert 0 <= gate["rank1_selected_frame_params_gate"] <= 1 and 0 <= gate["calibrated_clean_pass_rate"] <= 1


def test_identification_without_videos_identifies_the_probe_stills(tiny, tmp_path):
    root, params = tiny
    train_stage.run("semisupervised", params)
    stills = tmp_path / "a"
    shutil.copytree(root / "a", stills)
    (stills / "data/videos.npz").unlink()
    raw = {"paths": {"artifacts": str(stills), "reports": str(tmp_path / "r")}, "data": {"image_size": 32},
           "identify": {"database": str(stills / "identify/ids.sqlite")}}
    result = identify_stage.run(config.build(config.Params, raw))
    protocol = load_dataset(params).protocol
    assert result.frames is None and result.metrics["videos"] == 0
    assert result.top_scores.shape == result.known.shape == (len(protocol.probes),)
    assert result.metrics["probes"] == len(protocol.probes)
    assert 0.0 <= result.metrics["open_set"]["known_correct"] <= 1.0
    assert json.loads((tmp_path / "r/metrics/identification.json").read_text()) == result.metrics


def test_cli_enrolls_a_folder_and_identifies_a_video(tiny, tmp_path, capsys):
    root, params = tiny
    data = load_dataset(params)
    folder = tmp_path / "people"
    for label in (0, 1, 2):
        (folder / f"person{label}").mkdir(parents=True)
        for k, index in enumerate(np.flatnonzero(data.labels == label)[:2]):
            cv2.imwrite(str(folder / f"person{label}" / f"{k}.png"), data.images[index][..., ::-1])
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (32, 32))
    for index in np.flatnonzero(data.labels == 1)[2:4]:
        writer.write(data.images[index][..., ::-1])
    writer.release()
    params_file = tmp_path / "params.yaml"
    params_file.write_text("data:\n  image_size: 32\n  detect: never\nidentify:\n  quality:\n    assume_cropped: true\n"
                           "    min_sharpness: 0.0\n    min_symmetry: 0.0\n")
    common = ["--params", str(params_file), "--model", str(root / "a/models/semisupervised.pt"), "--db", str(tmp_path / "db.sqlite")]
    assert cli.main(["enroll", *common, "--folder", str(folder)]) == 0
    assert "enrolled 3 identities" in capsys.readouterr().out
    assert cli.main(["identify", *common, "--video", str(video), "--threshold", "-1"]) == 0
    assert "identity: person" in capsys.readouterr().out


def test_cli_errors_are_one_line_with_status_2(tiny, tmp_path, capsys):
    root, _ = tiny
    params_file = tmp_path / "params.yaml"
    params_file.write_text("data:\n  image_size: 32\n")
    model = str(root / "a/models/semisupervised.pt")
    code = cli.main(["identify", "--params", str(params_file), "--model", model, "--db", str(tmp_path / "none.sqlite"),
                     "--video", str(tmp_path / "missing.mp4")])
    assert code == 2 and "missing.mp4" in capsys.readouterr().err
    code = cli.main(["enroll", "--params", str(params_file), "--model", model, "--db", str(tmp_path / "db.sqlite"),
                     "--folder", str(tmp_path / "nobody")])
    assert code == 2 and "nobody" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("semisupervised:\n  g: 0.4\n")
    assert cli.main(["validate", "--params", str(bad)]) == 2
    assert "'semisupervised.g' = 0.4" in capsys.readouterr().err


# A device only these tests ask for: unequal to torch.device("cpu"), yet what is sent there lands on the CPU,
# so each request is recorded and the stages still run on a machine without CUDA.
REQUESTED = torch.device("cpu", 0)


@pytest.fixture
def moved(monkeypatch):
    """The class names of the modules sent to REQUESTED, with every stage's device resolving to it."""
    names = []
    original = torch.nn.Module.to

    def to(self, *args, **kwargs):
        if REQUESTED in args or kwargs.get("device") == REQUESTED:
            names.append(type(self).__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    for module in (train_stage, identify_stage, evaluation_stage, local):
        monkeypatch.setattr(module, "resolve", lambda name: REQUESTED)
    return names


@pytest.mark.parametrize("name", ["supervised", "semisupervised", "adversarial"])
def test_training_stages_train_on_the_configured_device(tiny, moved, name):
    train_stage.run(name, tiny[1])
    assert moved[0] == "FaceModel" and (name != "semisupervised" or "SemiSupervisedAE" in moved)


def test_identification_federated_and_evaluation_put_their_models_on_the_configured_device(tiny, moved):
    _, params = tiny
    train_stage.run("supervised", params)  # the model the other stages load
    identify_stage.run(dataclasses.replace(params, identify=dataclasses.replace(params.identify, model="supervised")))
    local.new_model(params, load_dataset(params).geometry)
    evaluation_stage.load_variant(params, "supervised")
    assert moved.count("FaceModel") == 4


def test_cuda_without_a_cuda_device_is_a_one_line_config_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"device: cuda, but torch .* sees no CUDA device; use device: auto or "
                                          r"device: cpu") as err:
        device.resolve("cuda")
    assert "\n" not in str(err.value)
    assert device.resolve("auto") == torch.device("cpu")


def with_section(params, name, **changes):
    return dataclasses.replace(params, **{name: dataclasses.replace(getattr(params, name), **changes)})


@pytest.mark.parametrize("name", ["supervised", "semisupervised"])
def test_a_stage_trains_in_bf16_autocast_with_channels_last_weights(tiny, name):
    _, params = tiny
    result = train_stage.run(name, with_section(params, name, precision="bf16", channels_last=True))
    conv = next(m for m in result.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and conv.weight.dtype == torch.float32
    assert all(np.isfinite(result.history["curves"]["loss_a"]["train"]))
    assert 0.0 <= result.metrics["verification"]["accuracy_mean"] <= 1.0


def test_fp16_on_the_cpu_is_a_one_line_config_error(tiny):
    _, params = tiny
    with pytest.raises(ConfigError, match="precision: fp16 needs a CUDA device .* use precision: bf16 or fp32") as err:
        train_stage.run("supervised", with_section(params, "supervised", precision="fp16", max_epochs=1))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["semisupervised", "adversarial"])
def test_a_stage_trains_with_loader_workers(tiny, name):
    _, params = tiny
    result = train_stage.run(name, with_section(params, name, loader_workers=2))
    assert result.metrics["epochs"] == 2 and 0.0 <= result.metrics["verification"]["accuracy_mean"] <= 1.0
