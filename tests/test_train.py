"""The convergence rule, batches, and short runs of the training loops and the throughput benchmark."""

import copy
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.data.synthetic import generate
from benchmark.models.autoencoder import SemiSupervisedAE
from benchmark.models.face_model import build_face_model
from benchmark.models.registry import create_head
from benchmark.train.bare import throughput_ratio
from benchmark.train.common import BatchStream, TrainConfig, ValPairs, load_batch, make_schedule, val_pair_accuracy
from benchmark.train.convergence import all_converged, converged_at
from benchmark.train.loop import fit, train_semisupervised, train_supervised

SIZE = 16


@pytest.mark.parametrize(
    "values, patience, min_delta, expected",
    [
        ([5, 4, 3, 2, 1], 2, 0.01, None),  # still improving
        ([5, 4, 4, 4], 2, 0.01, 4),  # two stale epochs after the best (epoch 2)
        ([5, 4, 3.99, 3.98, 3.97], 3, 0.01, 5),  # improvements under 1% do not count
        ([5, 4, 4, 3, 3, 3], 2, 0.01, 6),  # an improvement resets the count
        ([5, 6, 7], 1, 0.0, 2),  # patience 1: the first epoch without improvement
        ([5, float("nan"), float("nan")], 2, 0.01, 3),  # NaN never improves
        ([], 2, 0.01, None),
    ],
)
def test_converged_at_on_scripted_curves(values, patience, min_delta, expected):
    assert converged_at(values, patience, min_delta) == expected


@pytest.mark.parametrize(
    "values, patience, min_delta, expected",
    [
        ([0.5, 0.6, 0.7, 0.8], 2, 0.01, None),  # still improving
        ([0.5, 0.7, 0.7, 0.69], 2, 0.01, 4),  # two stale epochs after the best (epoch 2)
        ([0.5, 0.7, 0.705, 0.709, 0.71], 3, 0.01, 5),  # gains of at most 0.01 do not count, nor move the best
        ([0.5, 0.7, 0.7, 0.75, 0.75, 0.75], 2, 0.01, 6),  # an improvement resets the count
        ([0.9, 0.8, 0.7], 1, 0.0, 2),  # patience 1: the first epoch without improvement
        ([0.5, float("nan"), float("nan")], 2, 0.01, 3),  # NaN never improves
        ([], 2, 0.01, None),
    ],
)
def test_converged_at_in_max_mode_on_scripted_accuracy_curves(values, patience, min_delta, expected):
    assert converged_at(values, patience, min_delta, mode="max") == expected


def test_all_converged_judges_each_curve_separately_and_rejects_bad_settings():
    curves = {"loss_a": [3, 2, 2, 2], "loss_b": [3, 2, 1, 0.5], "val_accuracy": [0.5, 0.6, 0.6, 0.6]}
    assert all_converged(curves, 2, 0.01, maximize=("val_accuracy",)) == {"loss_a": 4, "loss_b": None, "val_accuracy": 4}
    assert all_converged({"val_accuracy": [0.5, 0.6, 0.7]}, 2, 0.01) == {"val_accuracy": 3}  # judged as a loss
    with pytest.raises(ValueError, match="patience"):
        converged_at([1.0], 0, 0.01)
    with pytest.raises(ValueError, match="min_delta"):
        converged_at([1.0], 1, 1.5)
    with pytest.raises(ValueError, match="mode 'up'"):
        converged_at([1.0], 1, 0.01, mode="up")


def test_batch_stream_gives_full_batches_covering_every_index_each_pass():
    # Prepare
    stream = BatchStream(np.arange(10, 20), 4, np.random.default_rng(0))
    # Execute
    batches = [stream.next() for _ in range(5)]
    # Assert: 20 draws = two passes over the 10 indices
    assert all(len(b) == 4 for b in batches)
    assert sorted(np.concatenate(batches).tolist()) == sorted(list(range(10, 20)) * 2)


def test_load_batch_converts_and_flips_whole_images():
    # Prepare
    images = np.random.default_rng(0).integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    idx = np.array([5, 0, 3, 3])
    # Execute
    x = load_batch(images, idx, torch.device("cpu"), "flip", np.random.default_rng(1))
    # Assert
    plain = torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float() / 255
    flipped = [torch.equal(x[i], plain[i].flip(2)) for i in range(4)]
    kept = [torch.equal(x[i], plain[i]) for i in range(4)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped)


def test_schedules_decay_the_learning_rate():
    for schedule, last in (("cosine", 0.0), ("step", 0.01)):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = make_schedule(opt, TrainConfig(max_epochs=4, schedule=schedule), steps_per_epoch=5)
        lrs = []
        for _ in range(20):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert lrs[0] == 1.0 and lrs == sorted(lrs, reverse=True)
        assert opt.param_groups[0]["lr"] == pytest.approx(last, abs=1e-9)


def test_train_config_rejects_bad_values():
    with pytest.raises(ValueError, match=r"g = 1.0 is out of range; allowed: \(0.5, 1.0\)"):
        TrainConfig(g=1.0)
    with pytest.raises(ValueError, match="optimizer 'adam'"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match=r"head_epochs and head_lr apply when fine-tuning"):
        TrainConfig(head_epochs=1)
    with pytest.raises(ValueError, match=r"head_epochs must be in \[0, max_epochs = 3\), got 3"):
        TrainConfig(max_epochs=3, head_epochs=3, fine_tune=True)


@pytest.fixture(scope="module")
def data():
    faces, _ = generate(0, 6, 8, SIZE, difficulty=0.3, progress=False)
    idx = np.arange(len(faces.labels))
    val = idx[idx % 8 == 0]
    train = np.setdiff1d(idx, val)
    return faces.images, faces.labels, train[train % 2 == 0], train[train % 2 == 1], val


def _model(seed: int = 0):
    return build_face_model("ae_encoder", seed=seed, embedding_dim=16, image_size=SIZE, channels=(8, 16, 16))


def test_a_short_supervised_run_lowers_the_loss_and_is_deterministic(data):
    # Prepare
    images, labels, labelled, _, val = data
    cfg = TrainConfig(max_epochs=10, batch_size=8, lr=1e-2, patience=50, progress=False)
    # Execute
    runs = [
        train_supervised(
            _model(), create_head("softmax", embedding_dim=16, num_classes=6), images, labels, labelled, val, cfg
        )
        for _ in range(2)
    ]
    # Assert
    curve = runs[0]["curves"]["loss_a"]
    assert curve["train"][-1] < 0.75 * curve["train"][0] and curve["val"][-1] < 0.75 * curve["val"][0]
    assert runs[0]["curves"] == runs[1]["curves"]
    assert (
        runs[0]["epochs"] == 10 and runs[0]["converged_at"] == {"loss_a": None} and runs[0]["stopped"] == "max_epochs"
    )
    assert runs[0]["images_per_second"] > 0 and runs[0]["seconds"] >= runs[0]["train_seconds"]
    assert runs[0]["best_epoch"] is None and runs[0]["kept_epoch"] == 10 and "val_accuracy" not in runs[0]["curves"]


def test_supervised_run_stops_once_loss_a_has_converged(data):
    images, labels, labelled, _, val = data
    cfg = TrainConfig(max_epochs=30, batch_size=8, patience=1, min_delta=0.9, progress=False)
    history = train_supervised(
        _model(), create_head("cosface", embedding_dim=16, num_classes=6), images, labels, labelled, val, cfg
    )
    assert history["epochs"] == history["converged_at"]["loss_a"] == 2 and history["stopped"] == "converged"


def test_epoch_images_sets_the_steps_of_a_supervised_epoch(data):
    # Prepare
    images, labels, labelled, _, val = data
    model = _model()
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(module.training))
    cfg = TrainConfig(max_epochs=2, batch_size=8, patience=50, progress=False)
    # Execute
    train_supervised(
        model,
        create_head("softmax", embedding_dim=16, num_classes=6),
        images,
        labels,
        labelled,
        val,
        cfg,
        epoch_images=40,
    )
    # Assert: 2 epochs x ceil(40 / 8) training steps, the rest are validation passes
    assert sum(calls) == 10


def test_the_head_must_have_one_class_per_labelled_identity(data):
    images, labels, labelled, _, val = data
    with pytest.raises(ValueError, match="num_classes=6"):
        train_supervised(
            _model(),
            create_head("softmax", embedding_dim=16, num_classes=9),
            images,
            labels,
            labelled,
            val,
            TrainConfig(),
        )


def test_a_short_semi_supervised_run_lowers_both_losses_without_collapse(data):
    # Prepare
    images, labels, labelled, unlabelled, val = data
    model = SemiSupervisedAE(_model())
    cfg = TrainConfig(max_epochs=6, batch_size=8, lr=3e-3, patience=50, g=0.75, progress=False)
    # Execute
    history = train_semisupervised(
        model, create_head("arcface", embedding_dim=16, num_classes=6), images, labels, labelled, unlabelled, val, cfg
    )
    # Assert
    curves = history["curves"]
    assert {"loss", "loss_a", "loss_b", "loss1", "loss2", "loss3"} <= set(curves)
    for name in ("loss_a", "loss_b"):
        assert curves[name]["train"][-1] < curves[name]["train"][0]
    first = [curves[k]["train"][0] for k in ("loss", "loss_a", "loss_b")]
    assert first[0] == pytest.approx(0.75 * first[1] + 0.25 * first[2], rel=1e-6)
    assert history["converged_at"] == {"loss_a": None, "loss_b": None} and history["epochs"] == 6
    assert all(len(v) == 6 and v[-1] > 0.1 for v in history["collapse"].values())


def test_a_denoising_run_logs_each_skip_loss_beside_its_mean_map_floor(data):
    images, labels, labelled, unlabelled, val = data
    cfg = TrainConfig(max_epochs=2, batch_size=8, patience=50, noise=0.1, progress=False)
    history = train_semisupervised(SemiSupervisedAE(_model()), create_head("arcface", embedding_dim=16, num_classes=6),
                                   images, labels, labelled, unlabelled, val, cfg)
    curves = history["curves"]
    for k in ("loss1", "loss2", "loss3"):
        assert len(curves[k]["train"]) == len(curves[k]["val"]) == 2
        assert curves[f"{k}_mean_map"]["train"] == [] and 0 < curves[f"{k}_mean_map"]["val"][-1] <= 4
    with pytest.raises(ValueError, match="noise must be in"):
        TrainConfig(noise=1.5)


def test_semi_supervised_run_ends_only_when_both_losses_converged(data):
    images, labels, labelled, unlabelled, val = data
    cfg = TrainConfig(max_epochs=5, batch_size=8, patience=1, min_delta=0.9, progress=False)
    history = train_semisupervised(
        SemiSupervisedAE(_model()),
        create_head("softmax", embedding_dim=16, num_classes=6),
        images,
        labels,
        labelled,
        unlabelled,
        val,
        cfg,
    )
    assert history["converged_at"] == {"loss_a": 2, "loss_b": 2} and history["epochs"] == 2


def test_throughput_ratio_compares_loop_and_bare_images_per_second(data):
    images, labels, labelled, unlabelled, val = data
    head = create_head("softmax", embedding_dim=16, num_classes=6)
    r = throughput_ratio(
        SemiSupervisedAE(_model()),
        head,
        images,
        labels,
        labelled,
        unlabelled,
        val,
        epochs=1,
        repeats=1,
        cfg=TrainConfig(batch_size=8, progress=False),
    )
    assert r["loop_images_per_second"] > 0 and r["bare_images_per_second"] > 0
    assert r["ratio"] == pytest.approx(r["loop_images_per_second"] / r["bare_images_per_second"])
    assert r["steps"] == 3


@pytest.fixture(scope="module")
def val_pairs():
    """Every pair of 12 images of 3 identities that are not in ``data`` (generator seed 1)."""
    faces, _ = generate(1, 3, 4, SIZE, difficulty=0.3, progress=False)
    pairs = np.array([(i, j) for i in range(12) for j in range(i + 1, 12)], np.int64)
    is_same = (faces.labels[pairs[:, 0]] == faces.labels[pairs[:, 1]]).astype(np.int64)
    return ValPairs(faces.images, pairs, is_same)


def test_val_pair_accuracy_returns_accuracy_then_threshold_and_restores_the_mode(val_pairs):
    # Prepare: genuine pairs are an image with itself (cosine 1), impostors two different images
    model = _model()
    pairs = np.array([(0, 0), (4, 4), (8, 8), (0, 4), (4, 8), (0, 8)], np.int64)
    scripted = ValPairs(val_pairs.images, pairs, np.array([1, 1, 1, 0, 0, 0]))
    # Execute
    accuracy, threshold = val_pair_accuracy(model, scripted)
    # Assert
    assert accuracy == 1.0 and threshold <= 1.0
    assert model.training


@pytest.mark.parametrize("keep_best", [True, False])
def test_fit_ends_with_the_weights_of_the_best_val_accuracy_epoch(keep_best):
    # Prepare: every step changes both modules (BatchNorm's running statistics too); validate scripts
    # val_accuracy to peak at epoch 2 and records each epoch's weights
    torch.manual_seed(0)
    modules = [nn.Linear(3, 2), nn.BatchNorm1d(2)]
    x, target = torch.randn(8, 3), torch.randn(8, 2)
    accuracies = iter([0.6, 0.9, 0.7, 0.8])
    states = []

    def step():
        loss = (modules[1](modules[0](x)) - target).pow(2).mean()
        return loss, {"loss": loss.item()}

    def validate():
        states.append([copy.deepcopy(m.state_dict()) for m in modules])
        return {"val_accuracy": next(accuracies)}

    cfg = TrainConfig(max_epochs=4, patience=50, lr=0.1, progress=False)
    # Execute
    history = fit(modules, step, validate, 3, 8, cfg, ("val_accuracy",), "test", keep_best=keep_best)
    # Assert
    kept = 2 if keep_best else 4
    assert history["best_epoch"] == 2 and history["best_val_accuracy"] == 0.9 and history["epochs"] == 4
    assert history["kept_epoch"] == kept and history["curves"]["val_accuracy"]["val"] == [0.6, 0.9, 0.7, 0.8]
    assert not torch.equal(states[1][0]["weight"], states[3][0]["weight"])
    for module, state in zip(modules, states[kept - 1]):
        assert all(torch.equal(v, state[k]) for k, v in module.state_dict().items())


def _scripted_fit(accuracies, cfg):
    """fit over a body (Linear) and a head (Linear) whose validate scripts ``accuracies`` and records the
    weights at each call; returns (history, body, head, states)."""
    torch.manual_seed(0)
    body, head = nn.Linear(3, 4), nn.Linear(4, 2)
    x, target = torch.randn(8, 3), torch.randn(8, 2)
    scripted, states = iter(accuracies), []

    def step():
        loss = (head(body(x)) - target).pow(2).mean()
        return loss, {"loss": loss.item()}

    def validate():
        states.append([copy.deepcopy(m.state_dict()) for m in (body, head)])
        return {"val_accuracy": next(scripted)}

    history = fit([body, head], step, validate, 3, 8, cfg, ("val_accuracy",), "test", keep_best=True, body=body)
    return history, body, head, states


def test_fine_tuning_keeps_the_pretrained_start_when_no_epoch_beats_it():
    # Prepare: the starting weights score 0.95 on validation pairs, every trained epoch less
    cfg = TrainConfig(max_epochs=3, patience=50, lr=0.1, progress=False, fine_tune=True)
    # Execute
    history, body, head, states = _scripted_fit([0.95, 0.6, 0.9, 0.7], cfg)
    # Assert: epoch 0 is kept, the curves still start at epoch 1
    assert history["start_val_accuracy"] == 0.95 and history["best_epoch"] == 0 and history["kept_epoch"] == 0
    assert history["epochs"] == 3 and history["curves"]["val_accuracy"]["val"] == [0.6, 0.9, 0.7]
    assert not torch.equal(states[0][0]["weight"], states[3][0]["weight"])
    for module, state in zip((body, head), states[0]):
        assert all(torch.equal(v, state[k]) for k, v in module.state_dict().items())


def test_fine_tuning_trains_the_head_alone_first_and_at_its_own_learning_rate():
    # Prepare: one head-only epoch, then the whole network; the head at ten times the body's rate
    cfg = TrainConfig(max_epochs=3, patience=50, lr=0.01, head_lr=0.1, head_epochs=1, progress=False, fine_tune=True)
    # Execute
    history, body, head, states = _scripted_fit([0.5, 0.6, 0.7, 0.8], cfg)
    # Assert: states[i] are the weights after epoch i (0 = the start)
    assert history["kept_epoch"] == 3 and all(p.requires_grad for p in body.parameters())
    assert torch.equal(states[0][0]["weight"], states[1][0]["weight"])  # body frozen in epoch 1
    assert not torch.equal(states[0][1]["weight"], states[1][1]["weight"])  # the head trained
    assert not torch.equal(states[1][0]["weight"], states[2][0]["weight"])  # body trains from epoch 2
    # AdamW moves a weight by about its learning rate a step: the head at 0.1 moves ~10x as far as at lr 0.01
    same_rate = _scripted_fit([0.5, 0.6, 0.7, 0.8], dataclasses.replace(cfg, head_lr=0.0))[3]
    moved = [(s[1][1]["weight"] - s[0][1]["weight"]).abs().mean().item() for s in (states, same_rate)]
    assert moved[0] > 5 * moved[1]


def test_fine_tuning_needs_the_body_and_scratch_training_validates_no_start():
    cfg = TrainConfig(max_epochs=2, progress=False, fine_tune=True)
    with pytest.raises(ValueError, match="test: fine-tuning needs the pretrained body"):
        fit([nn.Linear(2, 2)], lambda: None, dict, 1, 1, cfg, (), "test", keep_best=True)
    history, *_ = _scripted_fit([0.5, 0.6, 0.7], TrainConfig(max_epochs=3, patience=50, progress=False))
    assert history["start_val_accuracy"] is None and history["best_epoch"] == 3


def test_supervised_run_with_val_pairs_stops_on_val_accuracy_and_keeps_its_best_epoch(data, val_pairs):
    # Prepare: after epoch 1 no accuracy gain can exceed min_delta = 0.9
    images, labels, labelled, _, val = data
    model = _model()
    cfg = TrainConfig(max_epochs=30, batch_size=8, lr=1e-2, patience=2, min_delta=0.9, progress=False)
    # Execute
    history = train_supervised(
        model, create_head("softmax", embedding_dim=16, num_classes=6), images, labels, labelled, val, cfg,
        val_pairs=val_pairs,
    )
    # Assert
    accuracy = history["curves"]["val_accuracy"]["val"]
    assert history["converged_at"] == {"val_accuracy": 3} and history["epochs"] == 3
    assert len(history["curves"]["loss_a"]["val"]) == 3 and all(0.5 <= a <= 1.0 for a in accuracy)
    assert history["best_val_accuracy"] == max(accuracy) and history["kept_epoch"] == history["best_epoch"]
    assert val_pair_accuracy(model, val_pairs)[0] == pytest.approx(max(accuracy))


def test_semi_supervised_run_with_val_pairs_stops_on_val_accuracy_and_loss_b(data, val_pairs):
    images, labels, labelled, unlabelled, val = data
    model = SemiSupervisedAE(_model())
    cfg = TrainConfig(max_epochs=5, batch_size=8, patience=1, min_delta=0.9, progress=False)
    history = train_semisupervised(
        model, create_head("softmax", embedding_dim=16, num_classes=6), images, labels, labelled, unlabelled, val,
        cfg, val_pairs=val_pairs,
    )
    assert history["converged_at"] == {"val_accuracy": 2, "loss_b": 2} and history["epochs"] == 2
    assert len(history["curves"]["loss_a"]["val"]) == 2 and len(history["curves"]["val_accuracy"]["val"]) == 2
    assert val_pair_accuracy(model.face, val_pairs)[0] == pytest.approx(history["best_val_accuracy"])
