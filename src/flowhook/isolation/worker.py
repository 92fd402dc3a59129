"""A code worker: ``python -m flowhook.isolation.worker <memory bytes>``.

It limits its own address space first, keeps its real stdout for answers (what the
user's code prints goes to stderr), then answers one request at a time, forever.
The server kills it when a call runs past its timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import inspect
import os
import resource
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

import orjson

from flowhook.isolation.protocol import HEADER, encode, frame_length

_functions: dict[tuple[str, str, str], Callable[..., Any]] = {}


def limit_memory(limit_bytes: int) -> None:
    if limit_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def load(request: dict[str, Any]) -> Callable[..., Any]:
    path, module_name, name = (
        request.get("path") or "",
        request.get("module") or "",
        request["function"],
    )
    key = (path, module_name, name)
    function = _functions.get(key)
    if function is not None:
        return function
    if path:
        unique = "flowhook_code_" + hashlib.sha1(path.encode()).hexdigest()[:12]  # noqa: S324
        module = sys.modules.get(unique)
        if module is None:
            spec = importlib.util.spec_from_file_location(unique, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {os.path.basename(path)}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[unique] = module
    else:
        module = importlib.import_module(module_name)
    function = getattr(module, name, None)
    if not callable(function):
        raise AttributeError(f"no function {name!r}")
    _functions[key] = function
    return function  # type: ignore[no-any-return]


def answer(request: dict[str, Any], loop: asyncio.AbstractEventLoop) -> bytes:
    try:
        result = load(request)(*request.get("args", ()))
        if inspect.isawaitable(result):
            result = loop.run_until_complete(_awaited(result))
        return encode({"ok": result})
    except MemoryError:
        return encode({"error": "MemoryError: the code went over its memory limit", "fatal": True})
    except Exception as exc:  # the user's code: any failure is its answer
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, TypeError) and "serializ" in str(exc):
            text = f"TypeError: the function returned a value that is not JSON data ({exc})"
        return encode({"error": text[:2000]})


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = stream.read(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def main() -> None:
    limit_memory(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # print() in the user's code must not corrupt the answers
    requests = sys.stdin.buffer
    loop = asyncio.new_event_loop()
    answers.write(encode({"ready": True}))  # calls are timed from here, not from exec()
    while True:
        header = read_exactly(requests, HEADER.size)
        if header is None:
            return  # the server closed the pipe: exit quietly
        length = frame_length(header)
        body = read_exactly(requests, length or 0)
        if body is None:
            return
        reply = answer(orjson.loads(body), loop)
        answers.write(reply)
        if b'"fatal":true' in reply:
            return


if __name__ == "__main__":
    main()
