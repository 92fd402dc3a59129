"""The flow engine's errors, both subclasses of ``flowhook.errors.FlowError``."""

from __future__ import annotations

from flowhook.errors import FlowError


class FlowValidationError(FlowError):
    """Flow files with problems; ``problems`` lists each as ``file:line: message``."""

    def __init__(self, problems: list[str]) -> None:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid flows ({count}):\n" + "\n".join(problems), problems=problems)
        self.problems = problems


class FlowRuntimeError(FlowError):
    """A flow failed while running a turn (e.g. a value that cannot be stored as JSON)."""
