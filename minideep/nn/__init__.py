"""Neural-network building blocks: ``Module``, layers, losses, recurrent layers."""

from . import functional, init, parallel, utils
from .layers import *  # noqa: F403
from .layers import __all__ as _layers_all
from .module import Module, ModuleList, Parameter, Sequential
from .recurrent import *  # noqa: F403
from .recurrent import __all__ as _recurrent_all
from .transformer import *  # noqa: F403
from .transformer import __all__ as _transformer_all

__all__ = ["Module", "ModuleList", "Parameter", "Sequential", "functional", "init", "utils"]
__all__ += ["parallel"]
__all__ += _layers_all + _recurrent_all + _transformer_all
