"""``python -m engine batch``: arguments, refusing an unusable input or output before any model loads, exit status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.batch.local import run_local
from engine.batch.options import RunOptions
from engine.batch.outputs import done_ids, errors_path, output_format
from engine.batch.ray import run_ray
from engine.batch.stats import stats_path
from engine.errors import EngineError, ErrorCode
from engine.inputs import InputError, validate_input
from engine.pipeline import ANALYSIS_STAGES


def build_parser() -> argparse.ArgumentParser:
    """The ``batch`` verb's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m engine batch",
        description="Analyse many notes into JSON lines or Parquet; resumable; failing notes are reported and skipped.",
    )
    parser.add_argument("input", help="a folder of .txt notes, or a .csv / .jsonl / .parquet file with id and text")
    parser.add_argument("output", help="JSON lines file, or a Parquet dataset folder when it ends in .parquet")
    parser.add_argument("--format", choices=["jsonl", "parquet"], help="output format (default: by OUTPUT's name)")
    parser.add_argument("--id-column", default="id", help="id column/field of table inputs (default: id)")
    parser.add_argument("--text-column", default="text", help="text column/field of table inputs (default: text)")
    parser.add_argument("--batch-size", type=int, default=32, help="notes per engine call (default: 32)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--model-dir", help="another trained model set (default: the committed one)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--rows-per-file", type=int, default=1000, help="Parquet results per part file")
    parser.add_argument("--no-stats", action="store_true", help="do not write OUTPUT.stats.jsonl (each note's "
                        "monitoring statistics, no text; stored with `python -m engine monitor ingest`)")
    ray_group = parser.add_argument_group("Ray")
    ray_group.add_argument("--ray", action="store_true", help="run as a Ray Data pipeline")
    ray_group.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
    ray_group.add_argument("--actors", type=int, help="engine actors (default: one per GPU, else CPUs - 1)")
    ray_group.add_argument("--num-cpus", type=int, help="CPUs of a local Ray instance (default: all)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m engine batch``; returns 0, 2 when some notes failed, 1 when the run could not
    start (unusable input or output, models missing)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.address and not args.ray:
        sys.stderr.write("python -m engine batch: --address needs --ray\n")
        return 2
    if args.batch_size < 1:
        sys.stderr.write("python -m engine batch: --batch-size must be at least 1\n")
        return 2
    input_path, output = Path(args.input), Path(args.output)
    fmt = output_format(output, args.format)
    try:
        # An unusable input or output is refused before any model is loaded (minutes on a cluster).
        validate_input(input_path, args.id_column, args.text_column)
        done_ids(output, fmt)
        # Both runners read and write alike; only where the engine runs differs.
        options = RunOptions(
            batch_size=args.batch_size, id_column=args.id_column, text_column=args.text_column,
            progress=not args.no_progress, rows_per_file=args.rows_per_file, monitor_stats=not args.no_stats,
        )
        if args.ray:
            stats = run_ray(input_path, output, fmt, options, address=args.address, model_dir=args.model_dir,
                            device=args.device, actors=args.actors, num_cpus=args.num_cpus)
        else:
            from engine.pipeline import load_pipeline

            pipeline = load_pipeline(model_dir=args.model_dir, device=args.device)
            pipeline.warm(ANALYSIS_STAGES)
            stats = run_local(input_path, output, fmt, pipeline, options,
                              low_confidence=pipeline.settings.monitor.low_confidence)
    except InputError as exc:
        sys.stderr.write(f"error: [{ErrorCode.BAD_INPUT.value}] {exc}\n")
        return 1
    except EngineError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except Exception as exc:
        if not args.ray:
            raise
        # A Ray failure (actor could not start, cluster lost) arrives wrapped; what was written so far stays, and
        # running the same command again resumes after it.
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"error: the Ray pipeline failed: {first}\n")
        sys.stderr.write("(results written so far are kept; run the same command again to resume)\n")
        return 1
    sys.stderr.write(stats.line() + (f"; failures listed in {errors_path(output)}" if stats.failed else "")
                     + (f"; monitoring statistics appended to {stats_path(output)}" if stats.monitored else "") + "\n")
    return 2 if stats.failed else 0
