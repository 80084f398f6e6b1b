"""The REST API as the tests meet it: a real ``python -m api`` process on a free port with a real SQLite file.

The ``api_server`` and ``api`` fixtures (``tests/conftest.py``) start one server for the whole test session
(loading the models takes ~30 s); the API test files share it. Keys are made with ``python -m db keys`` as an
operator would make them. No note text may ever reach the server's log (``tests/test_api_service.py``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from support.devserver import REPO, free_port

MARKER = "Quorvex"
"""A word that occurs only in the notes these tests send (searched for in the server log)."""
NOTE = (f"Mr {MARKER} denies chest pain. History of hypertension treated with lisinopril. "
        "He has type 2 diabetes mellitus and was started on metformin. Chest X-ray was normal.")
MAX_NOTE_CHARS = 5_000
MAX_BODY_BYTES = 300_000
MONITOR_INTERVAL_S = 1.0
"""The test server refreshes its monitoring gauges every second (the default is a minute)."""


def db_cli(url: str, *args: str) -> list[dict]:
    """Run ``python -m db --url URL ARGS...``; its JSON lines."""
    out = subprocess.run([sys.executable, "-m", "db", "--url", url, *args], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


class Server:
    """A running ``python -m api`` process with three keys: ann's, bob's and a revoked one (eve's)."""

    def __init__(self, tmp: Path) -> None:
        self.db_path = tmp / "api.sqlite"
        self.url = f"sqlite:///{self.db_path}"
        self.log_path = tmp / "server.log"
        db_cli(self.url, "init")
        self.key = db_cli(self.url, "keys", "create", "--reviewer", "ann", "--name", "tests")[0]["key"]
        self.key_bob = db_cli(self.url, "keys", "create", "--reviewer", "bob")[0]["key"]
        revoked = db_cli(self.url, "keys", "create", "--reviewer", "eve")[0]
        db_cli(self.url, "keys", "revoke", str(revoked["id"]))
        self.revoked_key = revoked["key"]
        self.port = free_port()
        env = {**os.environ, "CLINICAL_NLP_API_DEVICE": "cpu", "CLINICAL_NLP_API_MAX_NOTE_CHARS": str(MAX_NOTE_CHARS),
               "CLINICAL_NLP_API_MAX_BODY_BYTES": str(MAX_BODY_BYTES), "CLINICAL_NLP_API_LOG_LEVEL": "debug",
               "CLINICAL_NLP_API_MONITOR_INTERVAL_S": str(MONITOR_INTERVAL_S)}
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "api", "--port", str(self.port), "--db-url", self.url],
                                     cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}/api/v1"
        self.ready: dict = {}

    def wait_ready(self, timeout: float = 300.0) -> dict:
        """Poll ``/ready`` until it answers 200; its body."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                r = httpx.get(f"{self.base}/ready", timeout=10)
                last = r.json()
                if r.status_code == 200:
                    return last
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(1)
        raise RuntimeError(f"not ready after {timeout} s: {last}")

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client sending ``key`` (ann's by default)."""
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=120)

    def rows(self, sql: str) -> list[tuple]:
        """Rows of a query on the server's SQLite file (read straight from the file, not through the API)."""
        con = sqlite3.connect(self.db_path)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def stop(self) -> None:
        """Terminate the server (kill it after 20 s)."""
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def stored(api: httpx.Client, text: str = NOTE) -> dict:
    """``POST /predict`` with ``store`` (and the summary); the response, checked to carry the stored ids."""
    r = api.post("/predict", json={"note_text": text, "store": True, "include_summary": True})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["analysis_id"] and all(e["suggestion_id"] for e in out["entities"])
    return out
