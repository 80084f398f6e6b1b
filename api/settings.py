"""The REST API's settings in one typed object; :meth:`ApiSettings.from_env` reads ``CLINICAL_NLP_API_*``.

Engine settings (model set, device, rules) stay in :mod:`engine.settings` and are not repeated here, except the
two a service start names often (``device``, ``model_dir``), which are handed to :func:`engine.load_pipeline`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

ENV_PREFIX = "CLINICAL_NLP_API_"


def _db_url() -> str:
    from db.settings import default_url

    return default_url()


def _cast(name: str, raw: str, default: Any) -> Any:
    """``raw`` as the type of the field's default (``int``, ``float`` or ``str``)."""
    cast = type(default)
    try:
        return cast(raw)
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {cast.__name__}") from None


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """All settings of the service; ``ApiSettings()`` is the defaults, :meth:`from_env` the environment's.

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
        infer_batch: Most notes one engine thread analyses in one call (NER forward passes batched).
        infer_batch_chars: Most characters in one such call (a long note runs alone).
        engine_threads: Inference threads sharing the one pipeline (0: one per usable CPU, at most 4).
        torch_threads: Threads of each forward pass (0: the usable CPUs shared out among the engine threads).
        max_queue: Requests waiting for the engine beyond this get 503.
        request_timeout_s: A request waiting longer than this for the engine gets 504.
        ready_timeout_s: ``/ready`` waits this long for its test sentence.
        monitor_interval_s: Seconds between refreshes of the monitoring gauges of ``/metrics`` (0: never).
        monitor_window: Notes in the monitoring window of those gauges (0: the engine's monitoring setting).
        log_level: Log level of the service's own logger and uvicorn's.
    """

    # the server
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"
    # what one request may carry
    max_note_chars: int = 100_000
    max_body_bytes: int = 24_000_000
    max_batch_notes: int = 32
    # the store and the engine
    db_url: str = field(default_factory=_db_url)
    device: str = "auto"
    model_dir: str = ""
    # how requests share the engine (api/inference.py)
    infer_batch: int = 8
    infer_batch_chars: int = 40_000
    engine_threads: int = 0
    torch_threads: int = 0
    # waiting
    max_queue: int = 256
    request_timeout_s: float = 300.0
    ready_timeout_s: float = 2.0
    # the monitoring gauges (api/monitor.py)
    monitor_interval_s: float = 60.0
    monitor_window: int = 0

    def __post_init__(self) -> None:
        positive = ("port", "workers", "max_note_chars", "max_body_bytes", "max_batch_notes", "infer_batch",
                    "infer_batch_chars", "max_queue", "request_timeout_s", "ready_timeout_s")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"API setting {name} must be positive, got {getattr(self, name)!r}")
        for name in ("engine_threads", "torch_threads", "monitor_interval_s", "monitor_window"):
            if getattr(self, name) < 0:
                raise ValueError(f"API setting {name} must not be negative, got {getattr(self, name)!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"API setting device must be cpu, cuda or auto, got {self.device!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """The settings with every ``CLINICAL_NLP_API_<NAME>`` that is set and not empty applied.

        Raises:
            ValueError: A value is not of its setting's type, or out of range.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw:
                default = f.default if f.default is not MISSING else ""  # db_url, the one computed default
                values[f.name] = _cast(f.name, raw, default)
        return cls(**values)

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
