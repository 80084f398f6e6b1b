"""Shared fixtures: the real default engine on CPU, the shared data folder (skip when absent), the API server."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SHARED_DATA = Path(os.environ.get("CLINICAL_DATA_DIR", REPO.parent / "shared" / "data"))

# Tests run on the committed default models: a retrained version activated on a developer's machine must not leak
# in (load_pipeline follows the registry's active version). Subprocesses inherit this too.
os.environ["CLINICAL_NLP_REGISTRY_DIR"] = tempfile.mkdtemp(prefix="clinical-nlp-test-registry-")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared public datasets; tests using this skip cleanly when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def pipeline():
    """The real engine with the committed default models, on CPU (ICD index cached as configured)."""
    from engine import load_pipeline

    return load_pipeline(device="cpu")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh, migrated feedback store: a real SQLite file, or a new database on a throwaway PostgreSQL server
    (skipped with the reason when PostgreSQL cannot be started here)."""
    from support.db_testing import postgres_server

    from db.session import dispose_engines, init_db

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    else:
        server, reason = postgres_server()
        if server is None:
            pytest.skip(f"PostgreSQL variant skipped: {reason}")
        url = server.create_database()
    init_db(url)
    yield url
    dispose_engines()


@pytest.fixture()
def app_db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, migrated SQLite feedback store that the app under test opens: ``$CLINICAL_NLP_DB_URL`` names it for
    the test (Streamlit's AppTest runs the app in this process)."""
    from db.session import init_db

    url = f"sqlite:///{tmp_path / 'feedback.sqlite'}"
    monkeypatch.setenv("CLINICAL_NLP_DB_URL", url)
    init_db(url)
    return url


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory):
    """One real ``python -m api`` process for the API test files (``tests/support/api_server.py``)."""
    from support.api_server import Server

    srv = Server(tmp_path_factory.mktemp("api"))
    try:
        srv.ready = srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def api(api_server):
    """An HTTP client of :func:`api_server` with ann's key."""
    with api_server.client() as c:
        yield c


@pytest.fixture(scope="session")
def deid():
    """The real de-identification stage on the shipped rules and tagger (stateless, so one for the session)."""
    from engine.deid.stage import Deidentifier
    from engine.settings import Settings

    return Deidentifier(Settings())
