"""Clinical NLP engine: entities, assertions, ICD-10-CM codes and extractive summaries, offline.

Imports neither Streamlit nor ``db``, so the CLI, batch jobs and Ray workers use it without a UI.
"""

from engine.errors import EngineError, ErrorCode
from engine.pipeline import Pipeline, load_pipeline
from engine.settings import Settings

__all__ = ["EngineError", "ErrorCode", "Pipeline", "Settings", "load_pipeline"]
__version__ = "0.1.0"
