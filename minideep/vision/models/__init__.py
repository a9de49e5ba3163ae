"""torchvision.models: reference architectures with torchvision's module and parameter
names, so a torchvision model's ``state_dict()`` loads into them (no weights are ever
downloaded). ``resnet18`` for images; ``r3d_18`` and ``r2plus1d_18`` for clips (also in
``video_resnet``, torchvision's ``models.video``)."""

from . import resnet, video_resnet
from .resnet import ResNet, resnet18
from .video_resnet import VideoResNet, r2plus1d_18, r3d_18

__all__ = ["ResNet", "VideoResNet", "r2plus1d_18", "r3d_18", "resnet", "resnet18", "video_resnet"]
