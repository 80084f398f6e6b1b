"""The batch job: every input format, both output formats, resume, error isolation, the CLI and Ray (local)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import batch

REPO = Path(__file__).resolve().parent.parent

NOTES = {
    "n1": "Chief complaint: chest pain.\nHistory of hypertension treated with lisinopril 10 mg daily.\n",
    "n2": "Assessment: type 2 diabetes mellitus. Patient denies fever or cough. Plan: start metformin.\n",
    "n3": "Family history: mother had breast cancer.\nCT scan of the abdomen showed no acute findings.\n",
}


def write_folder(folder: Path, bad: bool = True) -> Path:
    """The three notes as ``.txt`` files (one in a sub-folder), plus one file that is not UTF-8."""
    (folder / "sub").mkdir(parents=True)
    (folder / "n1.txt").write_text(NOTES["n1"], encoding="utf-8")
    (folder / "n2.txt").write_text(NOTES["n2"], encoding="utf-8")
    (folder / "sub" / "n3.txt").write_text(NOTES["n3"], encoding="utf-8")
    (folder / "ignored.md").write_text("not a note", encoding="utf-8")
    if bad:
        (folder / "latin1.txt").write_bytes("Patient refuses caf\xe9 and cr\xe8me.".encode("latin-1"))
    return folder


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_contract(result: dict, text: str) -> None:
    assert set(result) >= {"id", "entities", "models", "timings_ms"}
    for entity in result["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
        assert entity["label"] in {"DIAG", "PROC", "MED", "TEST", "ANAT"}


def entities_key(result: dict) -> list[tuple]:
    return [(e["start"], e["end"], e["label"], e["assertion"]) for e in result["entities"]]


def test_folder_to_jsonl_skips_bad_note_and_resumes(pipeline, tmp_path, capsys):
    folder = write_folder(tmp_path / "notes")
    out = tmp_path / "out.jsonl"

    stats = batch.run_local(folder, out, "jsonl", pipeline, batch.RunOptions(batch_size=2, progress=False))

    assert (stats.written, stats.failed, stats.skipped) == (3, 1, 0)
    results = read_jsonl(out)
    assert [r["id"] for r in results] == ["n1", "n2", "sub/n3"]
    for result in results:
        check_contract(result, NOTES[result["id"].split("/")[-1]])
    assert sum(len(r["entities"]) for r in results) > 0
    errors = read_jsonl(batch.errors_path(out))
    assert [e["id"] for e in errors] == ["latin1"]
    assert "UTF-8" in errors[0]["error"]
    assert "latin1" in capsys.readouterr().err

    # Resume: nothing is analysed twice; a note added since is.
    (folder / "n4.txt").write_text("Impression: pneumonia of the right lower lobe.", encoding="utf-8")
    stats = batch.run_local(folder, out, "jsonl", pipeline, batch.RunOptions(batch_size=2, progress=False))
    assert (stats.written, stats.skipped) == (1, 3)
    assert [r["id"] for r in read_jsonl(out)] == ["n1", "n2", "sub/n3", "n4"]


def test_resume_repairs_a_line_cut_by_a_crash(pipeline, tmp_path):
    folder = write_folder(tmp_path / "notes", bad=False)
    out = tmp_path / "out.jsonl"
    batch.run_local(folder, out, "jsonl", pipeline, batch.RunOptions(progress=False))
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    # As if the run had died while writing the last result.
    out.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2], encoding="utf-8")

    stats = batch.run_local(folder, out, "jsonl", pipeline, batch.RunOptions(progress=False))

    assert (stats.written, stats.skipped) == (1, 2)
    assert sorted(r["id"] for r in read_jsonl(out)) == ["n1", "n2", "sub/n3"]


def test_table_inputs_and_parquet_output_agree_with_folder(pipeline, tmp_path):
    import pandas as pd
    import pyarrow.parquet as pq

    frame = pd.DataFrame({"id": list(NOTES), "text": list(NOTES.values())})
    inputs = {
        "csv": tmp_path / "in.csv",
        "jsonl": tmp_path / "in.jsonl",
        "parquet": tmp_path / "in.parquet",
    }
    frame.to_csv(inputs["csv"], index=False)
    frame.to_parquet(inputs["parquet"], index=False)
    lines = [json.dumps({"id": i, "text": t}) for i, t in NOTES.items()]
    # A broken line and a line without text are reported; the others still run.
    lines[1:1] = ["{not json", json.dumps({"id": "no-text"})]
    inputs["jsonl"].write_text("\n".join(lines) + "\n", encoding="utf-8")

    reference = {}
    for kind, path in inputs.items():
        out = tmp_path / f"out-{kind}.jsonl"
        stats = batch.run_local(path, out, "jsonl", pipeline, batch.RunOptions(progress=False))
        assert stats.written == 3, kind
        assert stats.failed == (2 if kind == "jsonl" else 0), kind
        for result in read_jsonl(out):
            check_contract(result, NOTES[result["id"]])
            reference.setdefault(result["id"], entities_key(result))
            assert entities_key(result) == reference[result["id"]], (kind, result["id"])

    parquet_out = tmp_path / "out.parquet"
    fmt = batch.output_format(parquet_out)
    stats = batch.run_local(inputs["csv"], parquet_out, fmt, pipeline, batch.RunOptions(progress=False))
    assert stats.written == 3
    rows = pq.read_table(parquet_out).to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(NOTES)
    for row in rows:
        result = batch.parquet_to_result(row)
        check_contract(result, NOTES[result["id"]])
        assert entities_key(result) == reference[result["id"]]
    # Resume from the Parquet folder: everything is already there.
    stats = batch.run_local(inputs["jsonl"], parquet_out, "parquet", pipeline, batch.RunOptions(progress=False))
    assert (stats.written, stats.skipped) == (0, 3)


def test_unusable_inputs_are_refused_whole(tmp_path, capsys):
    missing_column = tmp_path / "notes.csv"
    missing_column.write_text("note_id,body\n1,chest pain\n", encoding="utf-8")
    assert batch.main([str(missing_column), str(tmp_path / "o.jsonl"), "--no-progress"]) == 1
    assert "'id' or 'text'" in capsys.readouterr().err
    assert batch.main([str(tmp_path / "nowhere"), str(tmp_path / "o.jsonl")]) == 1
    (tmp_path / "notes.xml").write_text("<x/>", encoding="utf-8")
    assert batch.main([str(tmp_path / "notes.xml"), str(tmp_path / "o.jsonl")]) == 1
    assert "unknown input type" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_cli_writes_parquet_and_exits_2_when_a_note_failed(tmp_path, capsys):
    folder = write_folder(tmp_path / "notes")
    out = tmp_path / "results.parquet"

    status = batch.main([str(folder), str(out), "--device", "cpu", "--no-progress", "--batch-size", "2"])

    assert status == 2
    err = capsys.readouterr().err
    assert "latin1" in err and "3 notes written" in err and "1 failed" in err
    import pyarrow.parquet as pq

    assert sorted(pq.read_table(out).column("id").to_pylist()) == ["n1", "n2", "sub/n3"]
    assert batch.main([str(folder), str(out), "--device", "cpu", "--no-progress"]) == 2
    assert "0 notes written, 3 already done" in capsys.readouterr().err


def run_cli(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_DISABLE_USAGE_STATS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "engine", "batch", *args, "--device", "cpu", "--no-progress"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_ray_pipeline_gives_the_local_results(pipeline, tmp_path):
    folder = write_folder(tmp_path / "notes")
    local_out = tmp_path / "local.jsonl"
    batch.run_local(folder, local_out, "jsonl", pipeline, batch.RunOptions(progress=False))

    ray_out = tmp_path / "ray.jsonl"
    # Resume under Ray as well: one note is already in the output.
    ray_out.write_text(local_out.read_text(encoding="utf-8").splitlines(keepends=True)[0], encoding="utf-8")
    proc = run_cli([str(folder), str(ray_out), "--ray", "--num-cpus", "2", "--batch-size", "2"], timeout=300)

    assert proc.returncode == 2, proc.stderr  # one note failed, the others were written
    assert "latin1" in proc.stderr and "2 notes written" in proc.stderr
    local = {r["id"]: r for r in read_jsonl(local_out)}
    remote = {r["id"]: r for r in read_jsonl(ray_out)}
    assert sorted(remote) == sorted(local) == ["n1", "n2", "sub/n3"]
    for note_id, result in remote.items():
        check_contract(result, NOTES[note_id.split("/")[-1]])
        assert entities_key(result) == entities_key(local[note_id])
    assert [e["id"] for e in read_jsonl(batch.errors_path(ray_out))] == ["latin1"]
