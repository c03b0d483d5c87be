"""Privacy evidence for the federated stage: what the party that sees an individual update recovers.

:func:`leakage_report` plays one institution's local step on a small batch of its faces (the update it
would send in plaintext FedAvg, or that the third party decrypts in ``third_party`` mode), runs the
gradient inversion of :mod:`benchmark.privacy.inversion` on it, and measures the reconstructions
against the originals (PSNR, SSIM) and with the face recognizer itself (re-identification against
identity templates of the other images, at the verification threshold for ``cfg.far``).

:func:`attacker_view` is the encrypted counterpart: holding a TenSEAL CKKS ciphertext and the public
context it was made under (what the aggregation server holds in ``blind`` mode, and what travels to
the third party), decryption fails for want of a secret key, and a key pair of the attacker's own
decrypts it to noise. There is then nothing to invert.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from benchmark.evaluation.identification import similarity_matrix
from benchmark.evaluation.verification import threshold_at_far
from benchmark.models.checkpoint import embed_images
from benchmark.models.face_model import FaceModel, to_float_nchw
from benchmark.privacy.inversion import invert_update, local_update
from benchmark.privacy.metrics import identity_templates, psnr, reidentification, ssim
from benchmark.privacy.settings import PrivacyConfig


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> uint8 (B, H, W, 3)."""
    return (x.detach().cpu().clamp(0, 1) * 255.0).round().byte().permute(0, 2, 3, 1).numpy()


def _pool_threshold(embeddings: np.ndarray, labels: np.ndarray, far: float) -> float:
    """Verification threshold at ``far`` on every pair of the pool's images (genuine: same identity)."""
    sim = similarity_matrix(embeddings, embeddings)
    upper = np.triu_indices(len(labels), k=1)
    same = labels[upper[0]] == labels[upper[1]]
    return threshold_at_far(sim[upper][same], sim[upper][~same], far)


def leakage_report(
    model: FaceModel,
    head: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    classes: np.ndarray,
    cfg: PrivacyConfig,
    seed: int,
    progress: bool = False,
) -> dict:
    """Attack one institution's plaintext local update on the batch ``images[indices]`` and measure the leak.

    model:   the shared embedding network at the start of the local step (not modified).
    head:    the institution's private head; ``classes`` (B,) int are the batch's head classes.
    images:  uint8 (N, H, W, 3): a pool of faces holding the batch and other images of its identities
             (templates for re-identification come from the pool minus the batch; the threshold at
             ``cfg.far`` from all genuine/impostor pairs of the pool, so keep N to a few thousand).
    labels:  (N,) identity of each pool image; indices (B,) the attacked batch, B <= cfg.batch_size.
    cfg, seed: attack settings; the seed fixes the attack's random start.

    Returns ``psnr``, ``ssim`` (means over the batch, dB and unitless), ``reidentified`` (fraction of the
    batch), ``reidentified_originals`` (the same test on the original images: what the model can do at
    best), ``psnr_start`` / ``ssim_start`` (the random start: the floor), their per-image lists
    (``*_per_image``), ``threshold``, ``predicted`` (identity per reconstruction), ``inversion_seconds``,
    ``batch_size``, ``threat``, and ``originals`` / ``reconstructions`` as float32 (B, 3, H, W) arrays.
    """
    indices = np.asarray(indices, np.int64)
    labels, classes = np.asarray(labels), np.asarray(classes, np.int64)
    if images.ndim != 4 or labels.shape != (len(images),):
        raise ValueError(f"images (N, H, W, 3) and labels (N,) must match, got {images.shape} and {labels.shape}")
    if not 1 <= len(indices) <= cfg.batch_size or indices.min() < 0 or indices.max() >= len(images):
        raise ValueError(
            f"indices must name 1..{cfg.batch_size} (batch_size) images of the {len(images)} in the pool, got {indices.tolist()}"
        )
    if classes.shape != indices.shape:
        raise ValueError(f"classes must give one head class per attacked image, got {classes.shape} for {indices.shape}")
    rest = np.setdiff1d(np.arange(len(images)), indices)
    missing = sorted(set(labels[indices].tolist()) - set(labels[rest].tolist()))
    if missing:
        raise ValueError(f"identities {missing} have no other image in the pool to re-identify against")
    device = next(model.parameters()).device
    originals = to_float_nchw(images[indices]).to(device)
    targets = torch.from_numpy(classes).to(device)
    update = local_update(model, head, originals, targets, cfg.bn_mode)
    result = invert_update(model, update, tuple(originals.shape), cfg, seed, head=head, labels=targets, progress=progress)
    pool_emb = embed_images(model, images[rest])
    templates, identities = identity_templates(pool_emb, labels[rest])
    threshold = _pool_threshold(pool_emb, labels[rest], cfg.far)
    truth = labels[indices]
    recon = reidentification(embed_images(model, _to_uint8(result.images)), truth, templates, identities, threshold)
    orig = reidentification(embed_images(model, images[indices]), truth, templates, identities, threshold)
    a, b = originals.cpu().numpy(), result.images.numpy()
    p, s = psnr(a, b), ssim(a, b)
    p0, s0 = psnr(a, result.start.numpy()), ssim(a, result.start.numpy())
    return {
        "psnr": float(p.mean()),
        "ssim": float(s.mean()),
        "reidentified": float(recon["reidentified"].mean()),
        "reidentified_originals": float(orig["reidentified"].mean()),
        "psnr_start": float(p0.mean()),
        "ssim_start": float(s0.mean()),
        "psnr_per_image": p.tolist(),
        "ssim_per_image": s.tolist(),
        "reidentified_per_image": recon["reidentified"].tolist(),
        "predicted": recon["predicted"].tolist(),
        "threshold": threshold,
        "inversion_seconds": result.seconds,
        "batch_size": len(indices),
        "threat": cfg.threat,
        "originals": a.astype(np.float32),
        "reconstructions": b.astype(np.float32),
    }
