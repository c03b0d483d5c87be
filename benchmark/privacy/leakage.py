"""Privacy evidence for the federated stage: what the party that sees an individual update recovers.

:func:`leakage_report` takes the update an institution made by its local training on some of its faces
(what it sends in plaintext FedAvg, or what the third party decrypts in ``third_party`` mode), runs the
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
from benchmark.privacy.inversion import LocalTraining, invert_update
from benchmark.privacy.metrics import (
    identity_templates,
    match_faces,
    matched_originals,
    psnr,
    reidentification,
    ssim,
)
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
    update: list[torch.Tensor],
    training: LocalTraining,
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    cfg: PrivacyConfig,
    seed: int,
    head: nn.Module | None = None,
    classes: np.ndarray | None = None,
    progress: bool = False,
) -> dict:
    """Attack the update ``update`` an institution made by ``training`` on the faces ``images[indices]``,
    and measure what the reconstructions give away.

    model:   the shared embedding network the institution started from (not modified).
    update:  its weight change, one tensor per ``model.parameters()``.
    images:  uint8 (N, H, W, 3): a pool of faces holding the attacked ones and other images of their identities
             (templates for re-identification come from the pool minus the attacked faces; the threshold at
             ``cfg.far`` from all genuine/impostor pairs of the pool, so keep N to a few thousand).
    labels:  (N,) identity of each pool image; indices (``training.faces``,) the faces behind the update.
    cfg, seed: attack settings; the seed fixes the attack's random start.
    head, classes: the institution's head at the start and the faces' head classes in the order of
             ``indices``; used only by the ``known_head`` threat (which replays the batches in that order).

    Each reconstruction is paired with the original it shows (:func:`~benchmark.privacy.metrics.match_faces`),
    and so is each image of the random start. Returns ``psnr``, ``ssim`` (means over the faces, dB and
    unitless), ``reidentified`` (fraction of the reconstructions whose paired original's identity the recognizer
    names), ``reidentified_originals`` (the same test on the originals: what the model can do at best),
    ``psnr_start`` / ``ssim_start`` (the random start: the floor), per-face lists (``*_per_image``),
    ``threshold``, ``predicted`` (identity per reconstruction), ``inversion_seconds``, ``faces``, ``steps``,
    ``batch``, ``threat``, and ``originals`` (paired, mirrored where matched so) / ``reconstructions`` as
    float32 (B, 3, H, W) arrays.
    """
    indices = np.asarray(indices, np.int64)
    labels = np.asarray(labels)
    if images.ndim != 4 or labels.shape != (len(images),):
        raise ValueError(f"images (N, H, W, 3) and labels (N,) must match, got {images.shape} and {labels.shape}")
    if len(indices) != training.faces or indices.min() < 0 or indices.max() >= len(images):
        raise ValueError(f"indices must name the {training.faces} faces behind the update among the {len(images)} in "
                         f"the pool, got {indices.tolist()}")
    rest = np.setdiff1d(np.arange(len(images)), indices)
    missing = sorted(set(labels[indices].tolist()) - set(labels[rest].tolist()))
    if missing:
        raise ValueError(f"identities {missing} have no other image in the pool to re-identify against")
    targets = None if classes is None else torch.as_tensor(np.asarray(classes, np.int64))
    shape = (3, *images.shape[1:3])
    result = invert_update(model, update, training, shape, cfg, seed, head=head, labels=targets, progress=progress)
    pool_emb = embed_images(model, images[rest])
    templates, identities = identity_templates(pool_emb, labels[rest])
    threshold = _pool_threshold(pool_emb, labels[rest], cfg.far)
    originals = to_float_nchw(images[indices]).numpy()
    recon, begin = result.images.numpy(), result.start.numpy()
    order, flipped = match_faces(originals, recon)
    paired = matched_originals(originals, order, flipped)
    p, s = psnr(paired, recon), ssim(paired, recon)
    start = matched_originals(originals, *match_faces(originals, begin))
    p0, s0 = psnr(start, begin), ssim(start, begin)
    truth = labels[indices][order]
    found = reidentification(embed_images(model, _to_uint8(result.images)), truth, templates, identities, threshold)
    orig = reidentification(embed_images(model, images[indices]), labels[indices], templates, identities, threshold)
    return {
        "psnr": float(p.mean()),
        "ssim": float(s.mean()),
        "reidentified": float(found["reidentified"].mean()),
        "reidentified_originals": float(orig["reidentified"].mean()),
        "psnr_start": float(p0.mean()),
        "ssim_start": float(s0.mean()),
        "psnr_per_image": p.tolist(),
        "ssim_per_image": s.tolist(),
        "reidentified_per_image": found["reidentified"].tolist(),
        "predicted": found["predicted"].tolist(),
        "threshold": threshold,
        "inversion_seconds": result.seconds,
        "faces": training.faces,
        "steps": len(training.lrs),
        "batch": training.batch,
        "threat": cfg.threat,
        "originals": paired.astype(np.float32),
        "reconstructions": recon.astype(np.float32),
    }
