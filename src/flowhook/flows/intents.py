"""The NLU part of a flow file: ``intents``, ``slots`` and ``intent_threshold``.

```yaml
intents:
  order_status:
    examples: ["where is my order", "track my package"]
    slots:
      orderNumber: {pattern: '\\b(\\d{5,})\\b'}
slots:                      # extracted from every input
  color: {values: {red: [crimson, scarlet], blue: [navy]}}
intent_threshold: 0.35
```
"""

from __future__ import annotations

import re

import yaml

from flowhook.flows.fields import FieldReader
from flowhook.nlu import DEFAULT_THRESHOLD, Intent, IntentModel, SlotSpec

INTENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
SLOT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read_nlu(top: FieldReader) -> IntentModel | None:
    """The flow's intent model, or None when it declares no intents and no slots."""
    intents_fields = top.mapping("intents")
    slots_fields = top.mapping("slots")
    threshold = _threshold(top)
    intents: list[Intent] = []
    if intents_fields is not None:
        for name, line, node in intents_fields.entries():
            if not INTENT_NAME.fullmatch(name):
                intents_fields.problem_at(
                    line, f"intent name '{name}' may only use letters, digits, '_', '.', '-'"
                )
            if not isinstance(node, yaml.MappingNode):
                intents_fields.problem_at(
                    line, f"intent '{name}' must be a mapping with 'examples'"
                )
                continue
            fields = FieldReader(node, top.log, f"intent '{name}'", line=line)
            examples = fields.string_list("examples", required=True) or []
            if fields.has("examples") and not examples:
                fields.problem("'examples' must not be empty", "examples")
            own_slots = fields.mapping("slots")
            fields.finish()
            intents.append(Intent(name, tuple(examples), read_slots(own_slots)))
    flow_slots = read_slots(slots_fields)
    if not intents and not flow_slots:
        return None
    return IntentModel(intents, slots=flow_slots, threshold=threshold)


def _threshold(top: FieldReader) -> float:
    value = top.raw("intent_threshold")
    if value is None:
        return DEFAULT_THRESHOLD
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        top.problem("'intent_threshold' must be a number from 0 to 1", "intent_threshold")
        return DEFAULT_THRESHOLD
    return float(value)


def read_slots(fields: FieldReader | None) -> tuple[SlotSpec, ...]:
    if fields is None:
        return ()
    specs: list[SlotSpec] = []
    for name, line, node in fields.entries():
        if not SLOT_NAME.fullmatch(name):
            fields.problem_at(line, f"slot name '{name}' may only use letters, digits and '_'")
            continue
        if not isinstance(node, yaml.MappingNode):
            fields.problem_at(line, f"slot '{name}' must be a mapping with 'pattern' or 'values'")
            continue
        slot = FieldReader(node, fields.log, f"slot '{name}'", line=line)
        spec = _read_slot(name, slot)
        slot.finish()
        if spec is not None:
            specs.append(spec)
    return tuple(specs)


def _read_slot(name: str, slot: FieldReader) -> SlotSpec | None:
    if slot.has("pattern") == slot.has("values"):
        slot.problem("needs exactly one of 'pattern' and 'values'")
        slot.node("pattern")
        slot.node("values")
        return None
    if slot.has("pattern"):
        source = slot.string("pattern", required=True)
        if source is None:
            return None
        try:
            return SlotSpec.from_pattern(name, source)
        except re.error as exc:
            slot.problem(f"'pattern' is not a valid regular expression: {exc}", "pattern")
            return None
    values = slot.raw("values")
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        return SlotSpec.from_values(name, values)
    if (
        isinstance(values, dict)
        and values
        and all(
            isinstance(key, str)
            and isinstance(synonyms, list)
            and all(isinstance(s, str) for s in synonyms)
            for key, synonyms in values.items()
        )
    ):
        return SlotSpec.from_values(name, values)
    slot.problem(
        "'values' must be a list of strings or a mapping of value to a list of synonyms", "values"
    )
    return None
