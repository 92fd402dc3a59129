"""Which flows touch the user's profile, decided once from the loaded flows.

A turn that neither reads nor writes the profile needs no order against the
user's other sessions: the session runner serialises only the turns of flows
named here (per user), so a constant ``userId`` (a bridge, a voice gateway,
anonymous web chat) costs nothing for flows that never look at ``profile``.

The decision errs on the side of ordering. A flow touches the profile when

- any of its templates or expressions names ``profile`` (the template compiler
  records every variable it compiled; the sandbox allows no other way in),
- a ``set`` node assigns to ``profile``,
- it has a ``code`` node (user functions get the profile and may change it),
- it has a node of a type not built in (its code is unknown here),
- its variables are unknown (a flow not built by the loader), or
- it continues in a flow that touches the profile (``goto``, ``execute_flow``),
  transitively: a turn entered through a flow only ever runs flows it can reach.
"""

from __future__ import annotations

from collections.abc import Mapping

from flowhook.flows.model import LoadedFlow
from flowhook.flows.nodes import (
    EndNode,
    ExecuteFlowNode,
    GotoNode,
    HandoverNode,
    HttpNode,
    IfNode,
    LlmNode,
    Node,
    QuestionNode,
    ResetNode,
    SayNode,
    SetNode,
    SwitchNode,
)

PROFILE = "profile"

# Built-in node types that reach the profile only through templates (checked by name).
_TEMPLATE_ONLY = (
    EndNode,
    ExecuteFlowNode,
    GotoNode,
    HandoverNode,
    HttpNode,
    IfNode,
    LlmNode,
    QuestionNode,
    ResetNode,
    SayNode,
    SwitchNode,
)


def node_touches_profile(node: Node) -> bool:
    if isinstance(node, SetNode):
        return bool(node.profile_assignments)
    return type(node) not in _TEMPLATE_ONLY


def flow_touches_profile(flow: LoadedFlow) -> bool:
    """Whether the flow's own nodes may read or write the profile (not the flows it reaches)."""
    if flow.template_names is None or PROFILE in flow.template_names:
        return True
    return any(node_touches_profile(node) for node in flow.nodes.values())


def profile_flows(flows: Mapping[str, LoadedFlow]) -> frozenset[str]:
    """The names of the flows whose turns may read or write the user's profile."""
    reaches: dict[str, set[str]] = {
        name: {ref.flow for node in flow.nodes.values() for ref in node.flow_refs()}
        for name, flow in flows.items()
    }
    touching = {name for name, flow in flows.items() if flow_touches_profile(flow)}
    changed = True
    while changed:  # a fixpoint over the reference graph (cycles are allowed)
        changed = False
        for name, targets in reaches.items():
            if name not in touching and any(t in touching or t not in flows for t in targets):
                touching.add(name)
                changed = True
    return frozenset(touching)
