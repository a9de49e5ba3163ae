"""The one switch over every fast path, CPU and CUDA alike."""

from __future__ import annotations

import os


def env_flag(name: str) -> bool:
    """An on/off setting from the environment, on unless it says 0, false or off."""
    return os.environ.get(name, "1").strip().lower() not in ("0", "false", "off")


_enabled = env_flag("MINIDEEP_FAST_PATHS")


def enabled() -> bool:
    """Whether ops may take their fast paths (``md.fast_paths``)."""
    return _enabled


class fast_paths:
    """Turn every fast path off (``False``) or back on (``True``, the default).

    Like ``torch.set_grad_enabled``, it acts at once and, used with ``with``, restores
    the previous setting on exit::

        with md.fast_paths(False):   # every op runs its reference algorithm (ops/)
            y = model(x)
        md.fast_paths(False)         # off from here on

    ``MINIDEEP_FAST_PATHS=0`` in the environment makes off the default at import.
    """

    def __init__(self, enabled: bool = True):
        global _enabled
        self.previous = _enabled
        _enabled = bool(enabled)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _enabled
        _enabled = self.previous
        return False
