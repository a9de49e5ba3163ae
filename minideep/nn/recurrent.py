"""Recurrent layers: RNN, LSTM and GRU cells and sequence layers."""

__all__: list[str] = []
