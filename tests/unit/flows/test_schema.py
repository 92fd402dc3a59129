"""The shipped JSON Schema describes the same format the loader reads."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from flowhook.flows.answers import ANSWER_TYPES
from flowhook.flows.nodes import DEFAULT_NODE_TYPES

REPO = Path(__file__).resolve().parents[3]


def load_schema() -> dict[str, Any]:
    text = resources.files("flowhook.flows").joinpath("schema/flow.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def test_schema_names_every_node_type_and_answer_type() -> None:
    """The schema's node types and answer types are exactly the engine's."""
    schema = load_schema()
    defs = schema["$defs"]
    assert sorted(defs["node"]["properties"]["type"]["enum"]) == DEFAULT_NODE_TYPES.names()
    for name in DEFAULT_NODE_TYPES.names():
        assert defs[name]["properties"]["type"] == {"const": name}
    assert sorted(defs["question"]["properties"]["answer"]["enum"]) == sorted(ANSWER_TYPES)


def test_every_field_of_the_example_flows_is_in_the_schema() -> None:
    """Top-level fields and node fields used by the shipped flows are known to the schema
    (a schema with ``additionalProperties: false`` would otherwise flag valid files)."""
    schema = load_schema()
    files = [*sorted((REPO / "examples").glob("*.yaml")), REPO / "flows" / "order-help.yaml"]
    assert len(files) >= 4
    for file in files:
        flow = yaml.safe_load(file.read_text())
        assert set(flow) <= set(schema["properties"]), file
        for node_id, node in flow["nodes"].items():
            known = schema["$defs"][node["type"]]["properties"]
            assert set(node) <= set(known), f"{file}: {node_id}"
