"""The batch job as a Ray Data pipeline: read, decode, skip done ids, the engine in an actor pool (GPU actors
where the cluster has GPUs), results streamed back and written as by the local runner (resumable the same way).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from engine.batch.local import RunStats, analyze_with_stats, run_outputs
from engine.batch.options import RunOptions
from engine.batch.outputs import done_ids
from engine.errors import EngineError, ErrorCode
from engine.inputs import (
    BadNote,
    Note,
    count_notes,
    decode_note,
    folder_note_id,
    input_kind,
    json_note,
    row_note,
    validate_input,
)
from engine.pipeline import ANALYSIS_STAGES
from engine.settings import REPO_ROOT


def _ray_normalize(batch: dict[str, Any], kind: str, id_column: str, text_column: str, folder: str) -> dict[str, Any]:
    """Ray map: raw rows of any input kind -> ``id``, ``text``, ``error`` columns (``error`` empty when fine)."""
    import numpy as np

    ids: list[str] = []
    texts: list[str] = []
    errs: list[str] = []

    def add(item: Note | BadNote) -> None:
        if isinstance(item, BadNote):
            ids.append(item.id)
            texts.append("")
            errs.append(item.error)
        else:
            ids.append(item.id)
            texts.append(item.text)
            errs.append("")

    if kind == "folder":
        for path, data in zip(batch["path"], batch["bytes"], strict=True):
            add(decode_note(folder_note_id(Path(folder), Path(str(path))), bytes(data)))
    elif kind == "jsonl":
        for line in batch["text"]:
            if str(line).strip():
                add(json_note(str(line), f"line {str(line)[:40]!r}", id_column, text_column))
    else:
        for raw_id, raw_text in zip(batch[id_column], batch[text_column], strict=True):
            add(row_note(raw_id, raw_text, "row without id"))
    return {
        "id": np.array(ids, dtype=object),
        "text": np.array(texts, dtype=object),
        "error": np.array(errs, dtype=object),
    }


def _ray_skip_done(batch: dict[str, Any], done_ref: list[Any]) -> dict[str, Any]:
    """Ray map: drop rows whose id is already in the output (the id set is fetched once per worker)."""
    import numpy as np
    import ray

    key = done_ref[0].hex()
    cache = _DONE_CACHE.get(key)
    if cache is None:
        cache = _DONE_CACHE[key] = ray.get(done_ref[0])
    keep = np.array([i not in cache for i in batch["id"]], dtype=bool)
    return {name: column[keep] for name, column in batch.items()}


_DONE_CACHE: dict[str, set[str]] = {}


class EngineActor:
    """A Ray actor holding one warm engine; called on batches of ``id``/``text``/``error`` columns.

    Returns the batch as ``id``, ``result`` (the contract's JSON, empty when the note failed), ``error`` and
    ``stats`` (the note's monitoring line as JSON, :mod:`engine.batch.stats`; empty when failed or not asked for).
    """

    def __init__(self, model_dir: str | None, device: str, overrides: dict[str, Any],
                 monitor_stats: bool = True) -> None:
        from engine.pipeline import load_pipeline

        self.pipeline = load_pipeline(model_dir=model_dir, device=device, **overrides)
        self.pipeline.warm(ANALYSIS_STAGES)
        self.monitor_stats = monitor_stats

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        ids = [str(i) for i in batch["id"]]
        errors = [str(e) for e in batch["error"]]
        notes = [Note(i, str(t)) for i, t, e in zip(ids, batch["text"], errors, strict=True) if not e]
        analysed, lines = analyze_with_stats(self.pipeline, notes, self.pipeline.settings.monitor.low_confidence)
        by_id = dict(zip([n.id for n in notes], zip(analysed, lines, strict=True), strict=True))
        results: list[str] = []
        out_errors: list[str] = []
        out_stats: list[str] = []
        for note_id, error in zip(ids, errors, strict=True):
            result, line = by_id.get(note_id, (None, None)) if not error else (None, None)
            if isinstance(result, BadNote):
                error = result.error
                result = None
            results.append(json.dumps(result, ensure_ascii=False) if result is not None else "")
            out_errors.append(error)
            out_stats.append(json.dumps(line, separators=(",", ":")) if result is not None and self.monitor_stats
                             else "")
        return {
            "id": np.array(ids, dtype=object),
            "result": np.array(results, dtype=object),
            "error": np.array(out_errors, dtype=object),
            "stats": np.array(out_stats, dtype=object),
        }


def _ray_init(address: str | None, num_cpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    # Workers import the engine from this checkout; a remote cluster gets the code shipped as the job's working
    # directory (its nodes must have the same Python environment, models and rules).
    if address:
        runtime_env = {
            "working_dir": str(REPO_ROOT),
            "excludes": [".venv/", ".git/", "tests/", "docs/", "bench/", "**/__pycache__/", "*.parquet"],
        }
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    else:
        pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
        )


def build_ray_dataset(
    input_path: Path,
    done: set[str],
    model_dir: str | None,
    device: str,
    overrides: dict[str, Any],
    actors: int | None,
    options: RunOptions,
) -> tuple[Any, dict[str, Any]]:
    """The Ray Data pipeline: read -> normalise -> skip done ids -> engine actor pool.

    GPU actors (one GPU each, one per GPU of the cluster) when the cluster has GPUs and ``device`` allows it, else
    CPU actors. ``options`` gives the input's columns, the actor batch size and whether actors compute monitoring
    statistics.

    Returns:
        The lazy dataset (``id``, ``result``, ``error``, ``stats`` columns) and a description of the actor pool.
    """
    import ray
    import ray.data

    id_column, text_column = options.id_column, options.text_column
    kind = input_kind(input_path)
    src = str(input_path.resolve())
    if kind == "folder":
        ds = ray.data.read_binary_files(src, include_paths=True, file_extensions=["txt", "TXT"])
    elif kind == "jsonl":
        ds = ray.data.read_text(src)
    elif kind == "csv":
        import pyarrow as pa
        import pyarrow.csv as pacsv

        ds = ray.data.read_csv(
            src,
            convert_options=pacsv.ConvertOptions(
                column_types={id_column: pa.string(), text_column: pa.string()},
                include_columns=[id_column, text_column],
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
        )
    else:
        ds = ray.data.read_parquet(src).select_columns([id_column, text_column])
    ds = ds.map_batches(
        _ray_normalize,
        fn_kwargs={"kind": kind, "id_column": id_column, "text_column": text_column, "folder": src},
        batch_format="numpy",
    )
    if done:
        ds = ds.map_batches(_ray_skip_done, fn_kwargs={"done_ref": [ray.put(done)]}, batch_format="numpy")
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if device in {"auto", "cuda"} else 0
    if device == "cuda" and gpus == 0:
        raise EngineError(ErrorCode.DEVICE_UNAVAILABLE, "--device cuda asked for, but the Ray cluster has no GPU")
    if gpus:
        pool = {"actors": actors or gpus, "num_gpus": 1, "num_cpus": 1, "device": "cuda"}
    else:
        cpus = int(resources.get("CPU", 1))
        # One CPU stays free for reading and decoding; each actor runs torch on its own CPU.
        pool = {"actors": actors or max(1, cpus - 1), "num_gpus": 0, "num_cpus": 1, "device": "cpu"}
    ds = ds.map_batches(
        EngineActor,
        fn_constructor_kwargs={"model_dir": model_dir, "device": pool["device"], "overrides": overrides,
                               "monitor_stats": options.monitor_stats},
        batch_size=options.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=pool["actors"]),
        num_cpus=pool["num_cpus"],
        num_gpus=pool["num_gpus"],
    )
    return ds, pool


def run_ray(
    input_path: Path,
    output: Path,
    fmt: str,
    options: RunOptions | None = None,
    *,
    address: str | None = None,
    model_dir: str | None = None,
    device: str = "auto",
    overrides: dict[str, Any] | None = None,
    actors: int | None = None,
    num_cpus: int | None = None,
) -> RunStats:
    """The batch job as a Ray Data pipeline; results stream back and are written (and resumable) as in
    :func:`run_local`.

    Args:
        address: A Ray cluster address (``ray://host:10001`` or ``auto``); ``None`` starts a local Ray instance.
        num_cpus: CPUs of the local instance (``None``: all).
        actors: Engine actors (default: one per GPU, else one per CPU but one).

    Other arguments as for :func:`run_local`.
    """
    import ray

    opts = options or RunOptions()
    stderr = opts.stream()
    started = time.perf_counter()
    validate_input(input_path, opts.id_column, opts.text_column)
    done = done_ids(output, fmt)
    _ray_init(address, num_cpus)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours shows notes/s; Ray's per-operator bars would interleave with it
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ds, pool = build_ray_dataset(input_path, done, model_dir, device, overrides or {}, actors, opts)
    stderr.write(f"ray: {pool['actors']} engine actor(s) on {pool['device']}, cluster {ray.cluster_resources()}\n")
    stats = RunStats(skipped=len(done))
    total = count_notes(input_path)
    todo = max(total - len(done), 0) if total is not None else None
    seen: set[str] = set(done)
    with run_outputs(output, fmt, todo, opts, stats, started) as (writer, errors, bar, monitor):
        for batch in ds.iter_batches(batch_size=opts.batch_size, batch_format="numpy"):
            good, lines = [], []
            for note_id, result, error, line in zip(batch["id"], batch["result"], batch["error"], batch["stats"],
                                                    strict=True):
                note_id = str(note_id)
                if error:
                    errors.report(note_id, str(error))
                elif note_id in seen:
                    errors.report(note_id, "duplicate id in the input (first one kept)")
                else:
                    seen.add(note_id)
                    good.append(json.loads(result))
                    lines.append(json.loads(line) if line else None)
            writer.write(good)
            monitor.write(lines)  # after the results, as in run_local
            stats.written += len(good)
            bar.update(len(batch["id"]))
            bar.set_postfix(failed=errors.count, refresh=False)
    return stats
