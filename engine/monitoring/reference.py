"""The reference profile of a model: what its statistics look like on the distribution it was trained on.

``<ner model folder>/reference_profile.json`` holds one :func:`~engine.monitoring.profile.profile_analysis` record
per reference note (numbers and hashed word counts only, no text) and their window means. Drift is measured
against these notes (:mod:`engine.monitoring.drift` needs the per-note rows, not only totals: the permutation
null of input drift and the design effect of prediction drift are computed from them).

Written at training time by :func:`write_training_profile` (the NER trainer's and the retrainer's save step: the
full pipeline around the new model on up to :data:`TRAINING_PROFILE_NOTES` of its training notes), and
regenerated for any model set by::

    python -m engine monitor profile [--model-dir DIR] [--texts PATH] [--limit N]

which analyses the texts with the full pipeline (NER, history backfill, assertion, ICD: what production stores)
and writes the profile into ``DIR/ner/``. The default texts are every MACCROBAT report (the shipped NER model's
training and dev data; ``docs/monitoring.md`` says why not MTSamples).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import EngineError, ErrorCode
from engine.monitoring.drift import levels
from engine.monitoring.profile import PROFILE_VERSION, VOCAB_BUCKETS, profile_analysis
from engine.monitoring.table import StatsTable, from_profiles

PROFILE_FILE = "reference_profile.json"
NER_FOLDERS = {"fast": "ner", "accurate": "ner_accurate"}
"""``Settings.ner_model`` -> its folder in a model set: ``engine.ner.NER_MODELS``, repeated here so the monitor verb
does not import torch to find a profile (``tests/test_monitoring_train.py`` checks the two agree)."""
FORMAT = "clinical-nlp-reference-profile"
_DROP = ("models", "profile_version")


def build_reference_profile(
    texts: Sequence[str], results: Sequence[Any], source: str = "", low_confidence: float = 0.5
) -> dict[str, Any]:
    """The reference profile (a JSON-ready dict) of analysed notes.

    Args:
        texts: The reference notes.
        results: Their analysis results (:class:`~engine.types.AnalysisResult` or the contract's dicts).
        source: Where the notes came from, for people reading the profile.
        low_confidence: The low-confidence threshold the counts use.
    """
    profiles = [profile_analysis(t, r, low_confidence) for t, r in zip(texts, results, strict=True)]
    models = profiles[0]["models"] if profiles else {}
    digest = hashlib.sha256("\n".join(hashlib.sha256(t.encode()).hexdigest() for t in texts).encode()).hexdigest()
    return {
        "format": FORMAT,
        "profile_version": PROFILE_VERSION,
        "vocab_buckets": VOCAB_BUCKETS,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": models,
        "source": source,
        "texts_sha256": digest,
        "n_notes": len(profiles),
        "low_confidence": low_confidence,
        "summary": levels(from_profiles(profiles)),
        "notes": [{k: v for k, v in p.items() if k not in _DROP} for p in profiles],
    }


def write_reference_profile(
    model_dir: str | Path, texts: Sequence[str], results: Sequence[Any], source: str = ""
) -> Path:
    """Write ``model_dir/reference_profile.json`` (``model_dir`` is the NER model folder) and return its path."""
    path = Path(model_dir) / PROFILE_FILE
    profile = build_reference_profile(texts, results, source)
    path.write_text(json.dumps(profile, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def read_reference(path: str | Path) -> tuple[dict[str, Any], StatsTable]:
    """A reference profile's header (without its notes) and its notes as a :class:`StatsTable`.

    Raises:
        EngineError: ``MODEL_NOT_FOUND`` when the file is missing, ``MODEL_INVALID`` when it is not a profile of
            this format and hash space.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EngineError(
            ErrorCode.MODEL_NOT_FOUND,
            f"no reference profile at {path} (write one with: python -m engine monitor profile)",
        ) from exc
    except ValueError as exc:
        raise EngineError(ErrorCode.MODEL_INVALID, f"{path}: not JSON ({exc})") from exc
    if data.get("format") != FORMAT or data.get("vocab_buckets") != VOCAB_BUCKETS:
        raise EngineError(ErrorCode.MODEL_INVALID, f"{path}: not a reference profile of {VOCAB_BUCKETS} buckets")
    header = {k: v for k, v in data.items() if k != "notes"}
    return header, from_profiles(data["notes"])


def read_texts(path: Path, limit: int | None = None) -> list[str]:
    """Notes of a folder (every ``*.txt`` below it, sorted) or a JSON-lines file (a ``text`` field per line).

    Raises:
        EngineError: ``DATA_NOT_FOUND`` when nothing can be read there.
    """
    texts: list[str] = []
    if path.is_dir():
        texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(path.rglob("*.txt"))]
    elif path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(str(json.loads(line)["text"]))
    texts = [t for t in texts if t.strip()][:limit]
    if not texts:
        raise EngineError(ErrorCode.DATA_NOT_FOUND, f"no notes found at {path}")
    return texts


def profile_path(model_dir: str | Path, ner_model: str = "fast") -> Path:
    """The reference profile of the NER model ``ner_model`` (``Settings.ner_model``) of the set in ``model_dir``."""
    return Path(model_dir) / NER_FOLDERS.get(ner_model, NER_FOLDERS["fast"]) / PROFILE_FILE


def profile_model_set(model_dir: Path, texts: Sequence[str], source: str, device: str = "cpu",
                      batch: int = 8) -> Path:
    """Analyse ``texts`` with the model set in ``model_dir`` and write the reference profile into the folder of the
    NER model that ran (``Settings.ner_model``: ``ner/`` or, with ``CLINICAL_NLP_NER_MODEL=accurate``,
    ``ner_accurate/``)."""
    from engine.pipeline import ANALYSIS_STAGES, load_pipeline

    pipeline = load_pipeline(model_dir=model_dir, device=device)
    pipeline.warm(ANALYSIS_STAGES, freeze=False)
    results: list[Any] = []
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        results += pipeline.analyze_many([(None, t) for t in texts[i : i + batch]])
        sys.stderr.write(f"\rprofiled {len(results)}/{len(texts)} notes ({time.perf_counter() - started:.0f} s)")
    sys.stderr.write("\n")
    return write_reference_profile(profile_path(model_dir, pipeline.settings.ner_model).parent, texts, results, source)


def profile_ner_folder(ner_folder: Path, texts: Sequence[str], source: str, device: str = "cpu") -> Path:
    """:func:`profile_model_set` for a NER folder alone (the trainer's output), with the default other stages."""
    ner_folder = Path(ner_folder).resolve()
    if ner_folder.name == "ner":
        return profile_model_set(ner_folder.parent, texts, source, device)
    with tempfile.TemporaryDirectory() as tmp:  # a model set whose ner/ is the folder
        (Path(tmp) / "ner").symlink_to(ner_folder, target_is_directory=True)
        written = profile_model_set(Path(tmp), texts, source, device)
    return ner_folder / written.name


TRAINING_PROFILE_NOTES = 300
"""At most this many training notes are analysed for a trainer's reference profile (spread evenly over the
documents: enough for the window statistics, a few minutes on CPU)."""


def write_training_profile(ner_folder: str | Path, texts: Sequence[str], device: str = "cpu",
                           source: str = "training documents") -> Path | None:
    """The trainer's call after saving a NER model folder: analyse (a spread of) its training notes with the full
    pipeline around the new model and write ``ner_folder/reference_profile.json``.

    Args:
        ner_folder: The NER model folder just written.
        texts: The notes it was trained on (duplicates, such as up-weighted feedback notes, count once).
        device: Where to run the analyses.
        source: Where the notes came from, for the profile's header.

    Returns:
        The profile's path, or ``None`` when it could not be written; the model folder is already saved, so the
        trainer goes on, and the message on standard error gives the command that writes it later.
    """
    unique = [t for t in dict.fromkeys(texts) if t.strip()]
    if len(unique) > TRAINING_PROFILE_NOTES:
        step = len(unique) / TRAINING_PROFILE_NOTES
        unique = [unique[int(i * step)] for i in range(TRAINING_PROFILE_NOTES)]
    try:
        if not unique:
            raise EngineError(ErrorCode.DATA_NOT_FOUND, "no training text to profile")
        return profile_ner_folder(Path(ner_folder), unique, f"{source}: {len(unique)} notes", device)
    except Exception as exc:  # the trained model is saved already; a missing profile must not lose it
        sys.stderr.write(f"warning: no reference profile written into {ner_folder} ({exc}); write it with: python -m "
                         f"engine monitor profile --model-dir <the model set holding it> --texts <training notes>\n")
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine monitor profile``: (re)write a model set's reference profile."""
    from engine.settings import Settings

    settings = Settings()
    parser = argparse.ArgumentParser(prog="python -m engine monitor profile", description=main.__doc__)
    parser.add_argument("--model-dir", type=Path, default=settings.model_dir, help="model set (default: committed)")
    parser.add_argument("--texts", type=Path, help="folder of .txt notes or a .jsonl (default: MACCROBAT)")
    parser.add_argument("--limit", type=int, help="profile only the first N notes")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)
    texts_path = args.texts or settings.data_dir / "maccrobat"
    texts = read_texts(texts_path, args.limit)
    source = f"{texts_path.name}: {len(texts)} notes"
    path = profile_model_set(args.model_dir, texts, source, args.device)
    header, _ = read_reference(path)
    print(json.dumps({"written": str(path), "n_notes": header["n_notes"], "summary": header["summary"]}))
    return 0
