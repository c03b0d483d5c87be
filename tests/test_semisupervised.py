"""The patent's semi-supervised autoencoder (CN112364828B): shapes, loss wiring, g, collapse detection."""

import pytest
import torch

from benchmark.models.autoencoder import (
    SemiSupervisedAE,
    collapse_stats,
    combine,
    feature_loss,
    mean_map_losses,
)
from benchmark.models.face_model import build_face_model

CONVS = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6")


def tiny_ae(size: int = 16) -> SemiSupervisedAE:
    return SemiSupervisedAE(
        build_face_model("ae_encoder", seed=0, embedding_dim=8, image_size=size, channels=(4, 6, 8))
    )


def _conv(model: SemiSupervisedAE, name: str) -> torch.nn.Module:
    part = model.face.backbone if name in CONVS[:3] else model.decoder
    return getattr(part, name)[0]


def _reached(model: SemiSupervisedAE, loss: torch.Tensor) -> set[str]:
    """Names of the conv layers whose weights get a non-zero gradient from ``loss``."""
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n for n in CONVS if _conv(model, n).weight.grad is not None and _conv(model, n).weight.grad.abs().sum() > 0}


@pytest.mark.parametrize("size", [16, 32])
def test_up_features_match_the_down_features_they_are_tied_to(size):
    # Execute
    down1, down2, down3, up1, up2, up3 = tiny_ae(size)(torch.rand(2, 3, size, size))
    # Assert
    assert down1.shape == up3.shape == (2, 4, size // 2, size // 2)
    assert down2.shape == up2.shape == (2, 6, size // 4, size // 4)
    assert down3.shape == up1.shape == (2, 8, size // 8, size // 8)


@pytest.mark.parametrize(
    "which, expected",
    [
        (0, {"conv1", "conv2", "conv3", "conv4"}),  # Loss1(down3, up1): not conv5/conv6
        (1, {"conv1", "conv2", "conv3", "conv4", "conv5"}),  # Loss2(down2, up2): not conv6
        (2, set(CONVS)),  # Loss3(down1, up3): through conv6
    ],
)
def test_each_skip_loss_reaches_exactly_the_layers_on_its_path(which, expected):
    # Prepare
    model = tiny_ae()
    downs = model.encode(torch.rand(4, 3, 16, 16))
    # Execute
    loss = model.skip_losses(downs)[which]
    # Assert
    assert _reached(model, loss) == expected


def test_the_target_down_side_gets_no_gradient_from_a_feature_loss():
    # Prepare: LossB's gradient reaches the encoder only through up1's input (down3), never through
    # the target features it is compared with (stop-gradient)
    down = torch.randn(3, 4, 2, 2, requires_grad=True)
    up = torch.randn(3, 4, 2, 2, requires_grad=True)
    # Execute
    feature_loss(up, down).backward()
    # Assert
    assert down.grad is None and up.grad.abs().sum() > 0


def test_denoising_losses_compare_the_corrupted_pass_with_the_clean_targets():
    # Prepare: with targets the decoder still reads the corrupted pass, but is scored against the clean one
    model = tiny_ae().eval()
    x = torch.rand(4, 3, 16, 16)
    clean, noisy = model.encode(x), model.encode(x + 0.1 * torch.randn_like(x))
    # Execute
    with torch.no_grad():
        denoising, plain = model.skip_losses(noisy, clean), model.skip_losses(noisy)
        up1, up2, up3 = model.decoder(noisy[2])
    # Assert
    assert denoising[0].item() == pytest.approx(feature_loss(up1, clean[2]).item())
    assert denoising[2].item() == pytest.approx(feature_loss(up3, clean[0]).item())
    assert all(a.item() != pytest.approx(b.item()) for a, b in zip(denoising, plain))


def test_the_mean_map_floor_is_zero_for_identical_maps_and_what_predicting_the_mean_scores():
    same = torch.randn(1, 4, 2, 2).expand(3, 4, 2, 2)
    assert all(v.item() == pytest.approx(0.0, abs=1e-6) for v in mean_map_losses((same, same, same)))
    downs = tuple(torch.randn(5, c, s, s) for c, s in ((4, 8), (6, 4), (8, 2)))
    floors = mean_map_losses(downs)
    assert floors[0] == pytest.approx(feature_loss(downs[2].mean(0, keepdim=True).expand(5, 8, 2, 2), downs[2]).item())
    assert all(0 < f.item() <= 4 for f in floors)


def test_feature_loss_is_two_times_one_minus_correlation_whatever_the_scale():
    # Prepare
    down = torch.randn(3, 4, 2, 2)
    # Execute / Assert: shrinking or shifting the features cannot lower the loss
    assert feature_loss(0.001 * down + 5.0, down).item() == pytest.approx(0.0, abs=1e-3)
    assert feature_loss(-down, down).item() == pytest.approx(4.0, rel=1e-3)


def test_the_supervised_path_reaches_the_encoder_and_not_the_decoder():
    model = tiny_ae()
    downs = model.encode(torch.rand(4, 3, 16, 16))
    assert _reached(model, model.embedding(downs[2]).square().sum()) == {"conv1", "conv2", "conv3"}


@pytest.mark.parametrize("g", [0.6, 0.75, 0.9])
def test_combine_weights_loss_a_by_g_and_loss_b_by_one_minus_g(g):
    # Prepare
    a = torch.tensor(2.0, requires_grad=True)
    b = torch.tensor(10.0, requires_grad=True)
    # Execute
    total = combine(a, b, g)
    total.backward()
    # Assert
    assert total.item() == pytest.approx(g * 2.0 + (1 - g) * 10.0)
    assert a.grad.item() == pytest.approx(g) and b.grad.item() == pytest.approx(1 - g)


def test_g_changes_the_combination_exactly():
    a, b = torch.tensor(3.0), torch.tensor(1.0)
    assert (combine(a, b, 0.9) - combine(a, b, 0.6)).item() == pytest.approx(0.3 * (3.0 - 1.0))


@pytest.mark.parametrize("g", [0.5, 1.0, 0.2, 1.5, -0.7])
def test_g_outside_the_open_interval_is_an_error_naming_g_and_the_range(g):
    with pytest.raises(ValueError, match=r"g = .* out of range; allowed: \(0.5, 1.0\)"):
        combine(torch.tensor(1.0), torch.tensor(1.0), g)


def test_the_semi_supervised_model_needs_the_patent_encoder():
    with pytest.raises(TypeError, match="ae_encoder"):
        SemiSupervisedAE(build_face_model("mobilenetv3_small_100"))


def test_collapse_stats_reports_healthy_features_and_detects_collapsed_ones():
    # Prepare
    model = tiny_ae().train()
    x = torch.rand(8, 3, 16, 16)
    healthy = collapse_stats(model, x)
    with torch.no_grad():
        _conv(model, "conv2").weight.zero_()  # every image now gives the same down2, down3, up1-3
    # Execute
    collapsed = collapse_stats(model, x)
    # Assert
    assert set(healthy) == {"down1", "down2", "down3", "up1", "up2", "up3"}
    assert min(healthy.values()) > 0.1
    assert collapsed["down1"] > 0.1 and max(collapsed[k] for k in ("down2", "down3", "up1", "up2", "up3")) < 1e-4
    assert model.training
