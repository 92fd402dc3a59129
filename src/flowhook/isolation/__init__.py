"""Running flow authors' Python (code nodes, transformers) in worker processes.

``CodeWorkers.run_isolated(ref, args, timeout=..., memory=...)`` calls a function in a
worker process from a small pool and awaits its JSON result without blocking the
event loop. A call that runs past its timeout has its worker killed (the code really
stops); each worker runs under an address-space limit (``resource.setrlimit``).
"""

from flowhook.isolation.pool import (
    CodeCallFailed,
    CodeRefused,
    CodeTimeout,
    CodeWorkers,
    IsolationLimits,
)

__all__ = ["CodeCallFailed", "CodeRefused", "CodeTimeout", "CodeWorkers", "IsolationLimits"]
