"""torchvision's vocabulary: ``md.vision.ops`` (box geometry, NMS, RoIAlign, detection
losses) and ``md.vision.models`` (ResNet-18, R3D-18, R(2+1)D-18 with torchvision's names)."""

from . import models, ops

__all__ = ["models", "ops"]
