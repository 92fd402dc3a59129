"""The OpenAPI document says what the server does: schemathesis, every check, stateful.

A real ``flowhook serve`` (SQLite, the repository's flows) on a loopback port; the
schemathesis CLI runs every check (status codes, content types, headers, response
schemas, negative and positive data, unsupported methods and ``Allow``, auth,
use-after-free, resource availability) through the examples, coverage, fuzzing and
stateful phases. Any failure fails this test, with schemathesis's report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.processes import free_port, start

REPO = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
ADMIN = "conformance-admin-token"
MAX_EXAMPLES = "50"


def _wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server not ready at {url}")


def test_openapi_document_matches_the_server(tmp_path: Path) -> None:
    """schemathesis (all checks; examples, coverage, fuzzing and stateful phases; 50
    examples an operation) finds no failure against a running server."""
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert schemathesis is not None, "schemathesis is in the dev extras"
    port = free_port()
    env = {
        **os.environ,
        "FLOWHOOK_DATA_DIR": str(tmp_path / "data"),
        "FLOWHOOK_FLOWS_DIR": str(REPO / "flows"),
        "FLOWHOOK_DATABASE_URL": f"sqlite:///{tmp_path / 'flowhook.db'}",
        "FLOWHOOK_PORT": str(port),
        "FLOWHOOK_ADMIN_TOKEN": ADMIN,
        "FLOWHOOK_LOG_LEVEL": "warning",
        "FLOWHOOK_DELIVERY_RETRY_SCHEDULE": "[60]",
        # Generated webhook URLs name arbitrary hosts: nothing may leave this machine.
        "FLOWHOOK_OUTBOUND_PUBLIC": "false",
        "PYTHONUNBUFFERED": "1",
    }
    server = start([sys.executable, "-m", "flowhook", "serve"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base + "/readyz")
        run = subprocess.run(
            [
                schemathesis,
                "--no-color",
                "--config-file",
                str(CONFIG),
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                "20261130",
                "--workers",
                "1",
                "--request-timeout",
                "30",
                "--report-dir",
                str(tmp_path / "report"),
            ],
            capture_output=True,
            cwd=tmp_path,  # its caches (.hypothesis, .schemathesis) stay out of the checkout
            # schemathesis.toml gives the token to the adminToken scheme only, so it
            # knows which requests are authenticated (and tests them without it).
            env={**os.environ, "PYTHONIOENCODING": "utf-8", "FLOWHOOK_TEST_ADMIN_TOKEN": ADMIN},
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        server.stop()
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-20000:] + "\n--- server ---\n" + server.output()[-3000:]
    # Every phase ran and passed; the stateful one followed the document's links.
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in report, report[-5000:]
