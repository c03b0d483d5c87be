"""The attack library: invariants every registered attack must keep (parametrized over the registry),
that each raises its own objective, and the errors on bad input."""

import pytest
import torch

from benchmark.attacks import ATTACKS, create_attack
from benchmark.attacks.objectives import classification, dodging, impersonation, verification
from benchmark.models.face_model import build_face_model

SIZE = 32
L2_ATTACKS = {"pgd_l2", "cw_l2"}


def budget(name: str) -> float:
    return 1.0 if name in L2_ATTACKS else 8 / 255


@pytest.fixture(scope="module")
def model():
    return build_face_model("ae_encoder", seed=0, embedding_dim=16, image_size=SIZE, channels=(4, 8, 8)).eval()


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(1)
    return torch.rand(6, 3, SIZE, SIZE, generator=gen), torch.rand(6, 3, SIZE, SIZE, generator=gen)


def make(name: str, **kwargs):
    """create_attack with ``steps`` for the iterative attacks (fgsm takes one step and no ``steps``; the score-based
    square attack takes 40 queries a gradient step)."""
    steps = kwargs.pop("steps", 3) * (40 if name == "square" else 1)
    return create_attack(name, **kwargs) if name == "fgsm" else create_attack(name, steps=steps, **kwargs)


def _norms(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return delta.abs().flatten(1).amax(dim=1), delta.flatten(1).norm(dim=1)


@pytest.mark.parametrize("name", ATTACKS.names())
def test_attack_stays_within_budget_and_unit_range_with_per_sample_eps(name, model, images):
    # Prepare: per-sample budgets, one of them zero; images touching 0 and 1
    x, other = images
    x = x.clone()
    x[0] = 0.0
    x[1] = 1.0
    eps = budget(name) * torch.tensor([1.0, 1.0, 0.5, 0.0, 0.25, 1.0])
    attack = make(name, eps=eps)
    # Execute
    x_adv = attack(model, x, dodging(model.embed(other).detach()))
    # Assert
    linf, l2 = _norms(x_adv - x)
    size = l2 if name in L2_ATTACKS else linf
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert torch.all(size <= eps + 1e-5), (size, eps)
    assert size[3] == 0
    assert size.max() > 0.3 * budget(name)


@pytest.mark.parametrize("name", ATTACKS.names())
@pytest.mark.parametrize("goal", ["dodging", "impersonation"])
def test_attack_raises_its_own_objective(name, goal, model, images):
    # Prepare
    x, other = images
    target = model.embed(other).detach()
    objective = dodging(target) if goal == "dodging" else impersonation(target)
    # Execute
    x_adv = make(name, eps=budget(name), steps=5)(model, x, objective)
    # Assert: every sample's objective rises, and clearly on average
    with torch.no_grad():
        before, after = objective(model, x), objective(model, x_adv)
    assert torch.all(after > before)
    assert (after - before).mean() > 0.05


@pytest.mark.parametrize("name", ATTACKS.names())
@pytest.mark.parametrize("training", [True, False])
def test_attack_restores_train_eval_mode_and_runs_in_eval(name, training, images):
    # Prepare: a model that records the mode of each forward pass
    model = build_face_model("ae_encoder", seed=0, embedding_dim=16, image_size=SIZE, channels=(4, 8, 8))
    modes = []
    model.neck.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    x, other = images
    with torch.no_grad():
        reference = model.eval().embed(other)
    model.train(training)
    modes.clear()
    # Execute
    make(name, eps=budget(name))(model, x, dodging(reference))
    # Assert
    assert model.training is training
    assert modes and not any(modes)
    assert all(p.grad is None for p in model.parameters())


def test_attack_is_deterministic_by_seed_and_random_start_changes_the_start(model, images):
    # Prepare
    x, other = images
    objective = dodging(model.embed(other).detach())
    # Execute
    a = create_attack("pgd_linf", eps=4 / 255, steps=2, seed=3)(model, x, objective)
    b = create_attack("pgd_linf", eps=4 / 255, steps=2, seed=3)(model, x, objective)
    c = create_attack("pgd_linf", eps=4 / 255, steps=2, seed=4)(model, x, objective)
    # Assert
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_classification_objective_untargeted_and_targeted_signs(images):
    # Prepare
    torch.manual_seed(0)
    logits_model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * SIZE * SIZE, 5))
    x, _ = images
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    # Execute
    untargeted = classification(logits_model, labels)(logits_model, x)
    targeted = classification(logits_model, labels, targeted=True)(logits_model, x)
    # Assert
    expected = torch.nn.functional.cross_entropy(logits_model(x), labels, reduction="none")
    assert torch.allclose(untargeted, expected) and torch.allclose(targeted, -expected)


def test_verification_objective_is_dodging_for_genuine_and_impersonation_for_impostor(model, images):
    # Prepare
    x, other = images
    ref = model.embed(other).detach()
    same = torch.tensor([True, False, True, False, False, True])
    # Execute
    value = verification(ref, same)(model, x)
    # Assert
    expected = torch.where(same, dodging(ref)(model, x), impersonation(ref)(model, x))
    assert torch.allclose(value, expected)


def test_verification_margin_is_positive_exactly_on_the_pairs_whose_decision_flips(model, images):
    # Prepare: the threshold between the pairs' cosines
    x, other = images
    ref = model.embed(other).detach()
    cos = (model.embed(x) * ref).sum(dim=1).detach()
    threshold = float(cos.median())
    same = torch.tensor([True, False, True, False, False, True])
    # Execute
    margin = verification(ref, same, threshold)(model, x)
    # Assert: the offset only shifts the plain objective; > 0 = genuine rejected or impostor accepted
    assert torch.allclose(margin, verification(ref, same)(model, x) - torch.where(same, -threshold, threshold))
    flipped = torch.where(same, cos < threshold, cos > threshold)
    assert torch.equal(margin > 0, flipped)


def test_cw_l2_binary_search_recovers_from_a_too_small_first_c(model):
    # Prepare: genuine pairs at a threshold just below their lowest cosine (every pair accepted), a budget that
    # breaks about half of them at a suitable c, and a first c a hundred times too small
    gen = torch.Generator().manual_seed(1)
    x, other = torch.rand(16, 3, SIZE, SIZE, generator=gen), torch.rand(16, 3, SIZE, SIZE, generator=gen)
    ref = model.embed(other).detach()
    threshold = float((model.embed(x) * ref).sum(dim=1).min().detach()) - 1e-3
    objective = verification(ref, torch.ones(16, dtype=torch.bool), threshold)

    def broken(search_steps: int) -> torch.Tensor:
        x_adv = create_attack("cw_l2", eps=0.5, steps=10, c=0.01, search_steps=search_steps)(model, x, objective)
        with torch.no_grad():
            return objective(model, x_adv) > 0

    # Execute
    one_round, searched = broken(1), broken(4)
    # Assert: the search keeps every success of its first round and raises c until more pairs break
    assert torch.all(searched >= one_round)
    assert searched.sum() >= one_round.sum() + 3, (one_round.sum(), searched.sum())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: create_attack("pgd_linf", eps=-0.1), "eps must be finite and >= 0"),
        (lambda: create_attack("pgd_linf", eps=torch.tensor([0.1, -0.01])), "eps must be finite and >= 0"),
        (lambda: create_attack("pgd_linf", steps=0), "steps must be an integer >= 1"),
        (lambda: create_attack("pgd_linf", alpha=0.0), "alpha .* must be a positive number"),
        (lambda: create_attack("deepfool"), "unknown attack 'deepfool'; known attacks: apgd, cw_l2, fgsm, mifgsm, pgd_l2, pgd_linf, square"),
        (lambda: create_attack("fgsm", norm="l1"), "unknown norm 'l1' .*allowed: linf, l2"),
        (lambda: create_attack("pgd_linf", norm="l2"), "unknown norm 'l2' .*allowed: linf"),
        (lambda: create_attack("fgsm", steps=10), "attack 'fgsm' takes no argument.* steps; allowed: eps, alpha"),
        (lambda: create_attack("cw_l2", c=0.0), r"c \(the first round's objective weight\) must be a positive number"),
        (lambda: create_attack("cw_l2", search_steps=0), r"search_steps \(rounds of the binary search over c\) must be an integer >= 1"),
        (lambda: impersonation(None), "targeted attack needs a target"),
        (lambda: dodging(None), "dodging attack needs a reference"),
        (lambda: classification(torch.nn.Identity(), None, targeted=True), "targeted attack needs a target"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_inputs_raise_clear_errors(model, images):
    # Prepare
    x, other = images
    objective = dodging(model.embed(other).detach())
    attack = create_attack("pgd_linf", eps=torch.full((3,), 0.01), steps=1)
    # Execute / Assert
    with pytest.raises(ValueError, match=r"per-sample eps must have shape \(N,\) = \(6,\)"):
        attack(model, x, objective)
    with pytest.raises(ValueError, match=r"x must be images in \[0, 1\]"):
        create_attack("fgsm")(model, x * 255, objective)
    with pytest.raises(ValueError, match="objective must return one value per sample"):
        create_attack("fgsm")(model, x, lambda m, z: objective(m, z).sum())
