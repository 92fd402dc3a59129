"""The start-up banner names the console's URL (but a worker-only process has none)."""

from __future__ import annotations

from pathlib import Path

from flowhook.cli.serve import banner
from flowhook.config import Settings


def test_the_banner_prints_the_console_url(tmp_path: Path) -> None:
    """`flowhook serve` tells where the console is; role worker serves no console."""
    both = banner(Settings(data_dir=tmp_path, port=9123), "t", True, ["echo"], on_terminal=False)
    assert "console      http://127.0.0.1:9123/ " in both
    worker = Settings(data_dir=tmp_path, port=9123, role="worker")
    assert "console" not in banner(worker, "t", True, ["echo"], on_terminal=False)
