"""Speed of our attacks against torchattacks' (the reference implementations) on the same model.

Both attack the same logits model (a FaceModel with a linear identity classifier on its normalized
embedding), the same batch, the same number of steps and the same budget, with a random start, in one
process: the two are run alternately ``repeats`` times (interleaved, so drifts in machine load hit both)
and the median seconds of each give images/s. Compared: PGD-L-inf (``torchattacks.PGD``) and APGD
(``torchattacks.APGD``, cross-entropy, one restart).
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.attacks import create_attack
from benchmark.attacks.objectives import classification
from benchmark.models.face_model import FaceModel


class FaceLogits(nn.Module):
    """FaceModel + cosine classifier: x (N, 3, H, W) in [0, 1] -> logits (N, classes) = scale * cos(embed, W)."""

    def __init__(self, face: FaceModel, classes: int, scale: float = 16.0, seed: int = 0) -> None:
        super().__init__()
        self.face, self.scale = face, scale
        gen = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(classes, face.embedding_dim, generator=gen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.face.embed(x) @ F.normalize(self.weight, dim=1).T


def attack_vs_torchattacks(
    name: str, model: nn.Module, x: torch.Tensor, steps: int = 10, eps: float = 4 / 255, repeats: int = 5,
) -> dict:
    """``{"ours_images_per_second", "torchattacks_images_per_second", "ratio"}`` of attack ``name`` (``pgd_linf`` or
    ``apgd``) against its torchattacks counterpart on ``x`` (N, 3, H, W). The labels are the model's own predictions:
    torchattacks' APGD skips the images the model already gets wrong, so with them every image is attacked by both."""
    import torchattacks  # here: only this benchmark needs the reference library

    with torch.no_grad():
        labels = model(x).argmax(dim=1)

    alpha = 2.5 * eps / steps
    pairs = {
        "pgd_linf": (create_attack("pgd_linf", eps=eps, alpha=alpha, steps=steps, random_start=True),
                     torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)),
        "apgd": (create_attack("apgd", eps=eps, steps=steps),
                 torchattacks.APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, loss="ce")),
    }
    if name not in pairs:
        raise ValueError(f"no torchattacks reference for attack {name!r}; compared: {', '.join(pairs)}")
    ours, reference = pairs[name]
    objective = classification(model, labels)
    runs = {"ours": lambda: ours(model, x, objective), "torchattacks": lambda: reference(x, labels)}
    seconds: dict[str, list[float]] = {key: [] for key in runs}
    for run in runs.values():  # warm-up, untimed
        run()
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[key].append(time.perf_counter() - start)
    ours_ips = len(x) / statistics.median(seconds["ours"])
    ref_ips = len(x) / statistics.median(seconds["torchattacks"])
    return {"ours_images_per_second": ours_ips, "torchattacks_images_per_second": ref_ips, "ratio": ours_ips / ref_ips}
