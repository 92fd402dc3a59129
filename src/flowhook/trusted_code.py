"""Importing the user's own Python functions (code nodes, transformers): trusted code.

A function is named ``package.module:function`` (imported normally) or
``file.py:function`` (a file next to the flow, or in a given directory). Such code
runs inside the server with its full rights: only name code you trust.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def import_function(spec: str, flow_file: str | None) -> Callable[..., Any]:
    """Resolve ``module:function`` or ``file.py:function``; raises ``ValueError``."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError("'function' must look like 'package.module:function' or 'file.py:name'")
    try:
        if module_name.endswith(".py"):
            base = Path(flow_file).parent if flow_file else Path.cwd()
            path = (base / module_name).resolve()
            unique = "flowhook_code_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]  # noqa: S324
            module = sys.modules.get(unique)
            if module is None:
                loader_spec = importlib.util.spec_from_file_location(unique, path)
                if loader_spec is None or loader_spec.loader is None or not path.is_file():
                    raise ValueError(f"cannot load '{module_name}' (looked at {path})")
                module = importlib.util.module_from_spec(loader_spec)
                loader_spec.loader.exec_module(module)
                sys.modules[unique] = module
        else:
            module = importlib.import_module(module_name)
    except ValueError:
        raise
    except Exception as exc:  # user code: any import-time failure is a load problem
        raise ValueError(f"cannot import '{module_name}': {type(exc).__name__}: {exc}") from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"'{module_name}' has no function '{attribute}'")
    return function  # type: ignore[no-any-return]
