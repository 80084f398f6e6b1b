"""The REST API's settings in one typed object, read from ``CLINICAL_NLP_API_*`` environment variables.

Engine settings (model set, device, rules) stay in :mod:`engine.settings` and are not repeated here, except the
two a service start names often (``device``, ``model_dir``), which are handed to :func:`engine.load_pipeline`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

ENV_PREFIX = "CLINICAL_NLP_API_"


def _env(name: str, default: Any, cast: Callable[[str], Any] = str) -> Any:
    raw = os.environ.get(ENV_PREFIX + name.upper())
    if raw is None or raw == "":
        return default
    try:
        return cast(raw)
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {cast.__name__}") from None


def _db_url() -> str:
    from db.settings import default_url

    return os.environ.get(ENV_PREFIX + "DB_URL") or default_url()


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """All settings of the service.

    Attributes:
        host: Interface uvicorn binds (``CLINICAL_NLP_API_HOST``).
        port: TCP port (``CLINICAL_NLP_API_PORT``).
        workers: uvicorn worker processes; each loads its own pipeline (about 450 MiB).
        max_note_chars: A note longer than this gets 413 (``CLINICAL_NLP_API_MAX_NOTE_CHARS``).
        max_body_bytes: A request body larger than this gets 413 before it is parsed.
        max_batch_notes: Notes one ``/predict/batch`` call may carry.
        db_url: The feedback store (``CLINICAL_NLP_API_DB_URL``, else ``CLINICAL_NLP_DB_URL``, else the SQLite
            file under ``db/``).
        device: ``cpu``, ``cuda`` or ``auto`` for the engine.
        model_dir: Another model set for the engine (empty: the engine's own default).
        infer_batch: Most notes the inference worker analyses in one call (NER forward passes batched).
        infer_batch_chars: Most characters in one such call (a long note runs alone).
        max_queue: Requests waiting for the engine beyond this get 503.
        request_timeout_s: A request waiting longer than this for the engine gets 504.
        ready_timeout_s: ``/ready`` waits this long for its test sentence.
        torch_threads: Threads of the engine's forward pass (0: torch's default).
        log_level: Log level of the service's own logger and uvicorn's.
    """

    host: str = field(default_factory=lambda: _env("host", "127.0.0.1"))
    port: int = field(default_factory=lambda: _env("port", 8000, int))
    workers: int = field(default_factory=lambda: _env("workers", 1, int))
    max_note_chars: int = field(default_factory=lambda: _env("max_note_chars", 100_000, int))
    max_body_bytes: int = field(default_factory=lambda: _env("max_body_bytes", 24_000_000, int))
    max_batch_notes: int = field(default_factory=lambda: _env("max_batch_notes", 32, int))
    db_url: str = field(default_factory=_db_url)
    device: str = field(default_factory=lambda: _env("device", "auto"))
    model_dir: str = field(default_factory=lambda: _env("model_dir", ""))
    infer_batch: int = field(default_factory=lambda: _env("infer_batch", 8, int))
    infer_batch_chars: int = field(default_factory=lambda: _env("infer_batch_chars", 40_000, int))
    max_queue: int = field(default_factory=lambda: _env("max_queue", 256, int))
    request_timeout_s: float = field(default_factory=lambda: _env("request_timeout_s", 300.0, float))
    ready_timeout_s: float = field(default_factory=lambda: _env("ready_timeout_s", 2.0, float))
    torch_threads: int = field(default_factory=lambda: _env("torch_threads", 0, int))
    log_level: str = field(default_factory=lambda: _env("log_level", "info"))

    def __post_init__(self) -> None:
        positive = ("port", "workers", "max_note_chars", "max_body_bytes", "max_batch_notes", "infer_batch",
                    "infer_batch_chars", "max_queue", "request_timeout_s", "ready_timeout_s")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"API setting {name} must be positive, got {getattr(self, name)!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"API setting device must be cpu, cuda or auto, got {self.device!r}")

    def with_overrides(self, values: Mapping[str, Any] | None = None, **kwargs: Any) -> ApiSettings:
        """A copy with the given non-None fields replaced (unknown names raise ``TypeError``)."""
        merged = {**(values or {}), **kwargs}
        known = {f.name for f in fields(self)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise TypeError(f"unknown API settings: {', '.join(unknown)}")
        return replace(self, **{k: v for k, v in merged.items() if v is not None})

    def public(self) -> dict[str, Any]:
        """The settings safe to show (the database URL without its password)."""
        from sqlalchemy.engine import make_url

        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["db_url"] = make_url(self.db_url).render_as_string(hide_password=True)
        return out
