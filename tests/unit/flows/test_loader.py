"""Loading and validating flow files: every problem reported once, as file:line: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowhook.errors import FlowError
from flowhook.flows import FlowRegistry, FlowValidationError, validate_path

from .helpers import write_flow

BROKEN = """
name: broken
start: greet
colour: blue
nodes:
  greet:
    type: say
    txt: hello
    next: ask
  ask:
    type: question
    text: "Order {{ context.order | }}"
    answer: regex
    pattern: "[a-"
    max_reprompts: 2
    next: chek
  check:
    type: if
    condition: "{{ context.x }}"
    then: greet
  lonely:
    type: sya
  orphan:
    type: say
    text: "hi {{ inputs.text }}"
  multi:
    type: say
    text: |
      line one
      {% if %}
  setter:
    type: set
    context: {items: 1, ok: "{{ 1 + }}"}
  yes: {type: end}
  greet: {type: end}
"""


def problems_of(tmp_path: Path, source: str, file_name: str = "test.yaml") -> list[str]:
    """The problems of one flow file, with the directory prefix removed."""
    write_flow(tmp_path, source, file_name)
    return [problem.removeprefix(f"{tmp_path}/") for problem in validate_path(tmp_path)]


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    """One validation run lists every problem of a file, in line order, with exact lines:
    a node of unknown type does not hide the nodes the start node never reaches."""
    assert problems_of(tmp_path, BROKEN) == [
        "test.yaml:3: unknown field 'colour'",
        "test.yaml:5: node 'greet': needs 'text' and/or 'data'",
        "test.yaml:7: node 'greet': unknown field 'txt'",
        "test.yaml:11: node 'ask': 'text': template syntax error: "
        "expected token 'name', got 'end of print statement'",
        "test.yaml:13: node 'ask': 'pattern' is not a valid regular expression: "
        "unterminated character set at position 0",
        "test.yaml:14: node 'ask': 'max_reprompts' needs a 'fallback' node to go to",
        "test.yaml:15: node 'ask': next 'chek' does not exist (did you mean 'check'?)",
        "test.yaml:16: node 'check' is unreachable from the start node 'greet'",
        "test.yaml:18: node 'check': 'condition': write the expression without {{ }} around it",
        "test.yaml:20: node 'lonely' is unreachable from the start node 'greet'",
        "test.yaml:21: node 'lonely': unknown node type 'sya' (known: code, end, "
        "execute_flow, goto, handover, http, if, llm, question, reset, say, set, switch)",
        "test.yaml:22: node 'orphan' is unreachable from the start node 'greet'",
        "test.yaml:24: node 'orphan': 'text': unknown template variable 'inputs' "
        "(templates see: input, context, profile, config)",
        "test.yaml:25: node 'multi' is unreachable from the start node 'greet'",
        "test.yaml:29: node 'multi': 'text': template syntax error: "
        "Expected an expression, got 'end of statement block'",
        "test.yaml:30: node 'setter' is unreachable from the start node 'greet'",
        "test.yaml:32: node 'setter': context: context key 'items' is the name of a dict "
        "method, so context.items would not read it; choose another name",
        "test.yaml:32: node 'setter': context: 'ok': expression syntax error: "
        "unexpected 'end of template'",
        "test.yaml:33: nodes: keys must be strings "
        "(quote it: YAML reads yes/no/on/off/true/false as booleans)",
        "test.yaml:34: nodes: duplicate key 'greet'",
    ]


def test_an_unclosed_quote_is_reported_where_it_opens(tmp_path: Path) -> None:
    """A YAML syntax error that only shows at the end of the file (an unclosed quote) is
    reported at the line where the quote opens, saying what was being read."""
    source = 'name: q\nnodes:\n  x:\n    type: say\n    text: "open\n\n\n'
    assert problems_of(tmp_path, source) == [
        "test.yaml:5: invalid YAML: found unexpected end of stream (while scanning a quoted scalar)"
    ]


def test_load_raises_flow_error_with_all_problems(tmp_path: Path) -> None:
    """``FlowRegistry.load`` raises a ``FlowError`` whose message and ``.problems`` list them all."""
    write_flow(tmp_path, BROKEN)
    with pytest.raises(FlowValidationError) as caught:
        FlowRegistry.load(tmp_path)
    error = caught.value
    assert isinstance(error, FlowError)
    assert len(error.problems) == 20
    assert str(error) == "invalid flows (20 problems):\n" + "\n".join(error.problems)
    assert error.to_json()["error"]["problems"] == error.problems


def test_dangling_references_of_every_field(tmp_path: Path) -> None:
    """Dangling ``start``, ``next``, ``then``, ``else`` and ``fallback`` are each reported."""
    source = """
    start: begin
    nodes:
      a: {type: if, condition: "true", then: b1, else: c1}
      q:
        type: question
        text: "?"
        max_reprompts: 1
        fallback: gone
        next: a
    """
    assert problems_of(tmp_path, source) == [
        "test.yaml:1: start node 'begin' does not exist",
        "test.yaml:3: node 'a': then 'b1' does not exist",
        "test.yaml:3: node 'a': else 'c1' does not exist",
        "test.yaml:8: node 'q': fallback 'gone' does not exist",
    ]


def test_unreachable_nodes_are_errors(tmp_path: Path) -> None:
    """Nodes no path from the start node reaches are reported at their own line."""
    source = """
    nodes:
      start: {type: say, text: hi, next: ask}
      ask: {type: question, text: "?", max_reprompts: 1, fallback: sorry}
      sorry: {type: end}
      island: {type: say, text: nobody, next: island2}
      island2: {type: end}
    """
    assert problems_of(tmp_path, source) == [
        "test.yaml:5: node 'island' is unreachable from the start node 'start'",
        "test.yaml:6: node 'island2' is unreachable from the start node 'start'",
    ]


def test_missing_required_fields(tmp_path: Path) -> None:
    """Missing required fields are reported at the node's line."""
    source = """
    nodes:
      a:
        type: if
        then: b
      b:
        type: set
        next: c
      c:
        type: question
        answer: choice
      d: {}
    """
    assert problems_of(tmp_path, source) == [
        "test.yaml:2: node 'a': missing required field 'condition'",
        "test.yaml:5: node 'b': needs 'context' and/or 'profile'",
        "test.yaml:8: node 'c': needs 'text' and/or 'data'",
        "test.yaml:8: node 'c': missing required field 'choices'",
        "test.yaml:11: node 'd': missing required field 'type'",
        "test.yaml:11: node 'd' is unreachable from the start node 'a'",
    ]


def test_field_type_problems(tmp_path: Path) -> None:
    """Wrongly typed fields are reported at the field's line, with a hint for YAML booleans."""
    source = """
    nodes:
      a:
        type: question
        text: 5
        data: [1, 2]
        answer: choice
        choices: [yes, no]
        max_reprompts: -1
        fallback: b
        store: 7
      b: {type: question, text: "?", answer: colour, fallback: a}
    """
    assert problems_of(tmp_path, source) == [
        "test.yaml:4: node 'a': 'text' must be a string",
        "test.yaml:5: node 'a': 'data' must be a mapping or a single {{ expression }}",
        "test.yaml:7: node 'a': 'choices' must be a list of strings "
        "(quote it: YAML reads yes/no/on/off/true/false as booleans)",
        "test.yaml:8: node 'a': 'max_reprompts' must be a whole number >= 0",
        "test.yaml:10: node 'a': 'store' must be a string",
        "test.yaml:11: node 'b': unknown answer type 'colour' "
        "(known: choice, date, email, intent, number, regex, text, yes_no)",
        "test.yaml:11: node 'b': 'fallback' is only used with 'max_reprompts'",
    ]


def test_yaml_syntax_error_line(tmp_path: Path) -> None:
    """A YAML syntax error is reported at the line the parser stopped."""
    source = "nodes:\n  a: {type: say, text: hi}\n  b: [unclosed\n  c: {type: end}\n"
    assert problems_of(tmp_path, source) == [
        "test.yaml:4: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence)"
    ]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("", "test.yaml:1: the file is empty; a flow needs 'nodes'"),
        ("- a\n- b\n", "test.yaml:1: a flow file must be a mapping with 'nodes'"),
        ("name: x\n", "test.yaml:1: missing required field 'nodes'"),
        ("nodes: {}\n", "test.yaml:1: nodes: a flow needs at least one node"),
        (
            "name: bad name\nnodes: {a: {type: end}}\n",
            "test.yaml:1: flow name 'bad name' may only use letters, digits, '_', '.', '-'",
        ),
    ],
)
def test_file_level_problems(tmp_path: Path, source: str, problem: str) -> None:
    """Empty files, non-mapping files, missing or empty nodes and bad names are reported."""
    assert problems_of(tmp_path, source) == [problem]


def test_duplicate_flow_names(tmp_path: Path) -> None:
    """Two files defining the same flow name: the later file's name line is reported."""
    write_flow(tmp_path, "nodes:\n  a: {type: end}\n", "a.yaml")
    write_flow(tmp_path, "description: copy\nname: a\nnodes:\n  a: {type: end}\n", "b.yml")
    assert validate_path(tmp_path) == [
        f"{tmp_path}/b.yml:2: flow name 'a' is already used by {tmp_path}/a.yaml"
    ]


def test_builtin_names_are_taken(tmp_path: Path) -> None:
    """A flow file cannot reuse the name of a built-in flow."""
    assert problems_of(tmp_path, "nodes:\n  a: {type: end}\n", "echo.yaml") == [
        "echo.yaml:1: flow name 'echo' is already used by <builtin>/echo.yaml"
    ]


def test_template_error_line_inside_block_scalar(tmp_path: Path) -> None:
    """A syntax error on the third line of a ``|`` block is reported at that file line."""
    source = """
    nodes:
      a:
        type: say
        text: |
          Hello
          there
          {{ input.text + }}
    """
    assert problems_of(tmp_path, source) == [
        "test.yaml:7: node 'a': 'text': template syntax error: unexpected 'end of print statement'"
    ]


def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    """A file that is not UTF-8 is reported, not raised."""
    (tmp_path / "bad.yaml").write_bytes(b"nodes: \xff\xfe\n")
    problems = validate_path(tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path}/bad.yaml:1: cannot read the file: ")


def test_validate_missing_path() -> None:
    """Validating a path that does not exist says so."""
    assert validate_path(Path("/no/such/flows")) == ["/no/such/flows: no such file or directory"]


def test_validate_single_file(tmp_path: Path) -> None:
    """``validate_path`` accepts one file as well as a directory."""
    path = write_flow(tmp_path, "nodes:\n  a: {type: say}\n")
    assert validate_path(path) == [f"{path}:2: node 'a': needs 'text' and/or 'data'"]


def test_registry_defaults_and_directory(tmp_path: Path) -> None:
    """Name defaults to the file stem, start to the first node; other files are ignored."""
    write_flow(
        tmp_path,
        "description: Hi.\nnodes:\n  b: {type: say, text: x, next: a}\n  a: {type: end}\n",
        "x.yml",
    )
    (tmp_path / "notes.txt").write_text("not a flow")
    registry = FlowRegistry.load(tmp_path)
    assert registry.names() == ["echo", "x"]
    flow = registry.get("x")
    assert flow is not None
    assert (flow.name, flow.start, flow.description, list(flow.nodes)) == (
        "x",
        "b",
        "Hi.",
        ["b", "a"],
    )
    assert registry.get("missing") is None


def test_registry_without_directory_has_builtins_only(tmp_path: Path) -> None:
    """A missing or ``None`` flows directory loads only the built-in flows."""
    assert FlowRegistry.load(None).names() == ["echo"]
    assert FlowRegistry.load(tmp_path / "absent").names() == ["echo"]


def test_yaml_merge_keys_are_supported(tmp_path: Path) -> None:
    """Anchors and ``<<`` merge keys can share fields between nodes."""
    source = """
    nodes:
      a: &polite {type: say, text: "Hello", next: b}
      b: {<<: *polite, text: "Again", next: c}
      c: {type: end}
    """
    assert problems_of(tmp_path, source) == []


def test_bad_merge_key_is_a_problem(tmp_path: Path) -> None:
    """A ``<<`` merge of something that is not a mapping is reported, not raised."""
    source = """
    nodes:
      a: {<<: 5, type: end}
    """
    assert problems_of(tmp_path, source) == [
        "test.yaml:2: node 'a': bad merge key '<<': "
        "expected a mapping or list of mappings for merging, but found scalar"
    ]
