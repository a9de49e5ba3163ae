"""Optimisers and learning-rate schedulers."""
