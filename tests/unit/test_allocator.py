"""The glibc malloc settings applied at server start."""

from __future__ import annotations

import os
import sys

import pytest

from flowhook.allocator import tune_allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_applied_on_glibc_unless_the_environment_sets_malloc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On Linux with glibc the settings are applied; an operator's ``MALLOC_*_`` variable
    (or ``GLIBC_TUNABLES``) leaves the allocator as the environment configured it."""
    for name in [k for k in os.environ if k.startswith("MALLOC_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert tune_allocator() is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert tune_allocator() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")
    assert tune_allocator() is False
