"""Optimisers and learning-rate schedulers, with PyTorch's names and update formulas.

Each optimiser lives in its own file; :mod:`.optimizer` holds what they share
(parameter groups, per-parameter state, ``zero_grad``, ``state_dict``).
"""

from . import lr_scheduler
from .adam import Adam
from .adamw import AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler"]
