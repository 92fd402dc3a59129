"""``flowhook flows validate`` and ``flowhook chat``: check and try flows without a server.

``app`` holds both commands (``validate [PATH]`` and ``chat FLOW``); the same
functions can be registered on other Typer apps.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import orjson
import typer

if TYPE_CHECKING:
    from flowhook.flows import Engine, FlowRegistry

app = typer.Typer(help="Check and try flows.", no_args_is_help=True)

DEFAULT_FLOWS_DIR = Path("flows")


def _settings_flows_dir(ctx: typer.Context) -> Path:
    """The flows dir of the ``flowhook`` settings (``--flows-dir``, env), else ./flows."""
    try:
        from flowhook.cli.context import make_settings

        return make_settings(ctx).flows_dir
    except Exception:
        return DEFAULT_FLOWS_DIR


def _settings(ctx: typer.Context) -> Any:
    try:
        from flowhook.cli.context import make_settings

        return make_settings(ctx)
    except Exception:
        return None


@app.command("validate")
def validate(
    ctx: typer.Context,
    path: Path | None = typer.Argument(
        None, help="A flow file or a directory of flows (default: the flows dir)."
    ),
) -> None:
    """Check flows; print every problem as file:line: message (exit 1 if any)."""
    from flowhook.flows.loader import validate_path

    target = path if path is not None else _settings_flows_dir(ctx)
    problems = validate_path(target)
    for problem in problems:
        typer.echo(problem)
    if problems:
        count = len(problems)
        typer.echo(f"{count} problem{'s' if count != 1 else ''}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{target}: ok", err=True)


def _load(flow: str, flows_dir: Path) -> tuple[FlowRegistry, str]:
    """The registry and flow name for ``flow``: a file (its folder is loaded) or a name."""
    from flowhook.flows.registry import FlowRegistry

    as_path = Path(flow)
    if as_path.suffix in (".yaml", ".yml") and as_path.is_file():
        registry = FlowRegistry.load(as_path.parent)
        resolved = str(as_path)
        for name in registry.names():
            if Path(registry[name].source).resolve() == as_path.resolve():
                return registry, name
        raise typer.BadParameter(f"{resolved} did not load as a flow")
    registry = FlowRegistry.load(flows_dir)
    if flow not in registry:
        known = ", ".join(registry.names())
        raise typer.BadParameter(f"no flow named '{flow}' (known: {known})")
    return registry, flow


@app.command("chat")
def chat(
    ctx: typer.Context,
    flow: str = typer.Argument(..., help="A flow name (from the flows dir) or a flow file."),
    show_context: bool = typer.Option(
        False, "--show-context", help="Print the context (and profile) after each turn."
    ),
    user_id: str = typer.Option("chat-user", "--user-id"),
    locale: str | None = typer.Option(None, "--locale"),
) -> None:
    """Talk to a flow in the terminal: no server, no webhook. /reset, /quit."""
    from flowhook.flows.errors import FlowValidationError
    from flowhook.flows.factory import engine_from_settings

    settings = _settings(ctx)
    flows_dir = getattr(settings, "flows_dir", None) or DEFAULT_FLOWS_DIR
    try:
        registry, name = _load(flow, flows_dir)
    except FlowValidationError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(1) from None
    engine = engine_from_settings(registry, settings)
    code = asyncio.run(run_chat(engine, name, sys.stdin, sys.stdout, show_context, user_id, locale))
    raise typer.Exit(code)


async def run_chat(
    engine: Engine,
    flow: str,
    lines: TextIO,
    out: TextIO,
    show_context: bool = False,
    user_id: str = "chat-user",
    locale: str | None = None,
) -> int:
    """The chat loop: one turn per input line until EOF or ``/quit``."""
    from flowhook.flows.types import SessionState, TurnInput

    interactive = lines.isatty()
    state = SessionState()
    profile: dict[str, Any] = {}
    session_id = f"chat-{uuid.uuid4().hex[:8]}"
    turn_number = 0

    def write(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    if interactive:
        write(f"Chatting with flow '{flow}'. /reset starts over, /quit or Ctrl-D ends.")
    try:
        while True:
            if interactive:
                out.write("you> ")
                out.flush()
            line = await asyncio.to_thread(lines.readline)
            if not line:
                break
            text = line.rstrip("\r\n")
            if text.strip() == "/quit":
                break
            if text.strip() == "/reset":
                state = SessionState()
                write("(session reset)")
                continue
            turn_number += 1
            turn = TurnInput(
                user_id=user_id,
                session_id=session_id,
                trace_id=f"{session_id}-{turn_number}",
                text=text,
                locale=locale,
                profile=profile,
            )
            result = await engine.run_turn(flow, state, turn)
            state = result.state
            if result.profile is not None:
                profile = result.profile
            for output in result.outputs:
                if output.text is not None:
                    write(f"bot> {output.text}")
                if output.data:
                    write(f"bot> data: {orjson.dumps(output.data).decode()}")
            if show_context:
                write(f"  context: {orjson.dumps(state.context).decode()}")
                if profile:
                    write(f"  profile: {orjson.dumps(profile).decode()}")
                if state.handover is not None:
                    write("  (handed over)")
    finally:
        await engine.aclose()
    return 0
