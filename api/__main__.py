"""``python -m api``: serve the REST API with uvicorn (``make api``); host, port and workers from settings.

Examples::

    python -m api                                  # CLINICAL_NLP_API_HOST/PORT/WORKERS or 127.0.0.1:8000, 1
    python -m api --host 0.0.0.0 --port 8080 --workers 2
"""

from __future__ import annotations

import argparse
import os

from api.settings import ENV_PREFIX, ApiSettings


def main(argv: list[str] | None = None) -> int:
    """Parse the overrides, export them for the worker processes, and run uvicorn."""
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__.splitlines()[0])
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int, help="processes; each loads its own pipeline")
    parser.add_argument("--db-url", help="the feedback store (default: CLINICAL_NLP_API_DB_URL / CLINICAL_NLP_DB_URL)")
    args = parser.parse_args(argv)
    overrides = {"host": args.host, "port": args.port, "workers": args.workers, "db_url": args.db_url}
    for name, value in overrides.items():
        if value is not None:  # uvicorn's worker processes build the app from the environment
            os.environ[ENV_PREFIX + name.upper()] = str(value)
    settings = ApiSettings.from_env()
    import logging

    import uvicorn

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # uvicorn's own access log is off: it prints query strings; ours (api.access) prints the route template only.
    uvicorn.run("api.app:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_level=settings.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
