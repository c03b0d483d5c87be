"""The regularization term of the adversarially hardened variant (patent CN116665282A).

The patent adds, while the performance gate (:mod:`benchmark.train.gate`) is on, a regularization term
"determined from the source samples, the adversarial samples and the target samples": adversarial = the
source plus an adversarial perturbation, target = built from the source toward a specified target
identity. It leaves the term's form open; this module defines it as

    R = beta * mean_i KL(p(x_i) || p(x_adv_i))                                 (consistency)
      + gamma * mean_j max(0, margin + cos(e(x_tgt_j), w_t_j) - cos(e(x_tgt_j), w_y_j))   (target margin)

* p = softmax of the identity logits without the training margin; x_adv = untargeted PGD on those logits.
  The consistency part is TRADES' (Zhang et al. 2019, :mod:`benchmark.train.trades`): it is 0 when the
  perturbation does not change the model's output and grows with what it changes, which is what an
  attacker exploits; unlike plain cross-entropy on x_adv it also keeps the adversarial output tied to the
  source output, which TRADES shows trades less clean accuracy for the same robustness.
* e = the L2-normalized embedding, w_c = the head's weight row of identity c (its class centre, as in
  ArcFace, Deng et al. 2019); x_tgt = targeted PGD toward another identity t_j != y_j. The hinge is the
  triplet margin of FaceNet (Schroff et al. 2015) with the class centres as anchors: the target sample
  must stay closer to its own identity than to the identity it is pushed toward, by ``margin`` in cosine.
  This is the verification threat the consistency KL does not name: impersonation, where an attacker
  pulls a face toward a chosen person; it is 0 once every target sample keeps the margin.

All quantities are per-batch means, in nats (KL) and cosine units (margin).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from benchmark.train.trades import consistency_kl


def other_identities(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """One target identity per label (N,) int64, uniform among the ``num_classes - 1`` other classes,
    drawn from ``generator`` (CPU) so a run is deterministic."""
    if num_classes < 2:
        raise ValueError(f"target identities need at least 2 classes, got num_classes={num_classes}")
    shift = torch.randint(1, num_classes, labels.shape, generator=generator).to(labels.device)
    return (labels + shift) % num_classes


def target_margin(
    embeddings: torch.Tensor, centres: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor, margin: float
) -> torch.Tensor:
    """Per-sample hinge max(0, margin + cos(e, w_t) - cos(e, w_y)), (N,).

    embeddings: (N, D) raw or normalized; centres: (C, D) class centres (head weight rows);
    labels, targets: (N,) int64 true and target identities; margin: cosine units (>= 0).
    """
    cos = F.linear(F.normalize(embeddings, dim=1), F.normalize(centres, dim=1))
    rows = torch.arange(len(labels), device=cos.device)
    return F.relu(margin + cos[rows, targets] - cos[rows, labels])


@dataclass(frozen=True)
class HardeningTerm:
    """R(source, adversarial, target) of the module docstring.

    beta:   weight of the consistency KL (>= 0); TRADES' own default is 6, see params.yaml for ours.
    gamma:  weight of the target margin (>= 0).
    margin: cosine margin the target samples keep between their identity and the target (in [0, 2]).
    """

    beta: float
    gamma: float
    margin: float

    def __post_init__(self) -> None:
        if not (self.beta >= 0 and self.gamma >= 0 and 0 <= self.margin <= 2):
            raise ValueError(
                f"hardening term needs beta >= 0, gamma >= 0 and margin in [0, 2]; "
                f"got beta={self.beta}, gamma={self.gamma}, margin={self.margin}"
            )

    def __call__(
        self,
        logits_source: torch.Tensor,
        logits_adv: torch.Tensor,
        target_embeddings: torch.Tensor,
        centres: torch.Tensor,
        target_labels: torch.Tensor,
        targets: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """R and its parts.

        logits_source, logits_adv: (N, C) identity logits without margin of source images and their
        untargeted adversarial versions; target_embeddings: (M, D) embeddings of target samples whose true
        identities are target_labels (M,) and target identities targets (M,); centres: (C, D).
        Returns (R as a scalar tensor with gradients, {"consistency": mean KL, "target_margin": mean hinge}).
        """
        kl = consistency_kl(logits_source, logits_adv).mean()
        hinge = target_margin(target_embeddings, centres, target_labels, targets, self.margin).mean()
        return self.beta * kl + self.gamma * hinge, {"consistency": kl.item(), "target_margin": hinge.item()}
