"""``question``: ask, wait for the next input, and store the typed answer.

Reached during a turn, the node outputs its text/data and the turn stops with
the session waiting at it. The session's next input is the answer:

* understood -> the value goes to ``context[store]``, the flow goes on at ``next``;
* not understood -> the ``reprompt`` text (or the question again) is sent and the
  session keeps waiting; after more than ``max_reprompts`` failures the flow
  goes on at ``fallback`` instead.
"""

from __future__ import annotations

from collections.abc import Iterator

from flowhook.flows.answers import ANSWER_TYPES, AnswerType, IntentAnswer, TextAnswer
from flowhook.flows.fields import Target
from flowhook.flows.nodes.base import (
    AwaitsAnswer,
    Node,
    ParseContext,
    optional_targets,
    target_id,
)
from flowhook.flows.nodes.output import OutputTemplate, read_output
from flowhook.flows.run import TurnRun
from flowhook.flows.values import Value


class QuestionNode(Node, AwaitsAnswer):
    type_name = "question"

    __slots__ = (
        "answer_type",
        "fallback",
        "fallback_id",
        "max_reprompts",
        "next",
        "next_id",
        "prompt",
        "reprompt",
        "store",
    )

    def __init__(
        self,
        node_id: str,
        line: int,
        *,
        prompt: OutputTemplate,
        answer_type: AnswerType,
        store: str | None,
        reprompt: Value | None,
        max_reprompts: int | None,
        fallback: Target | None,
        next: Target | None,
    ) -> None:
        super().__init__(node_id, line)
        self.prompt = prompt
        self.answer_type = answer_type
        self.store = store
        self.reprompt = reprompt
        self.max_reprompts = max_reprompts
        self.fallback = fallback
        self.fallback_id = target_id(fallback)
        self.next = next
        self.next_id = target_id(next)

    @classmethod
    def parse(cls, ctx: ParseContext) -> QuestionNode:
        fields = ctx.fields
        prompt = read_output(fields, ctx.compiler)
        answer_name = fields.string("answer") or TextAnswer.name
        answer_class = ANSWER_TYPES.get(answer_name)
        if answer_class is None:
            known = ", ".join(sorted(ANSWER_TYPES))
            fields.problem(f"unknown answer type '{answer_name}' (known: {known})", "answer")
            answer_class = TextAnswer
        max_reprompts = fields.integer("max_reprompts")
        fallback = fields.target("fallback")
        if fields.has("max_reprompts") and not fields.has("fallback"):
            fields.problem("'max_reprompts' needs a 'fallback' node to go to", "max_reprompts")
        if fields.has("fallback") and not fields.has("max_reprompts"):
            fields.problem("'fallback' is only used with 'max_reprompts'", "fallback")
        answer_type = answer_class.from_fields(fields)
        if isinstance(answer_type, IntentAnswer):
            _check_intents(ctx, answer_type)
        return cls(
            ctx.node_id,
            ctx.line,
            prompt=prompt,
            answer_type=answer_type,
            store=fields.context_key("store"),
            reprompt=fields.text("reprompt", ctx.compiler),
            max_reprompts=max_reprompts,
            fallback=fallback,
            next=fields.target("next"),
        )

    def targets(self) -> Iterator[Target]:
        return optional_targets(self.fallback, self.next)

    def execute(self, run: TurnRun) -> str | None:
        run.emit(self.prompt.render(run.scope))
        run.wait(self.node_id)
        return None

    def resume(self, run: TurnRun) -> str | None:
        text = run.turn.text
        answer = self.answer_type.parse_turn(text, run) if text is not None else None
        if answer is not None:
            if self.store is not None:
                run.context[self.store] = answer.value
            run.stop_waiting()
            return self.next_id
        failures = run.reprompts + 1
        if self.max_reprompts is not None and failures > self.max_reprompts:
            run.stop_waiting()
            return self.fallback_id
        # The reprompt keeps the question's data (e.g. quick-reply buttons).
        run.emit(self.prompt.render(run.scope, text=self.reprompt))
        run.wait(self.node_id, reprompts=failures)
        return None


def _check_intents(ctx: ParseContext, answer_type: IntentAnswer) -> None:
    if not ctx.intents:
        ctx.fields.problem("'answer: intent' needs 'intents' declared in the flow", "answer")
        return
    for intent in sorted(answer_type.intents or ()):
        if intent not in ctx.intents:
            ctx.fields.problem(f"intent '{intent}' is not declared in the flow", "intents")
