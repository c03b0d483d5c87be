"""The patent CN116665282A's gate and regularization term, TRADES' consistency, and short runs of the three
adversarial training loops (gated hardening, PGD-AT, TRADES)."""

import copy
import math
import re

import numpy as np
import pytest
import torch

from benchmark import config
from benchmark.data.synthetic import generate
from benchmark.errors import ConfigError
from benchmark.models.face_model import build_face_model
from benchmark.models.registry import create_head
from benchmark.train import adversarial
from benchmark.train.adversarial import train_hardened, train_pgd_at, train_trades
from benchmark.train.common import TrainConfig, ValPairs
from benchmark.train.gate import PerformanceGate, Switch
from benchmark.train.hardening import HardeningTerm, other_identities, target_margin
from benchmark.train.loop import train_supervised
from benchmark.train.trades import consistency_kl, kl_objective, trades_loss

SIZE = 16
LOSSES = [3.0, 2.0, 0.9, 0.5, 1.2, 0.8, 1.0, 0.99]


def test_gate_follows_the_patents_rule_on_a_scripted_loss_sequence():
    # Prepare
    gate = PerformanceGate(threshold=1.0)
    # Execute
    decisions = [gate.update(loss) for loss in LOSSES]
    # Assert: on after a loss < 1.0, off after a loss >= 1.0 (1.0 itself is not below the threshold)
    assert decisions == [False, False, True, True, False, True, False, True]
    assert gate.states == [False, False, False, True, True, False, True, False]
    assert gate.switches == [
        Switch(3, 0.9, True),
        Switch(5, 1.2, False),
        Switch(6, 0.8, True),
        Switch(7, 1.0, False),
        Switch(8, 0.99, True),
    ]
    assert gate.fraction_on == 3 / 8 and gate.on
    log = gate.log()
    assert log["on"] == [0, 0, 0, 1, 1, 0, 1, 0] and log["loss"] == LOSSES
    assert log["switches"][0] == {"step": 3, "loss": 0.9, "on": True}


def test_gate_hysteresis_keeps_the_term_on_until_the_wider_level():
    gate = PerformanceGate(threshold=1.0, hysteresis=0.5)
    for loss in LOSSES + [1.5]:
        gate.update(loss)
    assert gate.states == [False, False, False, True, True, True, True, True, True]
    assert gate.switches == [Switch(3, 0.9, True), Switch(9, 1.5, False)]


def test_gate_treats_nan_as_poor_performance_and_rejects_bad_settings():
    gate = PerformanceGate(threshold=1.0)
    assert gate.update(0.1) is True and gate.update(float("nan")) is False
    assert gate.fraction_on == 0.5
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="threshold"):
            PerformanceGate(threshold=bad)
    with pytest.raises(ValueError, match="hysteresis"):
        PerformanceGate(threshold=1.0, hysteresis=-0.1)


def test_consistency_kl_is_zero_when_outputs_agree_and_positive_otherwise():
    # Prepare
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    moved = torch.tensor([[0.0, 2.0, -1.0], [0.5, 0.5, 0.5]], requires_grad=True)
    # Execute
    same = consistency_kl(logits, logits + 3.0)  # a constant shift gives the same softmax
    kl = consistency_kl(logits, moved)
    kl.sum().backward()
    # Assert
    assert torch.allclose(same, torch.zeros(2), atol=1e-6)
    p = torch.softmax(logits[0], 0)
    q = torch.softmax(moved[0].detach(), 0)
    assert kl[0].item() == pytest.approx((p * (p / q).log()).sum().item(), rel=1e-5) and kl[1].item() == pytest.approx(0, abs=1e-6)
    assert moved.grad[0].abs().sum() > 0


def test_kl_objective_and_trades_loss_combine_ce_and_consistency():
    # Prepare
    torch.manual_seed(0)
    source = torch.randn(4, 5)
    forward = torch.nn.Linear(3 * 2 * 2, 5)
    x = torch.rand(4, 3, 2, 2)
    labels = torch.tensor([0, 1, 2, 3])
    # Execute
    value = kl_objective(lambda z: forward(z.flatten(1)), source)(torch.nn.Identity(), x)
    loss, kl = trades_loss(source, source, source + torch.tensor([1.0, 0, 0, 0, 0]), labels, beta=2.0)
    # Assert
    assert value.shape == (4,) and torch.allclose(value, consistency_kl(source, forward(x.flatten(1))))
    ce = torch.nn.functional.cross_entropy(source, labels)
    assert kl > 0 and loss.item() == pytest.approx(ce.item() + 2.0 * kl.item(), rel=1e-6)


def test_target_margin_is_zero_when_the_margin_holds_and_positive_when_pulled_to_the_target():
    # Prepare: centres of identities 0 and 1 along the axes; samples of identity 0, target identity 1
    centres = torch.eye(2, requires_grad=True)
    near_own = torch.tensor([[1.0, 0.1]])
    near_target = torch.tensor([[0.3, 1.0]], requires_grad=True)
    y, t = torch.tensor([0]), torch.tensor([1])
    # Execute
    kept = target_margin(near_own, centres, y, t, margin=0.2)
    pulled = target_margin(near_target, centres, y, t, margin=0.2)
    pulled.sum().backward()
    # Assert: cos to own 0.287, to target 0.958 -> 0.2 + 0.958 - 0.287
    assert kept.item() == 0.0
    assert pulled.item() == pytest.approx(0.2 + (1.0 - 0.3) / math.hypot(0.3, 1.0), rel=1e-5)
    assert near_target.grad.abs().sum() > 0 and centres.grad.abs().sum() > 0


def test_hardening_term_weights_its_parts_and_rejects_bad_weights():
    # Prepare
    torch.manual_seed(0)
    src = torch.randn(3, 4)
    adv = (src + torch.randn(3, 4)).requires_grad_(True)
    emb, centres = torch.randn(2, 8, requires_grad=True), torch.randn(4, 8)
    y, t = torch.tensor([0, 1]), torch.tensor([2, 3])
    term = HardeningTerm(beta=2.0, gamma=3.0, margin=0.5)
    # Execute
    value, parts = term(src, adv, emb, centres, y, t)
    value.backward()
    zero, zero_parts = HardeningTerm(2.0, 3.0, 0.0)(src, src, torch.eye(8)[:2] * 5, torch.eye(8)[:4], y, t)
    # Assert
    assert parts["consistency"] > 0
    assert value.item() == pytest.approx(2.0 * parts["consistency"] + 3.0 * parts["target_margin"], rel=1e-5)
    assert adv.grad.abs().sum() > 0 and emb.grad is not None
    assert zero.item() == pytest.approx(0.0, abs=1e-6) and zero_parts == {"consistency": pytest.approx(0, abs=1e-6), "target_margin": 0.0}
    for bad in ({"beta": -1.0}, {"gamma": -0.1}, {"margin": 2.5}):
        with pytest.raises(ValueError, match="beta >= 0, gamma >= 0 and margin in"):
            HardeningTerm(**{"beta": 1.0, "gamma": 1.0, "margin": 0.2, **bad})


def test_other_identities_never_pick_the_own_identity_and_are_deterministic():
    labels = torch.arange(5).repeat(40)
    first = other_identities(labels, 5, torch.Generator().manual_seed(0))
    again = other_identities(labels, 5, torch.Generator().manual_seed(0))
    assert torch.equal(first, again) and (first != labels).all() and first.min() >= 0 and first.max() <= 4
    assert len(torch.unique(first[labels == 0])) == 4
    with pytest.raises(ValueError, match="at least 2 classes"):
        other_identities(torch.zeros(3, dtype=torch.long), 1, torch.Generator())


@pytest.fixture(scope="module")
def data():
    faces, _ = generate(0, 5, 8, SIZE, difficulty=0.3, progress=False)
    idx = np.arange(len(faces.labels))
    val = idx[idx % 8 == 0]
    return faces.images, faces.labels, np.setdiff1d(idx, val), val


def _parts(seed: int = 0):
    model = build_face_model("ae_encoder", seed=seed, embedding_dim=16, image_size=SIZE, channels=(8, 16, 16))
    return model, create_head("arcface", embedding_dim=16, num_classes=5, seed=seed)


CFG = TrainConfig(max_epochs=2, batch_size=8, lr=1e-2, patience=50, progress=False)


@pytest.mark.parametrize("threshold, switches", [(1e3, [(1, True)]), (1e-6, [])])
def test_hardened_run_logs_a_gate_consistent_with_its_curves(data, threshold, switches):
    # Prepare: a threshold above any loss turns the term on after step 1; one below any loss never does
    images, labels, train, val = data
    gate = PerformanceGate(threshold)
    # Execute
    history = train_hardened(*_parts(), images, labels, train, val, CFG, 4 / 255, 2, HardeningTerm(1.0, 1.0, 0.2), gate)
    # Assert
    log, curves = history["gate"], history["curves"]
    steps = 2 * -(-len(train) // 8)
    assert len(log["on"]) == len(log["loss"]) == steps
    assert [(s["step"], s["on"]) for s in log["switches"]] == switches
    assert history["adversarial_fraction"] == pytest.approx(sum(log["on"]) / steps) == pytest.approx((steps - 1) / steps if switches else 0.0)
    per_epoch = np.array(log["on"]).reshape(2, -1).mean(axis=1)
    assert np.allclose(curves["on"]["train"], per_epoch)
    assert np.allclose(curves["loss_a"]["train"], np.array(log["loss"]).reshape(2, -1).mean(axis=1))
    assert (np.array(curves["term"]["train"]) > 0).tolist() == (per_epoch > 0).tolist()
    assert len(curves["loss_adv"]["val"]) == 2 and curves["loss_adv"]["val"][0] > curves["loss_a"]["val"][0]


def test_hardened_run_with_the_gate_never_on_is_plain_supervised_training(data):
    images, labels, train, val = data
    hardened = train_hardened(*_parts(), images, labels, train, val, CFG, 4 / 255, 2, HardeningTerm(1.0, 1.0, 0.2), PerformanceGate(1e-6))
    plain = train_supervised(*_parts(), images, labels, train, val, CFG)
    assert hardened["curves"]["loss_a"]["train"] == pytest.approx(plain["curves"]["loss_a"]["train"], rel=1e-5)
    with pytest.raises(ValueError, match="fresh gate"):
        gate = PerformanceGate(1.0)
        gate.update(0.5)
        train_hardened(*_parts(), images, labels, train, val, CFG, 4 / 255, 2, HardeningTerm(1.0, 1.0, 0.2), gate)


@pytest.mark.parametrize("train_fn, extra", [(train_pgd_at, {}), (train_trades, {"beta": 6.0})])
def test_static_baselines_train_adversarially_every_step_and_are_deterministic(data, train_fn, extra):
    images, labels, train, val = data
    runs = [train_fn(*_parts(), images, labels, train, val, CFG, 4 / 255, 2, **extra) for _ in range(2)]
    assert runs[0]["adversarial_fraction"] == 1.0 and "gate" not in runs[0]
    assert runs[0]["curves"] == runs[1]["curves"] and runs[0]["epochs"] == 2
    assert runs[0]["curves"]["loss"]["train"][-1] < runs[0]["curves"]["loss"]["train"][0]
    if train_fn is train_trades:
        assert all(v > 0 for v in runs[0]["curves"]["term"]["train"])


@pytest.mark.parametrize(
    "train_fn, extra",
    [
        (train_pgd_at, {}),
        (train_trades, {"beta": 6.0}),
        (train_hardened, {"term": HardeningTerm(1.0, 1.0, 0.2), "gate": PerformanceGate(1e3)}),
    ],
)
def test_adversarial_loops_log_val_accuracy_but_keep_the_last_epoch(data, monkeypatch, train_fn, extra):
    # Prepare: the clean validation accuracy is scripted to peak at epoch 1 of 3; each epoch's weights recorded
    images, labels, train, val = data
    model, head = _parts()
    scripted, states = iter([0.9, 0.6, 0.7]), []

    def accuracy(m, pairs):
        states.append(copy.deepcopy(m.state_dict()))
        return next(scripted), 0.5

    monkeypatch.setattr(adversarial, "val_pair_accuracy", accuracy)
    pairs = ValPairs(images[:2], np.array([[0, 1]]), np.array([0]))
    cfg = TrainConfig(max_epochs=3, batch_size=8, lr=1e-2, patience=50, progress=False)
    # Execute
    history = train_fn(model, head, images, labels, train, val, cfg, 4 / 255, 1, val_pairs=pairs, **extra)
    # Assert: keep_best (True by default) does not apply; the stopping rule still tracks loss_adv only
    assert history["curves"]["val_accuracy"]["val"] == [0.9, 0.6, 0.7]
    assert history["best_epoch"] == 1 and history["kept_epoch"] == 3 and list(history["converged_at"]) == ["loss_adv"]
    assert all(torch.equal(v, states[2][k]) for k, v in model.state_dict().items())
    assert any(not torch.equal(v, states[0][k]) for k, v in model.state_dict().items())


def test_adversarial_loops_reject_bad_budgets(data):
    images, labels, train, val = data
    with pytest.raises(ValueError, match="eps in"):
        train_pgd_at(*_parts(), images, labels, train, val, CFG, 0.0, 2)
    with pytest.raises(ValueError, match="attack_steps >= 1"):
        train_pgd_at(*_parts(), images, labels, train, val, CFG, 4 / 255, 0)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        train_trades(*_parts(), images, labels, train, val, CFG, 4 / 255, 1, beta=-1.0)


@pytest.mark.parametrize(
    "section, key, value, allowed",
    [
        ("adversarial", "threshold", 0.0, "(0.0, inf)"),
        ("adversarial", "hysteresis", -1.0, "[0.0, inf)"),
        ("adversarial", "margin", 2.5, "[0.0, 2.0]"),
        ("adversarial", "gamma", -1.0, "[0.0, 100.0]"),
        ("pgd_at", "eps", 0.0, "(0.0, 1.0]"),
        ("pgd_at", "attack_steps", 0, "[1, 100]"),
        ("trades", "beta", -0.5, "[0.0, 100.0]"),
        ("natural_then_at", "switch", 1.0, "[0.0, 1.0)"),
    ],
)
def test_bad_adversarial_params_are_rejected_naming_the_key(section, key, value, allowed):
    with pytest.raises(ConfigError, match=re.escape(f"'{section}.{key}' = {value!r} is out of range; allowed: {allowed}")):
        config.build(config.Params, {section: {key: value}})
