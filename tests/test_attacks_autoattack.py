"""APGD and Square, AutoAttack's two attacks as the worst-case check runs them: APGD's schedule and its strength
against torchattacks' APGD on the same model, Square's schedule and its need of no gradient."""

import pytest
import torch
import torch.nn.functional as F
import torchattacks
from torch import nn

from benchmark.attacks import create_attack
from benchmark.attacks.apgd import checkpoints
from benchmark.attacks.objectives import classification, dodging
from benchmark.attacks.square import window_share
from benchmark.attacks.throughput import attack_vs_torchattacks
from benchmark.models.face_model import build_face_model


@pytest.fixture(scope="module")
def classifier(small_cnn):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(64, 3, 16, 16, generator=gen)
    with torch.no_grad():
        labels = small_cnn(x).argmax(dim=1)  # every image classified correctly before the attack
    return small_cnn, x, labels


def test_apgd_checkpoints_follow_croce_and_hein():
    # p_1 = 0.22, then intervals shrinking by 0.03 to at least 0.06 of the steps (torchattacks' k schedule)
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(10) == [2, 3, 4, 5, 6, 7, 8, 9, 10]


def test_apgd_is_as_strong_as_torchattacks_apgd_on_the_same_model(classifier):
    # Prepare: cross-entropy on identity logits, 8/255, 20 steps; both from a random start of the ball
    model, x, labels = classifier
    eps, steps = 8 / 255, 20
    ours = create_attack("apgd", eps=eps, steps=steps, seed=0)(model, x, classification(model, labels))
    reference = torchattacks.APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, loss="ce", seed=0)(x, labels)
    # Execute
    with torch.no_grad():
        loss = {name: F.cross_entropy(model(adv), labels).item() for name, adv in (("ours", ours), ("ref", reference))}
        fooled = {name: (model(adv).argmax(1) != labels).float().mean().item()
                  for name, adv in (("ours", ours), ("ref", reference))}
        clean = F.cross_entropy(model(x), labels).item()
    # Assert: within the ball, the loss raised as far as the reference raises it, as many images fooled
    assert (ours - x).abs().max() <= eps + 1e-6
    assert loss["ours"] > clean and loss["ours"] >= 0.95 * loss["ref"], loss
    assert fooled["ours"] >= fooled["ref"] - 0.05, fooled


def test_apgd_ends_at_each_sample_s_best_point_never_below_its_start(classifier):
    model, x, labels = classifier
    objective = classification(model, labels)
    start = create_attack("pgd_linf", eps=8 / 255, steps=1, alpha=1e-12, seed=0)(model, x, objective)  # the same start
    best = create_attack("apgd", eps=8 / 255, steps=10, seed=0)(model, x, objective)
    with torch.no_grad():
        assert torch.all(objective(model, best) >= objective(model, start) - 1e-6)


def test_attack_vs_torchattacks_measures_both_and_names_what_it_compares(classifier):
    model, x, _ = classifier
    out = attack_vs_torchattacks("apgd", model, x[:8], steps=2, repeats=1)
    assert out["ours_images_per_second"] > 0 and out["ratio"] == pytest.approx(
        out["ours_images_per_second"] / out["torchattacks_images_per_second"])
    with pytest.raises(ValueError, match="no torchattacks reference for attack 'fgsm'; compared: pgd_linf, apgd"):
        attack_vs_torchattacks("fgsm", model, x[:8])


def test_square_window_shrinks_on_the_paper_s_schedule():
    assert window_share(0, 10_000, 0.8) == 0.8 and window_share(11, 10_000, 0.8) == 0.4
    assert window_share(201, 10_000, 0.8) == 0.1 and window_share(9_999, 10_000, 0.8) == pytest.approx(0.8 / 512)
    assert window_share(1, 100, 0.8) == 0.2  # rescaled: query 1 of 100 stands for query 100 of 10,000


def test_square_needs_no_gradient():
    # Prepare: a dodging objective that cuts the graph: a gradient attack cannot read it, Square can
    model = build_face_model("ae_encoder", seed=0, embedding_dim=16, image_size=32, channels=(4, 8, 8)).eval()
    gen = torch.Generator().manual_seed(2)
    x, other = torch.rand(6, 3, 32, 32, generator=gen), torch.rand(6, 3, 32, 32, generator=gen)
    scored = dodging(model.embed(other).detach())

    def score_only(m, images):
        return scored(m, images).detach()

    # Execute
    x_adv = create_attack("square", eps=8 / 255, steps=200, seed=0)(model, x, score_only)
    # Assert
    with torch.no_grad():
        assert (score_only(model, x_adv) - score_only(model, x)).mean() > 0.05
    with pytest.raises(RuntimeError):
        create_attack("pgd_linf", eps=8 / 255, steps=2)(model, x, score_only)
