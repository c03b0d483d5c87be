"""timm backbones for the reference recognizer a practitioner would pick instead of the patent's model.

ResNet-18 (He et al. 2016, "Deep Residual Learning for Image Recognition") and MobileNetV3-Small
(Howard et al. 2019, "Searching for MobileNetV3"), built by ``timm.create_model(name, pretrained=False,
num_classes=0)``: randomly initialized (no weights are downloaded; no model hub is reachable here) and
without the classifier, so the backbone ends in global average pooling and returns (N, F) features.

Both run in channels_last memory format, which made them faster on these CPUs (DESIGN.md: ~1.3x for
resnet18, ~1.9x for mobilenetv3 at 64x64).
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.models.registry import BACKBONES


class TimmBackbone(nn.Module):
    """A timm model without its classifier: float32 (N, 3, H, W), normalized -> features (N, num_features)."""

    def __init__(self, arch: str, channels_last: bool = True) -> None:
        super().__init__()
        import timm  # here, not at the top: importing timm takes seconds and only these backbones need it

        self.model = timm.create_model(arch, pretrained=False, num_classes=0)
        self.channels_last = channels_last
        self.config: dict = {}  # channels_last is a speed setting, not part of the architecture
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.num_features = self._probe_features()

    def _probe_features(self) -> int:
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            width = self.model(torch.zeros(1, 3, 32, 32)).shape[1]
        self.model.train(was_training)
        return int(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, num_features)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)


@BACKBONES.register("resnet18")
def resnet18(channels_last: bool = True) -> TimmBackbone:
    """timm ResNet-18, 512 features (He et al. 2016)."""
    return TimmBackbone("resnet18", channels_last)


@BACKBONES.register("mobilenetv3_small_100")
def mobilenetv3_small_100(channels_last: bool = True) -> TimmBackbone:
    """timm MobileNetV3-Small (width 1.0), 1024 features after its conv head (Howard et al. 2019)."""
    return TimmBackbone("mobilenetv3_small_100", channels_last)
