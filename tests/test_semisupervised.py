"""The patent's semi-supervised autoencoder (CN112364828B): shapes, loss wiring, g, collapse detection."""

import numpy as np
import pytest
import torch

from benchmark.models.autoencoder import (
    SemiSupervisedAE,
    collapse_stats,
    combine,
    feature_loss,
    mean_map_losses,
)
from benchmark.errors import ConfigError
from benchmark.models.face_model import build_face_model
from benchmark.models.pretrained import pretrained_face_model
from benchmark.models.registry import create_head
from benchmark.train.common import TrainConfig
from benchmark.train.loop import train_semisupervised
from benchmark.train.stage import freeze_layers

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


def test_the_semi_supervised_model_needs_a_backbone_with_three_maps():
    with pytest.raises(TypeError, match="three feature maps .*ae_encoder, facenet_casia.*mobilenetv3_small_100"):
        SemiSupervisedAE(build_face_model("mobilenetv3_small_100"))


def test_on_facenet_the_decoder_matches_its_three_maps_and_the_embedding_is_the_network_s(facenet_cache):
    # Prepare: the pretrained FaceNet and two 160 px faces
    face = pretrained_face_model(facenet_cache)
    x = torch.rand(2, 3, 160, 160)
    # Execute
    model = SemiSupervisedAE(face).eval()
    with torch.no_grad():
        down1, down2, down3, up1, up2, up3 = model(x)
        embedding = model.embedding(down3)
    # Assert: down1-3 after repeat_1, repeat_2 and block8; each up map has its down map's shape
    assert [tuple(d.shape) for d in (down1, down2, down3)] == [(2, 256, 17, 17), (2, 896, 8, 8), (2, 1792, 3, 3)]
    assert [u.shape for u in (up3, up2, up1)] == [d.shape for d in (down1, down2, down3)]
    assert torch.allclose(embedding, face.neck(face.backbone(face.normalize(x))), atol=1e-5)


def test_fine_tuning_facenet_semi_supervised_leaves_its_frozen_layers_as_they_were(facenet_cache):
    # Prepare: FaceNet with its stem up to repeat_1 frozen (8 layers), 4 labelled and 4 unlabelled random faces
    model = pretrained_face_model(facenet_cache).train()
    freeze_layers(model, 8, "semisupervised")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (10, 160, 160, 3), dtype=np.uint8), np.array([0, 0, 1, 1, 2, 2, 0, 1, 2, 0])
    head = create_head("arcface", embedding_dim=512, num_classes=2, seed=0)
    cfg = TrainConfig(max_epochs=1, batch_size=2, lr=1e-4, head_lr=2e-3, fine_tune=True, augment="none", progress=False)
    # Execute
    train_semisupervised(SemiSupervisedAE(model), head, images, labels, np.arange(4), np.arange(4, 8),
                         np.arange(8, 10), cfg)
    # Assert: no weight or batch statistic of the frozen stem moved; the layers above did train
    after = model.state_dict()
    stem = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "conv2d_3b", "conv2d_4a", "conv2d_4b", "repeat_1")
    moved = {k.split(".")[2] for k in after if not torch.equal(before[k], after[k])}
    assert moved and not moved & set(stem) and {"mixed_6a", "repeat_2", "block8"} <= moved
    assert all(not p.requires_grad for p in model.backbone.net.repeat_1.parameters())


def test_freezing_more_layers_than_the_backbone_has_names_the_stage():
    with pytest.raises(ConfigError, match="'semisupervised.frozen_layers' = 4: backbone 'ae_encoder' has 3 layers"):
        freeze_layers(build_face_model("ae_encoder", embedding_dim=8, image_size=16, channels=(4, 6, 8)), 4,
                      "semisupervised")


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
