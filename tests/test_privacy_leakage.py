"""The stage-level privacy evidence: the leakage report on a tiny model and pool, and what an attacker
holding only a CKKS ciphertext and the public context can do with it (real TenSEAL encryption)."""

import copy

import numpy as np
import pytest
import tenseal as ts
import torch

from benchmark.models.face_model import to_float_nchw
from benchmark.models.registry import create_head
from benchmark.privacy.encrypted import attacker_view
from benchmark.privacy.inversion import LocalTraining, replay
from benchmark.privacy.leakage import leakage_report
from benchmark.privacy.settings import PrivacyConfig

SIZE = 16


pytestmark = pytest.mark.usefixtures("one_thread")


def _pool(identities: int = 3, per_identity: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 16, 16, 3) smooth images: a 4x4 colour pattern per identity, upsampled, plus a little noise."""
    rng = np.random.default_rng(0)
    images, labels = [], []
    for k in range(identities):
        base = np.kron(rng.random((4, 4, 3)), np.ones((4, 4, 1)))
        for _ in range(per_identity):
            images.append(np.clip(base + rng.normal(0, 0.03, base.shape), 0, 1))
            labels.append(10 + k)
    return (np.stack(images) * 255).round().astype(np.uint8), np.array(labels)


@pytest.fixture
def tiny(tiny_face_model):
    """A tiny FaceModel without BatchNorm (so the attack has something to recover) and an ArcFace head."""
    return tiny_face_model(16, batchnorm=False), create_head("arcface", embedding_dim=16, num_classes=2, seed=1)


def _update(model, head, images, indices, classes, training):
    """The weight change of ``training`` on ``images[indices]`` (the replay, torch's own steps: see the inversion tests)."""
    x, y = to_float_nchw(images[indices]), torch.as_tensor(classes)
    return [u.detach() for u in replay(copy.deepcopy(model).train(), copy.deepcopy(head).train(), x, None, y, training)]


def test_leakage_report_measures_a_real_reconstruction(tiny):
    # Prepare: two faces of identities 10 and 11 in one batch, 2 SGD steps
    model, head = tiny
    images, labels = _pool()
    training = LocalTraining("sgd", (0.01, 0.01), 5e-4, batch=2, batches=1)
    faces, classes = np.array([1, 4]), np.array([0, 1])
    update = _update(model, head, images, faces, classes, training)
    cfg = PrivacyConfig(iterations=300)
    # Execute
    report = leakage_report(model, update, training, images, labels, faces, cfg, seed=0)
    # Assert
    assert report["psnr"] > report["psnr_start"] + 3.0 and report["ssim"] > report["ssim_start"]
    assert report["originals"].shape == report["reconstructions"].shape == (2, 3, SIZE, SIZE)
    assert report["originals"].dtype == np.float32 and 0 <= report["reconstructions"].min() <= 1
    assert len(report["psnr_per_image"]) == len(report["reidentified_per_image"]) == 2
    assert 0.0 <= report["reidentified"] <= 1.0 and (report["faces"], report["steps"], report["batch"]) == (2, 2, 2)
    assert set(report["predicted"]) <= {10, 11, 12} and -1.0 <= report["threshold"] <= 1.0
    paired = {tuple(o.flatten()[:5]) for o in report["originals"]}
    assert len(paired) == 2  # each reconstruction is paired with its own original
    assert not model.training


def test_leakage_report_rejects_bad_batches(tiny):
    model, head = tiny
    images, labels = _pool()
    training = LocalTraining("sgd", (0.01,), 0.0, batch=2, batches=1)
    update = _update(model, head, images, np.array([0, 3]), np.array([0, 1]), training)
    cfg = PrivacyConfig(iterations=1)
    with pytest.raises(ValueError, match="must name the 2 faces behind the update"):
        leakage_report(model, update, training, images, labels, np.array([0, 3, 6]), cfg, seed=0)
    with pytest.raises(ValueError, match="must name the 2 faces"):
        leakage_report(model, update, training, images, labels, np.array([0, 99]), cfg, seed=0)
    with pytest.raises(ValueError, match="must match"):
        leakage_report(model, update, training, images, labels[:-1], np.array([0, 3]), cfg, seed=0)
    with pytest.raises(ValueError, match=r"identities \[10\] have no other image"):
        leakage_report(model, update, training, images[[0, 3, 4]], labels[[0, 3, 4]], np.array([0, 1]), cfg, seed=0)


def _ckks():
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    ctx.global_scale = 2.0**40
    return ctx


def test_a_ciphertext_with_the_public_context_cannot_be_decrypted_and_a_foreign_key_gives_noise():
    # Prepare: an update encrypted under the institutions' key; the attacker holds its public context
    update = np.random.default_rng(0).normal(0, 1e-3, 5000)
    owner, attacker = _ckks(), _ckks()
    data = ts.ckks_vector(owner, update).serialize()
    public = owner.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False)
    # Execute
    view = attacker_view(data, public, own_key_pair=attacker.serialize(save_secret_key=True), plaintext=update)
    with_key = attacker_view(data, owner.serialize(save_secret_key=True), plaintext=update)
    # Assert
    assert not view["context_has_secret_key"] and not view["decrypted"]
    assert "secret" in view["decrypt_error"] and view["ciphertext_bytes"] == len(data)
    assert view["own_key_relative_error"] > 1e6
    assert with_key["decrypted"] and with_key["relative_error"] < 1e-4
