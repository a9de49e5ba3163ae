"""``md.cuda``: is a GPU usable?"""

from .backend import cuda_is_available


def is_available() -> bool:
    """True when CuPy is installed and sees a CUDA device."""
    return cuda_is_available()
