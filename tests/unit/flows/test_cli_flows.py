"""``flows validate`` and ``chat`` from the command line, driven through piped stdin."""

from __future__ import annotations

import io
from pathlib import Path

from typer.testing import CliRunner

from flowhook.cli.flows import app, run_chat
from flowhook.flows import Engine, FlowRegistry

from .helpers import write_flow

REPO = Path(__file__).resolve().parents[3]


def test_validate_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    """validate prints each problem as file:line: message and exits with 1."""
    write_flow(tmp_path, "nodes:\n  a: {type: sya}\n  b: {type: say, txt: hi}\n")
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    file = tmp_path / "test.yaml"
    assert result.stdout.splitlines() == [
        f"{file}:2: node 'a': unknown node type 'sya' (known: code, end, execute_flow, goto, "
        "handover, http, if, llm, question, reset, say, set, switch)",
        f"{file}:3: node 'b': needs 'text' and/or 'data'",
        f"{file}:3: node 'b': unknown field 'txt'",
    ]


def test_validate_ok(tmp_path: Path) -> None:
    """validate exits 0 for valid flows (the repository's flows and examples)."""
    runner = CliRunner()
    assert runner.invoke(app, ["validate", str(REPO / "flows")]).exit_code == 0
    assert runner.invoke(app, ["validate", str(REPO / "examples")]).exit_code == 0
    missing = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert missing.exit_code == 1


def test_chat_with_piped_stdin_shows_outputs_and_context() -> None:
    """chat runs a flow file turn by turn from stdin, printing outputs and the context."""
    result = CliRunner().invoke(
        app,
        ["chat", str(REPO / "flows" / "order-help.yaml"), "--show-context"],
        input="Hello, I need help with my order\nIt's 12345\nyes please\n",
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "bot> I'd be happy to help. Could you please provide your order number?"
    assert lines[1] == "  context: {}"
    assert "bot> Thanks! I found order 12345." in lines[2]
    assert lines[-2] == ('bot> data: {"action":"send_tracking","orderNumber":12345}')
    assert lines[-1] == (
        '  context: {"orderNumber":12345,"sendTracking":true,"trackingSentFor":12345}'
    )


def test_chat_unknown_flow_is_an_error(tmp_path: Path) -> None:
    """chat with an unknown flow name fails with a usage error naming the known flows."""
    result = CliRunner().invoke(app, ["chat", "nope"], env={"FLOWHOOK_FLOWS_DIR": str(tmp_path)})
    assert result.exit_code == 2
    assert "no flow named 'nope'" in result.output


async def test_chat_loop_reset_and_quit(tmp_path: Path) -> None:
    """/reset forgets the session, /quit ends the loop; the profile survives a reset."""
    write_flow(
        tmp_path,
        """
        nodes:
          s: {type: set, context: {n: "{{ (context.n or 0) + 1 }}"},
              profile: {seen: true}, next: t}
          t: {type: say, text: "n={{ context.n }} seen={{ profile.seen }}"}
        """,
    )
    engine = Engine(FlowRegistry.load(tmp_path))
    out = io.StringIO()
    code = await run_chat(engine, "test", io.StringIO("a\nb\n/reset\nc\n/quit\nd\n"), out)
    assert code == 0
    assert out.getvalue().splitlines() == [
        "bot> n=1 seen=True",
        "bot> n=2 seen=True",
        "(session reset)",
        "bot> n=1 seen=True",
    ]
