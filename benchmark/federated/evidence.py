"""The federated stage's privacy evidence: what the party that sees one institution's update recovers.

Plaintext: the third party in ``third_party`` mode (and the server in plaintext FedAvg) decrypts every
individual update. :func:`privacy_evidence` has institution 0 run its real local training of a round
(:func:`benchmark.federated.local.train_round`: the federation's optimizer, schedule, weight decay, augmentation
and ``local_epochs``) from the final plaintext-FedAvg network and its own private head, on
``privacy.batch_size x privacy.batches`` of its faces, and runs the gradient inversion of
:mod:`benchmark.privacy.leakage` on the weight change it would ship (Geiping et al. 2020's multi-step
attack: the local training replayed on dummy images): PSNR/SSIM against the originals and the random start,
and whether the recognizer re-identifies the reconstructions.

Encrypted: the same update, packed and sealed as in ``blind`` mode, is what the blind server holds,
with the institutions' *public* context; :func:`benchmark.privacy.encrypted.attacker_view` records that
decryption fails for want of a secret key and that a key pair of the attacker's own decrypts noise.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter

import numpy as np

from benchmark.config import Params
from benchmark.federated import ckks, local
from benchmark.federated.aggregation import create_aggregation
from benchmark.federated.encryption import InstitutionCipher
from benchmark.models.face_model import FaceModel
from benchmark.models.heads import Head
from benchmark.privacy.encrypted import attacker_view
from benchmark.privacy.inversion import LocalTraining
from benchmark.privacy.leakage import leakage_report
from benchmark.train.common import lr_factor

INSTITUTION = 0


def _head_over(head: Head, identities: np.ndarray, kept: np.ndarray, fresh: Head) -> Head:
    """``fresh`` (a head over the identities ``kept``) loaded with ``head``'s rows for them (``head`` covers
    ``identities``, sorted): the institution's own class centres for the faces of the attacked round."""
    rows = np.searchsorted(identities, kept)
    state = {k: v[rows] if v.ndim and v.shape[0] == len(identities) else v for k, v in head.state_dict().items()}
    fresh.load_state_dict(state)
    return fresh


def _attacked_faces(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` sorted indices into ``labels`` (picked by ``seed``), leaving every identity at least one image outside
    them: the template its reconstructions are re-identified against. ValueError when the pool cannot."""
    left, chosen = Counter(labels.tolist()), []
    for i in np.random.default_rng(seed).permutation(len(labels)):
        if left[labels[i]] > 1:
            chosen.append(i)
            left[labels[i]] -= 1
            if len(chosen) == count:
                return np.sort(chosen)
    raise ValueError(f"federated.privacy: batch_size x batches = {count} faces, but institution {INSTITUTION}'s "
                     f"{len(labels)} images allow only {len(chosen)} with another image of their identity left as a "
                     "template; attack fewer")


def privacy_evidence(params: Params, model: FaceModel, head_state: dict, progress: bool = False) -> dict:
    """Attack the update institution 0 ships after a round of local training on ``privacy.batch_size x
    privacy.batches`` of its faces (picked by seed), from ``model`` (the shared network) and its private head
    ``head_state``.

    Returns ``metrics`` (``psnr_plaintext``, ``ssim_plaintext``, ``reidentified_plaintext``, the random
    start's ``psnr_start``/``ssim_start``, ``reidentified_originals``, ``threat``, ``faces``, ``steps``,
    ``batch_size``, ``inversion_seconds``, ``blind_server``: the attacker's view of the sealed update) and
    ``report`` (per-image lists and the originals/reconstructions as float32 (B, 3, H, W) for the figure)."""
    cfg = params.federated
    data = local.dataset(params)
    pool = local.institution_images(data, INSTITUTION, cfg.images)
    labels = data.labels[pool]
    faces = _attacked_faces(labels, cfg.privacy.batch_size * cfg.privacy.batches, params.seed)
    identities, kept = np.unique(labels), np.unique(labels[faces])
    head = local.new_head(cfg, labels, params.seed)
    head.load_state_dict(head_state)
    head = _head_over(head, identities, kept, local.new_head(cfg, kept, params.seed))
    train = dataclasses.replace(local.local_config(params, cfg.rounds + 1, INSTITUTION), batch_size=cfg.privacy.batch_size)
    trained = copy.deepcopy(model)
    shipped = local.train_round(trained, copy.deepcopy(head), data, pool[faces], train)
    update = [(b - a).detach() for a, b in zip(model.parameters(), trained.parameters())]
    factor = lr_factor(train, cfg.privacy.batches)
    steps = train.max_epochs * cfg.privacy.batches
    training = LocalTraining(train.optimizer, tuple(train.lr * factor(k) for k in range(steps)), train.weight_decay,
                             cfg.privacy.batch_size, cfg.privacy.batches)
    classes = np.searchsorted(kept, labels[faces])
    report = leakage_report(model, update, training, data.images[pool], labels, faces, cfg.privacy, params.seed,
                            head=head, classes=classes, progress=progress)
    packed = create_aggregation(cfg.aggregation).pack(shipped.update, shipped.num_examples)
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
        "faces": report["faces"],
        "steps": report["steps"],
        "batch_size": report["batch"],
        "optimizer": training.optimizer,
        "institution": INSTITUTION,
        "inversion_seconds": round(report["inversion_seconds"], 2),
        "blind_server": view,
    }
    return {"metrics": metrics, "report": report}
