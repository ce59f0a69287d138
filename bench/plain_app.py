"""The yardstick of the HTTP benchmarks: a plain FastAPI app, as a user would write one.

One ``@app.post`` returning a small dict, nothing else: no middleware, no database. It
is served by ``uvicorn.run`` with the same settings as `ctplhub serve` (one process,
uvloop and httptools, no access log), on the same machine in the same run, so the ratio
of the two says what CTPL Hub costs on top of the framework a user compares with.

    .venv/bin/python bench/plain_app.py --port 8101
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.post("/v1/coverage/query")
async def query() -> dict[str, Any]:
    return {"plate": "苏E·12345", "covered": True, "status_class": "COVERED", "caveats": []}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    # The keyword arguments of `ctplhub serve` (src/ctplhub/cli/main.py), but the factory.
    uvicorn.run(
        "plain_app:app",
        app_dir=str(Path(__file__).parent),
        host="127.0.0.1",
        port=args.port,
        workers=1,
        access_log=False,
        log_config=None,
    )
