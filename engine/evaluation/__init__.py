"""Evaluation of the engine's models (``python -m engine evaluate ...``)."""
