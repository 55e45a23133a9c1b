"""Narrow ResNets for small images on small machines.

ResNet-18's layout (four stages of two basic blocks, He et al. 2016) with a CIFAR stem
(3x3 stride-1 convolution, no max-pool) and stage widths (w, 2w, 4w, 8w) instead of
(64, 128, 256, 512). At w=16 it costs ~1/16 of ResNet-18's FLOPs, which makes CPU runs and the
quick-start practical; it is not part of the paper.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from byol.backbone_names import SMALL_RESNET_NAMES, SMALL_RESNET_WIDTHS


class SmallResNet(nn.Module):
    """(B, 3, H, W) -> pooled features (B, 8 * width); ``num_features`` declares the size."""

    def __init__(self, width: int = 16, blocks: tuple[int, int, int, int] = (2, 2, 2, 2)) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width={width} must be positive")
        self.num_features = 8 * width
        self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        stages = []
        in_channels = width
        for index, count in enumerate(blocks):
            channels = width * 2**index
            stride = 1 if index == 0 else 2
            stages.append(self._stage(in_channels, channels, count, stride))
            in_channels = channels
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def _stage(in_channels: int, channels: int, count: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or in_channels != channels:
            downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )
        layers = [BasicBlock(in_channels, channels, stride, downsample)]
        layers += [BasicBlock(channels, channels) for _ in range(count - 1)]
        return nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(images)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


SMALL_RESNETS = dict(zip(SMALL_RESNET_NAMES, SMALL_RESNET_WIDTHS, strict=True))
