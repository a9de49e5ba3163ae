"""R3D-18 and R(2+1)D-18 for clips, as torchvision.models.video.resnet builds them
(Tran et al. 2018, "A Closer Look at Spatiotemporal Convolutions for Action Recognition").

Same modules, attribute names and initialisation as torchvision's ``r3d_18`` and
``r2plus1d_18``, so their ``state_dict()`` (converted to arrays) loads here and gives the
same outputs. Clips are (N, 3, T, H, W). Both are a ``stem``, four stages ``layer1`` ..
``layer4`` of two :class:`BasicBlock` (64, 128, 256, 512 channels; the last three halve
time, height and width), a global average pool and ``fc``. They differ in the 3x3x3
convolution: R3D uses a full 3-d one (:class:`Conv3DSimple`), R(2+1)D factors it into a
1x3x3 spatial and a 3x1x1 temporal convolution with a batch norm and ReLU between
(:class:`Conv2Plus1D`), the middle width chosen to keep the parameter count.
minideep never downloads weights: ``weights`` must be None.
"""

from __future__ import annotations

from ... import nn
from ...nn import init
from ...tensor import Tensor
from .resnet import _no_weights, kaiming_normal_fan_out_

__all__ = [
    "BasicBlock",
    "BasicStem",
    "Conv2Plus1D",
    "Conv3DSimple",
    "R2Plus1dStem",
    "VideoResNet",
    "r2plus1d_18",
    "r3d_18",
]


class Conv3DSimple(nn.Conv3d):
    """A full 3x3x3 convolution, no bias."""

    def __init__(self, in_planes: int, out_planes: int, midplanes=None, stride=1, padding=1):
        super().__init__(
            in_planes, out_planes, (3, 3, 3), stride=stride, padding=padding, bias=False
        )

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


class Conv2Plus1D(nn.Sequential):
    """(2+1)-d convolution: 1x3x3 over space to ``midplanes`` channels, BN, ReLU, then
    3x1x1 over time; the stride is split the same way."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride=1, padding=1):
        super().__init__(
            nn.Conv3d(
                in_planes,
                midplanes,
                kernel_size=(1, 3, 3),
                stride=(1, stride, stride),
                padding=(0, padding, padding),
                bias=False,
            ),
            nn.BatchNorm3d(midplanes),
            nn.ReLU(),
            nn.Conv3d(
                midplanes,
                out_planes,
                kernel_size=(3, 1, 1),
                stride=(stride, 1, 1),
                padding=(padding, 0, 0),
                bias=False,
            ),
        )

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


class BasicBlock(nn.Module):
    """relu(conv2(conv1(x)) + shortcut(x)), each ``convN`` a Sequential of the conv
    builder's convolution and a BatchNorm3d (``conv1`` with a ReLU after it).

    ``midplanes = (in * out * 27) // (in * 9 + 3 * out)``: the width of a (2+1)-d
    convolution with as many parameters as the full 3x3x3 one (unused by Conv3DSimple)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, conv_builder, stride=1, downsample=None):
        midplanes = (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)
        super().__init__()
        self.conv1 = nn.Sequential(
            conv_builder(inplanes, planes, midplanes, stride), nn.BatchNorm3d(planes), nn.ReLU()
        )
        self.conv2 = nn.Sequential(conv_builder(planes, planes, midplanes), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


class BasicStem(nn.Sequential):
    """R3D's stem: a 3x7x7 convolution (stride 1, 2, 2) to 64 channels, BN, ReLU."""

    def __init__(self):
        super().__init__(
            nn.Conv3d(3, 64, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(),
        )


class R2Plus1dStem(nn.Sequential):
    """R(2+1)D's stem: 1x7x7 (stride 1, 2, 2) to 45 channels, BN, ReLU, 3x1x1 to 64, BN, ReLU."""

    def __init__(self):
        super().__init__(
            nn.Conv3d(3, 45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(45),
            nn.ReLU(),
            nn.Conv3d(45, 64, (3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(),
        )


class VideoResNet(nn.Module):
    """torchvision's VideoResNet: x (N, 3, T, H, W) -> logits (N, num_classes)."""

    def __init__(
        self, block, conv_makers, layers, stem, num_classes: int = 400, zero_init_residual=False
    ):
        super().__init__()
        self.inplanes = 64
        self.stem = stem()
        self.layer1 = self._make_layer(block, conv_makers[0], 64, layers[0], stride=1)
        self.layer2 = self._make_layer(block, conv_makers[1], 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, conv_makers[2], 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, conv_makers[3], 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                kaiming_normal_fan_out_(m.weight)
                if m.bias is not None:
                    init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm3d):
                init.constant_(m.weight, 1)
                init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                init.normal_(m.weight, 0, 0.01)
                init.constant_(m.bias, 0)
        # zero_init_residual only touches Bottleneck blocks in torchvision, which the -18
        # models do not use: accepted for the same signature, a no-op here as there.

    def _make_layer(self, block, conv_builder, planes: int, blocks: int, stride: int = 1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            ds_stride = conv_builder.get_downsample_stride(stride)
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes * block.expansion, 1, stride=ds_stride, bias=False),
                nn.BatchNorm3d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, conv_builder, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, conv_builder) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def r3d_18(*, weights=None, progress: bool = True, **kwargs) -> VideoResNet:
    """R3D-18: full 3-d convolutions throughout; kwargs ``num_classes=400``."""
    _no_weights(weights, "r3d_18")
    return VideoResNet(BasicBlock, [Conv3DSimple] * 4, [2, 2, 2, 2], BasicStem, **kwargs)


def r2plus1d_18(*, weights=None, progress: bool = True, **kwargs) -> VideoResNet:
    """R(2+1)D-18: every 3x3x3 convolution factored into space then time; kwargs
    ``num_classes=400``."""
    _no_weights(weights, "r2plus1d_18")
    return VideoResNet(BasicBlock, [Conv2Plus1D] * 4, [2, 2, 2, 2], R2Plus1dStem, **kwargs)
