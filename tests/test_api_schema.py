"""The HTTP API against its own OpenAPI schema: every route describes the body of each of its
answers, and schemathesis, fuzzing a live ``pixelmill serve`` (uvicorn on a real port, the
embedded default, one worker) through that schema, finds no 5xx and no answer that breaks it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_service import free_port
from test_service_reliability import processes, serve  # noqa: F401  (a fixture)

from pixelmill.config import Settings
from pixelmill.service.app import create_app


def test_every_route_describes_every_answer(tmp_path) -> None:
    schema = create_app(Settings(data_dir=str(tmp_path / "data"))).openapi()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status == "304":
                    continue  # no body
                assert answer.get("content"), f"{method.upper()} {path} {status}: no body schema"
                assert all(media.get("schema") for media in answer["content"].values()), (
                    f"{method.upper()} {path} {status}")


@pytest.mark.timeout(300)
def test_schemathesis_finds_no_server_error_and_no_answer_off_schema(tmp_path,
                                                                     processes) -> None:  # noqa: F811
    _, base = serve(processes, "serve", free_port(), tmp_path / "data", "--workers", "1")
    deadline = time.monotonic() + 60
    while httpx.get(f"{base}/readyz").status_code != 200:  # a 503 there would be a server error
        assert time.monotonic() < deadline
        time.sleep(0.2)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("st")), "run", f"{base}/openapi.json",
         "--checks", "not_a_server_error,response_schema_conformance", "--max-examples", "20",
         "--workers", "1", "--seed", "1", "--warnings", "off"],
        cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout and "failed" not in done.stdout.split("Test cases:")[-1]
