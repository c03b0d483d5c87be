"""The performance gate of the adversarially hardened training (patent CN116665282A).

The patent trains on batches of source (clean) samples and, after every batch, measures the model's
performance: performance is above the preset performance threshold when the batch's overall loss is
below a preset precision threshold. While it is above, a regularization term is added to the loss and
the following batches are adversarial; when it falls back (loss >= threshold), the term is switched off
and training continues on source samples. :class:`PerformanceGate` is that rule and nothing else: it
sees one loss per step and answers whether the next step trains with the term on.

``hysteresis`` (default 0, the patent's rule) optionally widens the switch-off point: once on, the gate
stays on until the loss reaches ``threshold + hysteresis``, which damps on/off chatter when the loss
hovers at the threshold. Every switch is logged as a :class:`Switch` (step, loss, new state).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Switch:
    """One change of the gate: after training step ``step`` (1-based) its loss was ``loss``, and from
    step ``step + 1`` on the term is ``on``."""

    step: int
    loss: float
    on: bool


class PerformanceGate:
    """Decides, batch by batch, whether the regularization term is on (and batches adversarial).

    threshold:  the preset precision threshold on the batch's overall loss (same units as the loss,
                e.g. cross-entropy in nats); loss < threshold means the performance is above the
                performance threshold. Must be finite and > 0.
    hysteresis: >= 0; while on, switch off only when loss >= threshold + hysteresis (0: the patent's rule).

    The gate starts off (the first batch is a source batch). After each step call :meth:`update` with
    that step's loss; :attr:`on` is then the state of the next step. :attr:`states` holds the state each
    step trained with, :attr:`losses` the losses seen, :attr:`switches` every change.
    """

    def __init__(self, threshold: float, hysteresis: float = 0.0) -> None:
        if not (math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"gate threshold must be a finite loss > 0, got {threshold!r}")
        if not (math.isfinite(hysteresis) and hysteresis >= 0):
            raise ValueError(f"gate hysteresis must be a finite loss >= 0, got {hysteresis!r}")
        self.threshold = float(threshold)
        self.hysteresis = float(hysteresis)
        self.on = False
        self.states: list[bool] = []
        self.losses: list[float] = []
        self.switches: list[Switch] = []

    def update(self, loss: float) -> bool:
        """Record the loss of the step just trained (with state :attr:`on`) and return the next step's state.
        A NaN loss counts as poor performance (the term goes, or stays, off)."""
        loss = float(loss)
        self.states.append(self.on)
        self.losses.append(loss)
        limit = self.threshold + self.hysteresis if self.on else self.threshold
        above = loss < limit
        if above != self.on:
            self.on = above
            self.switches.append(Switch(len(self.states), loss, above))
            logger.info("gate %s after step %d: loss %.4f vs threshold %g", "on" if above else "off", self.steps, loss, self.threshold)
        return self.on

    @property
    def steps(self) -> int:
        """Steps recorded so far."""
        return len(self.states)

    @property
    def fraction_on(self) -> float:
        """Share of the recorded steps that trained with the term on (0 before any step)."""
        return sum(self.states) / len(self.states) if self.states else 0.0

    def log(self) -> dict:
        """Plain-type record for histories and JSON: threshold, hysteresis, per-step states and losses,
        the switches as dicts and the fraction on."""
        return {
            "threshold": self.threshold,
            "hysteresis": self.hysteresis,
            "on": [int(s) for s in self.states],
            "loss": list(self.losses),
            "switches": [asdict(s) for s in self.switches],
            "fraction_on": self.fraction_on,
        }
