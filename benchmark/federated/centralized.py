"""The centralized reference: the same shared network and training budget on the union of the
institutions' images, as if the faces were pooled in one place.

It runs ``rounds`` "rounds" of ``local_epochs`` epochs each with :func:`benchmark.federated.local.train_round`
(the institutions' own local training, seeded the same way), one identity head over every institution's
identities, and measures verification on the test pairs after each round, so its per-round accuracy
lines up with the federated modes'.
"""

from __future__ import annotations

from tqdm.auto import tqdm

from benchmark.config import Params
from benchmark.federated import local
from benchmark.models.face_model import FaceModel


def run_centralized(params: Params, progress: bool = True) -> tuple[FaceModel, list[dict]]:
    """Train the centralized reference; returns the model and one row per round
    (``round``, ``accuracy``, ``verification``, ``train_seconds``)."""
    cfg = params.federated
    data = local.dataset(params)
    idx = local.union_images(data, cfg.images)
    model = local.new_model(params, data.geometry)
    head = local.new_head(cfg, data.labels[idx], params.seed)
    rows = []
    for r in tqdm(range(1, cfg.rounds + 1), desc="centralized", unit="round", disable=not progress):
        result = local.train_round(model, head, data, idx, local.local_config(params, r, 0))
        verification = local.verify(model, data)
        rows.append({"round": r, "accuracy": verification["accuracy_mean"], "verification": verification, "train_seconds": result.seconds})
    return model, rows
