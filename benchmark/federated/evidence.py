"""The federated stage's privacy evidence: what the party that sees one institution's update recovers.

Plaintext: the third party in ``third_party`` mode (and the server in plaintext FedAvg) decrypts every
individual update. :func:`privacy_evidence` plays institution 0's next local step on a small batch of
its faces, from the final plaintext-FedAvg network and the institution's own private head, and runs the
gradient inversion of :mod:`benchmark.privacy.leakage` on that update (Zhu et al. 2019, "Deep Leakage
from Gradients"; cosine + TV objective of Geiping et al. 2020): PSNR/SSIM against the originals and
whether the recognizer re-identifies the reconstruction.

Encrypted: the same update, packed and sealed as in ``blind`` mode, is what the blind server holds,
with the institutions' *public* context; :func:`benchmark.privacy.encrypted.attacker_view` records that
decryption fails for want of a secret key and that a key pair of the attacker's own decrypts noise.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.config import Params
from benchmark.federated import ckks, local
from benchmark.federated.aggregation import create_aggregation
from benchmark.federated.encryption import InstitutionCipher
from benchmark.models.face_model import FaceModel, to_float_nchw
from benchmark.privacy.encrypted import attacker_view
from benchmark.privacy.inversion import local_update
from benchmark.privacy.leakage import leakage_report

INSTITUTION = 0


def privacy_evidence(params: Params, model: FaceModel, head_state: dict, progress: bool = False) -> dict:
    """Attack institution 0's update of ``cfg.privacy.batch_size`` faces (picked by seed) at ``model``
    (the shared network the institution trains from) with its private head ``head_state``.

    Returns ``metrics`` (``psnr_plaintext``, ``ssim_plaintext``, ``reidentified_plaintext``, the random
    start's ``psnr_start``/``ssim_start``, ``reidentified_originals``, ``threat``, ``batch_size``,
    ``inversion_seconds``, ``blind_server``: the attacker's view of the sealed update) and ``report``
    (per-image lists and the originals/reconstructions as float32 (B, 3, H, W) for the figure)."""
    cfg = params.federated
    data = local.dataset(params)
    pool = local.institution_images(data, INSTITUTION, cfg.images)
    labels = data.labels[pool]
    head = local.new_head(cfg, labels, params.seed)
    head.load_state_dict(head_state)
    head.eval()
    batch = np.sort(np.random.default_rng(params.seed).choice(len(pool), cfg.privacy.batch_size, replace=False))
    classes = np.searchsorted(np.unique(labels), labels[batch])
    report = leakage_report(model, head, data.images[pool], labels, batch, classes, cfg.privacy, params.seed, progress)
    update = local_update(model, head, to_float_nchw(data.images[pool[batch]]), torch.from_numpy(classes), cfg.privacy.bn_mode)
    packed = create_aggregation(cfg.aggregation).pack(torch.cat([g.flatten() for g in update]).double().numpy(), len(batch))
    institutions = InstitutionCipher(f"institution {INSTITUTION}", ckks.secret_bytes(ckks.key_pair(cfg.ckks)), None)
    sealed = institutions.seal(packed)
    view = attacker_view(sealed.data, institutions.public_context(), ckks.secret_bytes(ckks.key_pair(cfg.ckks)), packed)
    metrics = {
        "psnr_plaintext": report["psnr"],
        "ssim_plaintext": report["ssim"],
        "reidentified_plaintext": report["reidentified"],
        "psnr_start": report["psnr_start"],
        "ssim_start": report["ssim_start"],
        "reidentified_originals": report["reidentified_originals"],
        "threat": report["threat"],
        "batch_size": report["batch_size"],
        "institution": INSTITUTION,
        "inversion_seconds": round(report["inversion_seconds"], 2),
        "blind_server": view,
    }
    return {"metrics": metrics, "report": report}
