"""Registries, backbones, the FaceModel wrapper and the checkpoint contract."""

import numpy as np
import pytest
import torch

from benchmark.models.checkpoint import embed_images, load_model, save_model
from benchmark.models.face_model import FaceModel, build_face_model, to_float_nchw
from benchmark.models.registry import BACKBONES, HEADS, Registry, create_backbone

SIZE = 32
SMALL = {"ae_encoder": {"image_size": SIZE, "channels": (4, 8, 8)}}


def side(name: str) -> int:
    """The crop side a backbone is tested at: its own declared input size, or SIZE."""
    return getattr(create_backbone(name, **SMALL.get(name, {})), "input_size", None) or SIZE


def tiny(name: str, seed: int = 0) -> FaceModel:
    """A small FaceModel; a backbone that ends in its own embedding (FaceNet) keeps its width."""
    with torch.random.fork_rng(devices=[]):  # probing the backbone leaves the global RNG alone
        backbone = create_backbone(name, **SMALL.get(name, {}))
    dim = backbone.num_features if getattr(backbone, "embedding", False) else 16
    return build_face_model(name, seed=seed, embedding_dim=dim, **SMALL.get(name, {}))


def test_registry_registers_creates_and_rejects_duplicates_and_unknown_names():
    # Prepare
    reg = Registry("widget")

    @reg.register("double")
    def double(x: int = 1) -> int:
        return 2 * x

    # Execute / Assert
    assert reg.create("double", x=4) == 8
    assert reg.names() == ["double"]
    with pytest.raises(ValueError, match="widget 'double' is already registered"):
        reg.register("double")(lambda: 0)
    with pytest.raises(KeyError, match="unknown widget 'triple'; known widgets: double"):
        reg.create("triple")


def test_the_registries_hold_the_issue_s_backbones_and_heads():
    assert {"ae_encoder", "resnet18", "mobilenetv3_small_100"} <= set(BACKBONES.names())
    assert {"softmax", "cosface", "arcface"} <= set(HEADS.names())


@pytest.mark.parametrize("name", BACKBONES.names())
def test_backbone_maps_nchw_to_its_declared_feature_width(name):
    # Prepare
    backbone = create_backbone(name, **SMALL.get(name, {})).eval()
    # Execute
    with torch.no_grad():
        out = backbone(torch.rand(2, 3, side(name), side(name)))
    # Assert
    assert out.shape == (2, backbone.num_features)


@pytest.mark.parametrize("name", BACKBONES.names())
def test_face_model_forward_backward_and_normalized_embedding(name):
    # Prepare
    model = tiny(name)
    x = torch.rand(4, 3, side(name), side(name))
    # Execute
    raw = model(x)
    raw.square().sum().backward()
    unit = model.embed(x)
    # Assert
    assert raw.shape == (4, model.embedding_dim) and model.embedding_dim in (16, 512)
    assert torch.allclose(unit.norm(dim=1), torch.ones(4), atol=1e-5)
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_model_id_names_arch_and_config_and_is_stable():
    # Execute
    a, b = tiny("ae_encoder", seed=0), tiny("ae_encoder", seed=1)
    c = build_face_model("ae_encoder", embedding_dim=16, image_size=SIZE, channels=[4, 8, 16])
    # Assert
    assert a.model_id == b.model_id == "ae_encoder(channels=4-8-8,image_size=32,kernel_size=5)+emb16"
    assert c.model_id != a.model_id


def test_build_face_model_is_deterministic_by_seed_and_leaves_the_global_rng_alone():
    # Prepare
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    # Execute
    a, b, c = tiny("ae_encoder", 0), tiny("ae_encoder", 0), tiny("ae_encoder", 1)
    after = torch.rand(1)
    # Assert
    wa, wb, wc = (m.backbone.conv1[0].weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert torch.equal(after, expected_next)


def test_normalization_lives_inside_the_model():
    model = tiny("ae_encoder")
    assert torch.allclose(model.normalize(torch.full((1, 3, 2, 2), 0.5)), torch.zeros(1, 3, 2, 2))
    assert torch.allclose(model.normalize(torch.ones(1, 3, 2, 2)), torch.ones(1, 3, 2, 2))


def test_to_float_nchw_converts_uint8_nhwc_and_rejects_other_inputs():
    # Prepare
    images = np.zeros((2, 4, 5, 3), np.uint8)
    images[1, 2, 3] = (255, 0, 51)
    # Execute
    x = to_float_nchw(images)
    # Assert
    assert x.shape == (2, 3, 4, 5) and x.dtype == torch.float32
    assert torch.allclose(x[1, :, 2, 3], torch.tensor([1.0, 0.0, 0.2]))
    with pytest.raises(ValueError, match="uint8"):
        to_float_nchw(images.astype(np.float32))


def test_ae_encoder_rejects_an_image_size_that_is_not_a_multiple_of_8():
    with pytest.raises(ValueError, match="multiple of 8"):
        create_backbone("ae_encoder", image_size=30)


def _faces(n: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", ["ae_encoder", "resnet18"])
def test_checkpoint_round_trip_gives_identical_embeddings(name, tmp_path):
    # Prepare
    model = tiny(name)
    model.train()
    model(torch.rand(4, 3, SIZE, SIZE))  # move the BatchNorm running statistics away from their init
    images = _faces()
    before = embed_images(model, images)
    # Execute
    save_model(model, tmp_path / "m.pt", {"variant": "test", "epochs": 3})
    loaded = load_model(tmp_path / "m.pt")
    after = embed_images(loaded, images)
    # Assert
    np.testing.assert_array_equal(before, after)
    assert not loaded.training and model.training
    assert loaded.embedding_dim == 16 and loaded.model_id == model.model_id
    assert loaded.meta == {"variant": "test", "epochs": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_embed_images_returns_unit_float32_rows_and_restores_mode():
    # Prepare
    model = tiny("ae_encoder").train()
    # Execute
    emb = embed_images(model, _faces(7), batch_size=3)
    # Assert
    assert emb.dtype == np.float32 and emb.shape == (7, 16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert model.training
    with pytest.raises(ValueError, match="uint8"):
        embed_images(model, _faces().astype(np.float32))


def test_load_model_names_the_file_when_missing_or_not_a_checkpoint(tmp_path):
    # Prepare
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    # Execute / Assert
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="garbage.pt' is not a facebench model checkpoint"):
        load_model(garbage)
    with pytest.raises(ValueError, match="other.pt' is not a facebench model checkpoint"):
        load_model(other)


@pytest.mark.parametrize("name", ["ae_encoder", "resnet18"])
def test_a_model_refuses_crops_of_another_size_naming_both(name, tmp_path):
    # Prepare: a model built for 32 px crops, saved and loaded back
    model = build_face_model(name, embedding_dim=16, input_size=SIZE, **SMALL.get(name, {}))
    save_model(model, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    # Execute / Assert
    assert loaded.input_size == SIZE and embed_images(loaded, _faces()).shape == (5, 16)
    with pytest.raises(ValueError, match=r"takes 32x32 face crops \(its input geometry\), got 48x48"):
        embed_images(loaded, np.zeros((2, 48, 48, 3), np.uint8))


def test_flip_test_fuses_the_mirror_and_is_mirror_invariant():
    # Prepare
    model = tiny("ae_encoder")
    faces = _faces()
    # Execute
    fused = embed_images(model, faces, flip=True)
    mirrored = embed_images(model, np.ascontiguousarray(faces[:, :, ::-1]), flip=True)
    # Assert: the fused embedding of an image equals that of its mirror, and differs from the plain one
    np.testing.assert_allclose(fused, mirrored, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(fused, embed_images(model, faces), atol=1e-3)
