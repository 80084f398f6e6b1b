"""Run the real app in a subprocess on a free port (browser tests and the app benchmark share this)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
"""Flags for Debian's chromium in a container (no sandbox, no GPU, no background traffic)."""


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    """Wait until Streamlit's health endpoint answers.

    Raises:
        RuntimeError: The server exited.
        TimeoutError: It did not answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout:.0f} s")


@contextlib.contextmanager
def run_app(db_url: str, log_path: Path, device: str = "cpu") -> Iterator[str]:
    """Serve ``app.py`` with ``db_url`` as its feedback store; yields the base URL and stops the server after.

    Args:
        db_url: SQLAlchemy URL of the feedback store (``$CLINICAL_NLP_DB_URL`` for the app).
        log_path: Where the server's output goes.
        device: Engine device (``$CLINICAL_NLP_DEVICE`` for the app).
    """
    port = free_port()
    env = dict(os.environ, CLINICAL_NLP_DB_URL=db_url, CLINICAL_NLP_DEVICE=device)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "streamlit"), "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, proc, 60)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
"""Where a failing browser test leaves its page screenshot (git-ignored)."""


@contextlib.contextmanager
def screenshot_on_failure(pg, name: str) -> Iterator[None]:
    """Save a full-page screenshot of ``pg`` under :data:`ARTIFACTS` when the block raises, then re-raise."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        raise


def settle(pg, timeout_ms: int = 180_000) -> None:
    """Wait until the app's script is not running, so the next locator finds the settled page, not one a rerun is
    about to replace (a click on a button that a rerun detaches waits out its timeout under load)."""
    pg.wait_for_timeout(250)  # the widget event reaches the server and flips the state to running
    pg.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=stApp]');"
        " return !!a && !['running', 'rerunRequested'].includes(a.getAttribute('data-test-script-state')); }",
        timeout=timeout_ms,
    )


def click_key(pg, key: str, attempts: int = 3) -> None:
    """Click the button Streamlit rendered for widget ``key`` (its container has class ``st-key-<key>``), once the
    page has settled; a click that times out because a rerun replaced the button is tried again on the new page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(attempts):
        settle(pg)
        try:
            pg.locator(f".st-key-{key} button:visible").first.click(timeout=20_000)
            return
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise


def accept_first_reject_second(pg) -> tuple[int, str, str]:
    """On the Analyze page's review panel, accept the first entity-with-codes' first code and reject its second;
    waits for each decision's confirmation. Returns the entity's position and the two codes."""
    import re

    acc = pg.locator("[class*='st-key-code-acc-']").first
    acc.wait_for()
    key = re.search(r"st-key-code-acc-(\d+)-0", acc.get_attribute("class") or "")
    assert key, "the review panel shows no code to accept"
    pos = int(key.group(1))
    code0 = pg.locator(f".st-key-code-row-{pos}-0 code").first.inner_text()
    code1 = pg.locator(f".st-key-code-row-{pos}-1 code").first.inner_text()
    click_key(pg, f"code-acc-{pos}-0")
    pg.get_by_text(f"Recorded: accept code {code0}").wait_for()
    click_key(pg, f"code-rej-{pos}-1")
    pg.get_by_text(f"Recorded: reject code {code1}").wait_for()
    return pos, code0, code1
