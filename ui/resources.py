"""The app's long-lived resources, created once per process: the engine and the feedback database.

This is the one place where model loading is wrapped in ``st.cache_resource``; pages import these getters.
The pipeline is built for the active model version (see :mod:`engine.versions`) and warmed before it is
returned, so the first analysis does not pay for loading models; an activation or rollback is picked up on the
next page run without a restart.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import streamlit as st

from engine.errors import EngineError
from engine.pipeline import ANALYSIS_STAGES, freeze_loaded_objects, load_pipeline

WARM_NOTE = " ".join(
    ["Patient denies chest pain or fever. History of hypertension and type 2 diabetes mellitus treated with "
     "lisinopril and metformin. Chest x-ray and ECG were normal; troponin was negative."] * 24
)
"""About 700 words: long enough to use full NER windows and several ICD look-ups during warm-up."""
log = logging.getLogger(__name__)
_state_lock = threading.Lock()
_loaded_version: dict[str, str] = {}


def _device() -> str:
    return os.environ.get("CLINICAL_NLP_DEVICE", "auto")


def active_version() -> str:
    """The active model version id (``base`` for the committed defaults)."""
    from engine import versions

    try:
        return versions.active_version()
    except EngineError:
        return versions.BASE


@st.cache_resource(show_spinner="Loading and warming the clinical NLP engine…", max_entries=2)
def _load_pipeline(version: str, device: str) -> Any:
    # load_pipeline resolves the active version's folder itself; ``version`` only keys the cache.
    pipeline = load_pipeline(device=device)
    pipeline.warm(ANALYSIS_STAGES, freeze=False)  # frozen once below, after everything is loaded
    # A note longer than one encoder window, so the first real analysis meets no first-call kernel set-up.
    pipeline.analyze(WARM_NOTE)
    try:  # a broken summarizer must not take the Analyze page down; the Summary page reports it when used
        pipeline.stage("summarizer")
        pipeline.summarize("Patient is stable. Follow up in two weeks.", k=1)
    except Exception:
        log.warning("summarizer unavailable", exc_info=True)
    freeze_loaded_objects()
    return pipeline


def get_pipeline() -> Any:
    """The warmed :class:`~engine.pipeline.Pipeline` for the active model version (loaded once per process).

    Raises:
        Exception: Whatever loading the engine raised; callers show it with :func:`engine_error_message`.
    """
    version = active_version()
    with _state_lock:
        previous = _loaded_version.get("version")
        if previous is not None and previous != version:
            _load_pipeline.clear()  # free the old model set before loading the newly activated one
    pipeline = _load_pipeline(version, _device())
    with _state_lock:
        _loaded_version["version"] = version
    return pipeline


def engine_error_message(err: BaseException, doing: str = "start") -> str:
    """One line for a person explaining why the engine could not ``doing`` (``start``, ``analyse this note``...)."""
    if isinstance(err, EngineError):
        return f"The engine could not {doing}: {err}"
    return f"The engine could not {doing} ({type(err).__name__}: {err})."


@st.cache_resource
def get_writer() -> ThreadPoolExecutor:
    """One background thread per process that stores analyses, in submission order."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedback-writer")


@st.cache_resource(show_spinner="Opening the feedback database…")
def _load_db_engine(url: str) -> Any:
    from db.session import init_db

    return init_db(url)


def get_db_engine() -> Any:
    """The SQLAlchemy engine of the feedback store (``$CLINICAL_NLP_DB_URL``), schema migrated to the newest."""
    from db.settings import DbSettings

    return _load_db_engine(DbSettings().url)
