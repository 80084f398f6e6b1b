"""Training of the engine's models (``python -m engine train ...``)."""
