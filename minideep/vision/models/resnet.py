"""ResNet-18 for images, as torchvision.models.resnet builds it (He et al. 2016).

Same modules, attribute names and initialisation as torchvision's ``resnet18``, so its
``state_dict()`` (converted to arrays) loads here and gives the same outputs::

    model = md.vision.models.resnet18()
    model.load_state_dict({k: v.numpy() for k, v in tv_model.state_dict().items()})

The network: a 7x7 stride-2 convolution and a 3x3 stride-2 max pool (the stem), four
stages (``layer1`` .. ``layer4``) of two :class:`BasicBlock` each with 64, 128, 256 and 512
channels, the last three halving the resolution, then global average pooling and ``fc``.
minideep never downloads weights: ``weights`` must be None.
"""

from __future__ import annotations

import math

from ... import nn
from ...nn import init
from ...tensor import Tensor

__all__ = ["BasicBlock", "ResNet", "resnet18"]


def kaiming_normal_fan_out_(weight: Tensor) -> Tensor:
    """torchvision's conv init, ``kaiming_normal_(w, mode="fan_out", nonlinearity="relu")``:
    N(0, std^2) with std = sqrt(2 / fan_out), fan_out = out_channels * kernel volume."""
    _, fan_out = init.fan_in_and_fan_out(weight.shape)
    return init.normal_(weight, 0.0, math.sqrt(2.0) / math.sqrt(fan_out))


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a batch norm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)): two 3x3 convolutions and a
    residual connection; ``downsample`` (1x1 conv + BN) reshapes the shortcut when the
    block changes the stride or the width."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet for ``BasicBlock``: x (N, 3, H, W) -> logits (N, num_classes)."""

    def __init__(self, block, layers, num_classes: int = 1000, zero_init_residual: bool = False):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                kaiming_normal_fan_out_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                init.constant_(m.weight, 1)
                init.constant_(m.bias, 0)
        if zero_init_residual:  # each residual branch starts at zero: blocks start as identities
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def _no_weights(weights, name: str) -> None:
    if weights is not None:
        raise ValueError(
            f"{name}: minideep never downloads weights; build the model with weights=None and "
            f"load a state_dict (e.g. torchvision's, converted to arrays), got weights={weights!r}"
        )


def resnet18(*, weights=None, progress: bool = True, **kwargs) -> ResNet:
    """ResNet-18: ``BasicBlock`` stages of [2, 2, 2, 2]; kwargs ``num_classes=1000``,
    ``zero_init_residual=False``. ``weights`` must be None (nothing is downloaded)."""
    _no_weights(weights, "resnet18")
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)
