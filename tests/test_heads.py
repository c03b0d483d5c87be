"""Classification heads: every registered head, and the margins of CosFace and ArcFace against their formulas."""

import math

import pytest
import torch

from benchmark.models.registry import HEADS, create_head

D, C = 8, 5


def _inputs(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=g), torch.randint(0, C, (n,), generator=g)


@pytest.mark.parametrize("name", HEADS.names())
def test_head_gives_logits_and_finite_gradients(name):
    # Prepare
    torch.manual_seed(0)
    head = create_head(name, embedding_dim=D, num_classes=C)
    emb, labels = _inputs()
    emb.requires_grad_(True)
    # Execute
    logits = head(emb, labels)
    torch.nn.functional.cross_entropy(logits, labels).backward()
    # Assert
    assert logits.shape == (6, C) and head.logits(emb).shape == (6, C)
    assert torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())


@pytest.mark.parametrize("name", HEADS.names())
def test_training_logits_never_favour_the_true_class_more_than_evaluation_logits(name):
    # Prepare
    head = create_head(name, embedding_dim=D, num_classes=C)
    emb, labels = _inputs(50)
    rows = torch.arange(50)
    # Execute
    train, evaluation = head(emb, labels), head.logits(emb)
    # Assert: a margin only lowers the true-class logit and leaves the others alone
    assert (train[rows, labels] <= evaluation[rows, labels] + 1e-5).all()
    other = torch.ones_like(train, dtype=torch.bool)
    other[rows, labels] = False
    assert torch.allclose(train[other], evaluation[other])


def test_softmax_head_is_a_linear_classifier_without_margin():
    head = create_head("softmax", embedding_dim=D, num_classes=C)
    emb, labels = _inputs()
    assert torch.allclose(head(emb, labels), emb @ head.weight.T + head.bias)


def test_cosface_subtracts_s_times_m_from_the_true_class_only():
    # Prepare
    head = create_head("cosface", embedding_dim=D, num_classes=C)
    emb, labels = _inputs()
    # Execute
    diff = head.logits(emb) - head(emb, labels)
    # Assert
    expected = torch.zeros(6, C)
    expected[torch.arange(6), labels] = 30.0 * 0.35
    assert torch.allclose(diff, expected, atol=1e-5)


def test_margin_heads_ignore_the_embedding_scale():
    head = create_head("arcface", embedding_dim=D, num_classes=C)
    emb, labels = _inputs()
    assert torch.allclose(head(emb, labels), head(7.0 * emb, labels), atol=1e-5)


def _arcface_with_true_cosine(cos_y: float, easy_margin: bool = False) -> float:
    """The true-class ArcFace logit when the embedding makes cosine ``cos_y`` with its class centre."""
    head = create_head("arcface", embedding_dim=2, num_classes=2, easy_margin=easy_margin)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    emb = torch.tensor([[cos_y, math.sqrt(1 - cos_y**2)]])
    return head(emb, torch.tensor([0]))[0, 0].item()


def test_arcface_adds_the_angular_margin_and_falls_back_past_the_threshold():
    s, m = 30.0, 0.5
    # theta + m < pi: s * cos(theta + m)
    assert _arcface_with_true_cosine(0.6) == pytest.approx(s * math.cos(math.acos(0.6) + m), rel=1e-5)
    # cos(theta) <= cos(pi - m): s * (cos(theta) - sin(pi - m) * m), which keeps the logit decreasing in theta
    assert _arcface_with_true_cosine(-0.95) == pytest.approx(s * (-0.95 - math.sin(math.pi - m) * m), rel=1e-5)
    # easy margin: no margin where cos(theta) <= 0
    assert _arcface_with_true_cosine(-0.3, easy_margin=True) == pytest.approx(s * -0.3, rel=1e-5)
    assert _arcface_with_true_cosine(0.3, easy_margin=True) == pytest.approx(s * math.cos(math.acos(0.3) + m), rel=1e-5)


def test_heads_reject_bad_arguments():
    with pytest.raises(ValueError, match="num_classes >= 2"):
        create_head("softmax", embedding_dim=D, num_classes=1)
    with pytest.raises(ValueError, match="s > 0"):
        create_head("cosface", embedding_dim=D, num_classes=C, s=0.0)


@pytest.mark.parametrize("name", HEADS.names())
def test_head_initialization_depends_only_on_its_seed(name):
    # Prepare
    torch.manual_seed(1)
    a = create_head(name, embedding_dim=D, num_classes=C, seed=3)
    torch.manual_seed(2)
    # Execute
    b = create_head(name, embedding_dim=D, num_classes=C, seed=3)
    c = create_head(name, embedding_dim=D, num_classes=C, seed=4)
    # Assert
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)
