"""Flows: the dialogue graphs that turn a user's input into bot outputs.

``FlowRegistry.load(dir)`` reads and validates the flow files (plus the built-in
flows), ``Engine(registry)`` runs turns, ``validate_path`` checks files without
loading them into an engine. The format is described in docs/flows.md.
"""

from flowhook.flows.engine import DEFAULT_ERROR_TEXT, DEFAULT_MAX_STEPS, Engine
from flowhook.flows.errors import FlowRuntimeError, FlowValidationError
from flowhook.flows.loader import validate_path
from flowhook.flows.model import LoadedFlow
from flowhook.flows.registry import FlowRegistry
from flowhook.flows.types import (
    Flow,
    FlowEngine,
    Output,
    SessionState,
    TurnInput,
    TurnResult,
)

__all__ = [
    "DEFAULT_ERROR_TEXT",
    "DEFAULT_MAX_STEPS",
    "Engine",
    "Flow",
    "FlowEngine",
    "FlowRegistry",
    "FlowRuntimeError",
    "FlowValidationError",
    "LoadedFlow",
    "Output",
    "SessionState",
    "TurnInput",
    "TurnResult",
    "validate_path",
]
