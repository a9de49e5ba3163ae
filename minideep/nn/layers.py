"""Layers: dense, convolution, pooling, normalisation, dropout, activations, losses."""

__all__: list[str] = []
