"""One turn, computed: from a message and its session's state to the commit that
records it. The runner (``flowhook.sessions.runner``) decides when turns run and what
happens when they fail; this builds what a turn writes.

The flow runs (or, for notify and handover messages, does not), the translation and
output transformer apply, and every output is serialised before anything is written,
so a value the JSON writer refuses fails the turn here, never its commit.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import orjson

from flowhook.endpoints.cache import CachedEndpoint
from flowhook.endpoints.settings import EndpointSettings
from flowhook.flows.engine import RESUME_AT_KEY
from flowhook.flows.types import FlowEngine, Output, SessionState, TurnInput, TurnResult
from flowhook.sessions import handover
from flowhook.sessions.copilot import Copilot
from flowhook.sessions.failures import Failure, FailureKind
from flowhook.sessions.pipeline import TurnPipeline
from flowhook.sessions.records import transcript_entries, turn_stats
from flowhook.sessions.state_cache import SessionKey, StateCache
from flowhook.sessions.transform_steps import TransformSteps
from flowhook.storage.insights import Insights
from flowhook.storage.records import EndpointRecord, InboundMessage, TurnCommit
from flowhook.storage.store import SqlStore
from flowhook.wire import output_body


class ProfileNeeded(Exception):
    """A turn run without the user's profile turned out to need it (the flows were
    replaced while it ran): it runs again, in order with the user's other turns."""


@dataclasses.dataclass(slots=True)
class PreparedTurn:
    """A turn computed and ready to commit: the commit, and what follows it."""

    commit: TurnCommit
    new_state: dict[str, Any]
    profile: dict[str, Any] | None
    profile_version: int | None
    replied: list[dict[str, Any]] | None
    failure: Failure | None
    outputs: int


class TurnBuilder:
    def __init__(
        self,
        store: SqlStore,
        engine: FlowEngine,
        pipeline: TurnPipeline,
        steps: TransformSteps,
        profiles: StateCache,
        base_url: str,
    ) -> None:
        """``profiles``: the runner's cache of user profiles (read here, written by the
        runner once a turn committed); ``steps``: the endpoint's transformers."""
        self._store = store
        self._engine = engine
        self._pipeline = pipeline
        self._steps = steps
        self._profiles = profiles
        self._base_url = base_url
        self._insights = Insights(store)
        self._copilot = Copilot(engine, base_url)

    async def build(
        self,
        msg: InboundMessage,
        epoch: int,
        cached: CachedEndpoint,
        raw_state: dict[str, Any] | None,
        store_reply: bool,
        profile_skipped_at: int | None = None,
    ) -> PreparedTurn:
        """Everything a turn computes before its commit, from the session's stored
        state: the flow's run, the outputs serialised and transformed. Raises whatever
        fails. ``store_reply``: a rest request waits in another process.
        ``profile_skipped_at``: the flows' generation under which this turn was found not
        to touch the user's profile (it runs without it; None: it reads it)."""
        endpoint, settings = cached.record, cached.settings
        user_key = (msg.endpoint_id, msg.user_id)
        failure: Failure | None = None
        profile_version: int | None = None  # stays None unless the flow runs
        events: list[bytes] = []
        state = SessionState.from_json(raw_state)
        # Forwarding to a provider only happens when the endpoint has one; without it a
        # handover node just marks the session (and the flow keeps answering).
        was_handed_over = state.handover is not None
        forwarding = settings.handover_url is not None and was_handed_over
        agent_text: str | None = None  # a forwarded message as the agent reads it
        if msg.kind in ("notify", handover.AGENT):
            # Delivered as is, in the session's order; the flow does not run.
            result = TurnResult([Output(msg.text, msg.data or {})], state)
        elif msg.kind == handover.START:
            state.handover = {"at": time.time(), "by": "api", **(msg.data or {})}
            result = TurnResult([], state)
        elif msg.kind == handover.END:
            state.handover = None
            resume_at = (msg.data or {}).get("resumeAt")
            if isinstance(resume_at, str):
                # The flow takes over at once, at that node (the user said nothing new).
                state.extra[RESUME_AT_KEY] = resume_at
                resumed = dataclasses.replace(msg, text=None, data={})
                result, failure, profile_version = await self._run_flow(
                    endpoint, user_key, resumed, state, settings, profile_skipped_at
                )
            else:
                result = TurnResult([], state)
            if settings.handover_url is not None:
                events.append(handover.event("handover.ended", msg, self._base_url))
        elif forwarding:
            # Handed over: the user's message goes to the agent, not to the flow.
            result = TurnResult([], state)
            forwarded = await self._pipeline.for_agent(settings, state.extra, msg)
            agent_text = forwarded["text"]
            events.append(handover.event("message", msg, self._base_url, **forwarded))
        else:
            result, failure, profile_version = await self._run_flow(
                endpoint, user_key, msg, state, settings, profile_skipped_at
            )
        if failure is not None and settings.error_reply is not None:
            result = dataclasses.replace(result, outputs=[Output(settings.error_reply, {})])
        if (
            settings.handover_url is not None
            and result.state.handover is not None
            and not forwarding
        ):
            prior = await self._insights.transcript(msg.endpoint_id, msg.session_id, limit=500)
            current = [
                {"direction": e.direction, "source": e.source, "text": e.text, "data": e.data}
                for e in transcript_entries(msg, result.outputs, settings)
            ]
            events.append(
                handover.event(
                    "handover.started",
                    msg,
                    self._base_url,
                    handover=result.state.handover,
                    transcript=[
                        {k: i[k] for k in ("direction", "source", "text", "data")} for i in prior
                    ]
                    + current,
                )
            )
        if was_handed_over and msg.kind in ("message", handover.AGENT):
            events.extend(await self._copilot.assist(settings, msg, result.state, text=agent_text))
        outputs_sent = await self._pipeline.after(settings, result.state.extra, result.outputs)
        if outputs_sent is not result.outputs:  # translated (a copy only then)
            result = dataclasses.replace(result, outputs=outputs_sent)
        new_state = result.state.to_json()
        outputs = [
            output_body(
                user_id=msg.user_id,
                session_id=msg.session_id,
                text=out.text,
                data=out.data,
                trace_id=msg.trace_id,
                disable_sensitive_logging=settings.mask_sensitive_logging,
                source="agent" if msg.kind == handover.AGENT else "bot",
            )
            for out in result.outputs
        ]
        # A rest endpoint answers the request with its outputs: nothing to deliver.
        rest = endpoint.type != "webhook"
        bodies = [] if rest else outputs
        replied = [orjson.loads(body)["AIOutput"] for body in outputs] if rest else None
        if bodies and settings.output_transformer is not None:
            # Awaited: the transformer runs in a code worker; the event loop goes on.
            shaped = [await self._steps.output(settings, b, endpoint.id) for b in bodies]
            bodies = [b for b in shaped if b is not None]  # None: dropped (abort on error)
        commit = TurnCommit(
            message_id=msg.id,
            endpoint_id=msg.endpoint_id,
            session_id=msg.session_id,
            user_id=msg.user_id,
            state=new_state,
            bodies=bodies,
            failed=failure is not None,
            error=None if failure is None else failure.describe(msg),
            profile=result.profile,
            transcript=transcript_entries(msg, result.outputs, settings),
            handover_events=events,
            stats=turn_stats(msg, result, was_handed_over, settings),
            epoch=epoch,
            profile_version=profile_version,
            # Stored only for a request waiting in another process.
            reply=replied if store_reply else None,
        )
        # Whatever the flow produced must be writable: serialise what the commit writes
        # now, so a value the JSON writer refuses fails this turn here, not the commit.
        orjson.dumps(new_state)
        if result.profile is not None:
            orjson.dumps(result.profile)
        for entry in commit.transcript:
            orjson.dumps(entry.data)
        return PreparedTurn(
            commit=commit,
            new_state=new_state,
            profile=result.profile,
            profile_version=profile_version,
            replied=replied,
            failure=failure,
            outputs=len(outputs),
        )

    async def _run_flow(
        self,
        endpoint: EndpointRecord,
        user_key: SessionKey,
        msg: InboundMessage,
        state: SessionState,
        settings: EndpointSettings,
        profile_skipped_at: int | None = None,
    ) -> tuple[TurnResult, Failure | None, int | None]:
        """Run the flow for one message: its result, what failed (None: nothing), and the
        version of the user's profile the flow read (None: it read none,
        ``profile_skipped_at`` being the flows' generation that made it skip it). A failure
        keeps the state as it was (the engine's error output, if any, is the result's).
        Raises ProfileNeeded when a turn run without the profile turns out to need it."""
        version: int | None = None
        profile: dict[str, Any] = {}
        if profile_skipped_at is None and settings.contact_profiles:
            cached = self._profiles.get(user_key)
            if cached is None:
                loaded, loaded_version = await self._store.load_profile_versioned(
                    msg.endpoint_id, msg.user_id
                )
                cached = {"data": loaded, "version": loaded_version}
                self._profiles.put(user_key, cached)
            profile, version = cached["data"], cached["version"]
        turn = TurnInput(
            user_id=msg.user_id,
            session_id=msg.session_id,
            trace_id=msg.trace_id,
            text=msg.text,
            data=msg.data or {},
            locale=endpoint.locale,
            received_at=msg.received_at,
            profile=profile,
            session_timeout=settings.session_timeout_seconds,
        )
        # The pipeline writes into extra (the user's language): a crash keeps it as it was.
        extra_before = dict(state.extra)
        try:
            turn = await self._pipeline.before(settings, state.extra, turn)
            result = await self._engine.run_turn(endpoint.flow, state, turn)
            if not settings.contact_profiles and result.profile is not None:
                result = dataclasses.replace(result, profile=None)  # nothing kept per user
        except Exception as exc:  # the pipeline (NLU, translation) or engine
            return (
                TurnResult(outputs=[], state=dataclasses.replace(state, extra=extra_before)),
                Failure.of(FailureKind.TURN, exc),
                version,
            )
        if profile_skipped_at is not None and (
            result.profile is not None or self._engine.registry_generation != profile_skipped_at
        ):
            state.extra.clear()
            state.extra.update(extra_before)
            raise ProfileNeeded
        failure = None
        if result.failure is not None:
            failure = Failure(FailureKind.FLOW, result.failure, result.failed_node)
        return self._pipeline.carry(state.extra, result), failure, version
