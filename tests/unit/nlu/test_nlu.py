"""Built-in intent matching and slot extraction."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowhook.flows import FlowRegistry, SessionState
from flowhook.nlu import Intent, IntentModel, SlotSpec
from flowhook.nlu.bench import sample_inputs, sample_model, time_matching
from flowhook.nlu.text import normalise

from ..flows.helpers import engine_for, make_input

MODEL = IntentModel(
    [
        Intent("order_status", ["where is my order", "track my package", "has my order shipped"]),
        Intent("refund", ["I want my money back", "can I get a refund", "refund please"]),
        Intent(
            "greeting",
            ["hello", "hi there", "good morning"],
            slots=(SlotSpec.from_pattern("name", r"(?i)i am (?P<value>\w+)"),),
        ),
    ],
    slots=(SlotSpec.from_pattern("orderNumber", r"\b(\d{5,})\b"),),
)


def test_normalise() -> None:
    """Case, accents, apostrophes and punctuation do not matter."""
    assert normalise("  Don't   WORRY, Café!! ") == "dont worry cafe"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Where is my order?", "order_status"),
        ("wher is my ordr", "order_status"),
        ("could you track the package for me", "order_status"),
        ("I'd like a refund", "refund"),
        ("money back please", "refund"),
        ("Hello!", "greeting"),
        ("the weather in paris tomorrow", None),
        ("", None),
    ],
)
def test_intent_matching(text: str, intent: str | None) -> None:
    """Inputs close to an intent's examples match it, typos included; unrelated ones do not."""
    assert MODEL.result(text).intent == intent


def test_exact_example_scores_one_and_scores_are_ordered() -> None:
    """An example written exactly scores 1.0; a paraphrase scores less, but above the rest."""
    assert MODEL.result("Track my package.").score == 1.0
    scores = MODEL.scores("track my order")
    assert scores["order_status"] > scores["refund"]
    assert 0 < scores["order_status"] < 1


def test_score_below_threshold_is_reported_without_intent() -> None:
    """Below the threshold the intent is None but the best score is still given."""
    result = IntentModel([Intent("a", ["open the door"])], threshold=0.99).result("open door")
    assert result.intent is None
    assert 0 < result.score < 0.99


def test_slots_from_patterns_and_values() -> None:
    """Flow slots are extracted always, intent slots only with their intent; values map synonyms."""
    assert MODEL.match("where is order 123456") == {
        "intent": "order_status",
        "intentScore": MODEL.result("where is order 123456").score,
        "slots": {"orderNumber": "123456"},
    }
    assert MODEL.result("hello, I am Ada").slots == {"name": "Ada"}
    assert MODEL.result("track it, I am Ada").slots == {}
    colours = SlotSpec.from_values("colour", {"red": ["crimson", "scarlet"], "dark blue": ["navy"]})
    assert colours.extract("a CRIMSON shirt") == "red"
    assert colours.extract("Dark Blue please") == "dark blue"
    assert colours.extract("redish") is None
    assert SlotSpec.from_values("size", ["S", "M"]).extract("size m") == "M"
    assert SlotSpec.from_pattern("n", r"\d+").extract("x 42 y") == "42"
    with pytest.raises(re.error):
        SlotSpec.from_pattern("bad", "(")


def test_model_without_intents_gives_only_slots() -> None:
    """A model of slots alone never names an intent."""
    model = IntentModel([], slots=(SlotSpec.from_values("c", ["red"]),))
    assert model.match("red one") == {"intent": None, "intentScore": 0.0, "slots": {"c": "red"}}


async def test_flow_inputs_carry_intent_score_and_slots(tmp_path: Path) -> None:
    """Templates see input.intent, input.intentScore and input.slots for every input."""
    engine = engine_for(
        tmp_path,
        """
        intents:
          order_status: {examples: ["where is my order", "track my package"]}
        slots:
          orderNumber: {pattern: '\\b(\\d{5,})\\b'}
        nodes:
          s:
            type: say
            text: "{{ input.intent }} {{ input.intentScore > 0.5 }} {{ input.slots.orderNumber }}"
        """,
    )
    result = await engine.run_turn("test", SessionState(), make_input("where is order 12345?"))
    assert [o.text for o in result.outputs] == ["order_status True 12345"]
    result = await engine.run_turn("test", SessionState(), make_input(None, {"a": 1}))
    assert [o.text for o in result.outputs] == [" False "]


def test_flows_without_intents_have_no_model(tmp_path: Path) -> None:
    """Only flows declaring intents or slots pay for matching."""
    assert FlowRegistry.load(None)["echo"].nlu is None


def test_bench_helper_returns_microseconds() -> None:
    """The bench helper measures matching of the 50-intent sample and returns µs per input."""
    model = sample_model()
    assert len(model.intents) == 50
    assert len(sample_inputs(model, 5)) == 5
    assert time_matching(intents=5, examples=3, inputs=10) > 0
