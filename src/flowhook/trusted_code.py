"""Naming flow authors' Python functions (code nodes, transformers), without running them.

A function is named ``file.py:function``: a file in the flows dir (next to the flow
file, or in the flows dir for transformers). The name is resolved here *statically*:
the file must lie inside the flows dir once every ``..`` and symlink is resolved, and
must define the function at its top level (read with ``ast``, never imported in the
server). The code itself only ever runs in a worker process (``flowhook.isolation``).

``package.module:function`` names a module from ``sys.path`` (the standard library,
installed packages): refused unless the server setting ``code_allow_modules`` is on,
since any importable function (``os:system``, ``builtins:eval``) would then be one
name away.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODULES_SETTING = "code_allow_modules (env FLOWHOOK_CODE_ALLOW_MODULES)"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True, slots=True)
class CodeRef:
    """A resolved function name: a file in the flows dir, or (if allowed) a module."""

    spec: str
    function: str
    path: str | None = None
    module: str | None = None

    def request(self) -> dict[str, Any]:
        """What a worker needs to load it."""
        return {"path": self.path, "module": self.module, "function": self.function}


def resolve_code_ref(spec: str, base_dir: Path | None, *, allow_modules: bool = True) -> CodeRef:
    """Resolve ``file.py:function`` inside ``base_dir`` or ``module:function``.

    Raises ``ValueError`` with a message for the flow author or operator. Module names
    are only checked to exist (their top-level package, without importing it); with
    ``allow_modules`` False they are refused outright.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(
            "'function' must look like 'file.py:function' or 'package.module:function'"
        )
    if not _IDENTIFIER.fullmatch(attribute):
        raise ValueError(f"'{attribute}' is not a function name")
    if module_name.endswith(".py"):
        return _file_ref(spec, module_name, attribute, base_dir)
    if not _MODULE.fullmatch(module_name):
        raise ValueError(f"'{module_name}' is neither a file.py in the flows dir nor a module name")
    if not allow_modules:
        raise ValueError(
            f"'{module_name}' is a module from sys.path: only files in the flows dir load "
            f"as code unless the server setting {MODULES_SETTING} is on"
        )
    try:
        found = importlib.util.find_spec(module_name.split(".", 1)[0])
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ValueError(f"cannot import '{module_name}': no such module")
    return CodeRef(spec, attribute, module=module_name)


def _file_ref(spec: str, file_name: str, attribute: str, base_dir: Path | None) -> CodeRef:
    if base_dir is None:
        raise ValueError(
            f"cannot load '{file_name}': only flow files in a flows dir name code files"
        )
    root = base_dir.resolve()
    path = (root / file_name).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"'{file_name}' is outside the flows dir {root}: code must live in it")
    if not path.is_file():
        raise ValueError(f"cannot load '{file_name}' (looked at {path})")
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError) as exc:
        raise ValueError(f"cannot load '{file_name}': {type(exc).__name__}: {exc}") from None
    if attribute not in _top_level_names(tree):
        raise ValueError(f"'{file_name}' has no function '{attribute}'")
    return CodeRef(spec, attribute, path=str(path))


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names a module defines at its top level (functions, classes, assignments, imports)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names
