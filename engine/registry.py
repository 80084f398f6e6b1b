"""Pipeline stages registered by name.

The pipeline asks for a stage by name and this table says where its factory lives, so nothing is registered as a
side effect of importing a module, and a stage's heavy dependencies are imported only when it is used.
Each factory has the signature ``load(settings: Settings) -> stage`` and every stage has a ``version`` attribute.
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.settings import Settings

STAGES: dict[str, str] = {
    "sections": "engine.sections:load",
    "ner": "engine.ner:load",
    "history": "engine.history:load",
    "assertion": "engine.assertion:load",
    "icd": "engine.icd:load",
    "summarizer": "engine.summarizer:load",
    "encounter": "engine.encounter:load",
    "deid": "engine.deid:load",
}


def resolve(path: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def load_stage(name: str, settings: Settings) -> Any:
    """Build the stage registered under ``name``.

    Args:
        name: One of :data:`STAGES`.
        settings: Engine settings passed to the stage's factory.

    Raises:
        KeyError: No stage has that name.
    """
    if name not in STAGES:
        raise KeyError(f"unknown stage {name!r}; known: {', '.join(sorted(STAGES))}")
    return resolve(STAGES[name])(settings)
