"""The stage-level privacy evidence: the leakage report on a tiny model and pool, and what an attacker
holding only a CKKS ciphertext and the public context can do with it (real TenSEAL encryption)."""

import numpy as np
import pytest
import tenseal as ts

from benchmark.models.face_model import build_face_model
from benchmark.models.registry import create_head
from benchmark.privacy.encrypted import attacker_view
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


def _tiny():
    model = build_face_model("ae_encoder", seed=0, embedding_dim=16, image_size=SIZE, channels=(16, 32, 32), kernel_size=3)
    return model.eval(), create_head("arcface", embedding_dim=16, num_classes=3, seed=1)


def test_leakage_report_measures_a_real_reconstruction():
    # Prepare
    model, head = _tiny()
    images, labels = _pool()
    cfg = PrivacyConfig(batch_size=2, iterations=300)  # a batch of 1 (of at most 2): the tiny net leaks too little for 2
    # Execute
    report = leakage_report(model, head, images, labels, np.array([4]), np.array([1]), cfg, seed=0)
    # Assert
    assert report["psnr"] > report["psnr_start"] + 6.0 and report["ssim"] > report["ssim_start"]
    assert report["originals"].shape == report["reconstructions"].shape == (1, 3, SIZE, SIZE)
    assert report["originals"].dtype == np.float32 and 0 <= report["reconstructions"].min() <= 1
    assert len(report["psnr_per_image"]) == len(report["reidentified_per_image"]) == 1
    assert report["reidentified"] in (0.0, 1.0) and report["batch_size"] == 1
    assert set(report["predicted"]) <= {10, 11, 12} and -1.0 <= report["threshold"] <= 1.0
    assert not model.training


def test_leakage_report_rejects_bad_batches():
    model, head = _tiny()
    images, labels = _pool()
    cfg = PrivacyConfig(batch_size=2, iterations=1)
    with pytest.raises(ValueError, match="batch_size"):
        leakage_report(model, head, images, labels, np.array([0, 3, 6]), np.array([0, 1, 2]), cfg, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        leakage_report(model, head, images, labels, np.array([], np.int64), np.array([], np.int64), cfg, seed=0)
    with pytest.raises(ValueError, match="one head class per attacked image"):
        leakage_report(model, head, images, labels, np.array([0]), np.array([0, 1]), cfg, seed=0)
    with pytest.raises(ValueError, match=r"identities \[10\] have no other image"):
        leakage_report(model, head, images[[0, 3, 4]], labels[[0, 3, 4]], np.array([0]), np.array([0]), cfg, seed=0)


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
