"""One Settings object, read once from the environment (``FLOWHOOK_*``) and CLI flags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from flowhook.delivery.ssrf import parse_networks


class Settings(BaseSettings):
    """Everything flowhook can be configured with. Built once, then passed in."""

    model_config = SettingsConfigDict(env_prefix="FLOWHOOK_", extra="ignore")

    data_dir: Path = Field(default=Path(".flowhook"), description="Where SQLite and keys live.")
    flows_dir: Path = Field(default=Path("flows"), description="Directory of *.yaml flows.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite in the data dir."
    )
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = Field(
        default=None, description="Base URL clients use to reach this server (for endpointUrl)."
    )
    admin_token: str | None = Field(default=None, description="Bearer token of the admin API.")
    max_body_bytes: int = Field(default=256 * 1024, ge=1)
    max_json_depth: int = Field(
        default=64,
        ge=2,
        le=200,
        description="Deepest JSON nesting the ingress accepts (the body is level 1); "
        "the JSON writer stops at about 254 levels, so this stays well below.",
    )
    max_id_length: int = Field(
        default=256, ge=1, le=4096, description="Longest userId and sessionId accepted."
    )
    turn_max_attempts: int = Field(
        default=3,
        ge=1,
        description="Runs of a message read back from the inbox (after a crash, restart or "
        "takeover) before it is failed instead of run again.",
    )
    turn_commit_tries: int = Field(
        default=5,
        ge=1,
        description="Commits of one turn storage may refuse before its message is failed "
        "(only the write is repeated, never the flow).",
    )
    log_level: str = "info"
    log_format: str = Field(default="console", pattern="^(console|json)$")

    # How long an endpoint (and its key hashes) may be served from the in-process cache
    # before it is re-read. Changes made anywhere hold from the next request regardless
    # (the configuration generation, flowhook.endpoints.generation).
    endpoint_cache_seconds: float = Field(default=1.0, ge=0)

    # Flows.
    flow_session_timeout: float = Field(
        default=1800, ge=0, description="Idle seconds after which a session starts fresh; 0: never."
    )
    flow_http_timeout: float = Field(default=10.0, gt=0, description="Default http node timeout.")
    flow_config: dict[str, Any] = Field(
        default_factory=dict, description="Values shown to flow templates as `config`."
    )
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible API base URL for llm nodes."
    )
    llm_model: str | None = None
    llm_api_key_env: str = Field(
        default="OPENAI_API_KEY", description="Environment variable holding the LLM API key."
    )
    llm_timeout: float = Field(default=30.0, gt=0)

    # How often transcripts past their endpoint's retention, and finished history past
    # history_retention_days, are deleted (0: never).
    transcript_purge_seconds: float = Field(default=600, ge=0)
    history_retention_days: float = Field(
        default=7,
        gt=0,
        description="Processed messages, delivered or failed outputs and delivery attempts "
        "older than this are deleted (pending work never is).",
    )

    analytics_retention_days: float = Field(
        default=90,
        gt=0,
        description="Turn statistics (the analytics API's source) older than this are deleted.",
    )

    # How long a rest endpoint's request waits for its turn's outputs.
    rest_timeout_seconds: float = Field(default=30.0, gt=0)

    # Accepted messages waiting for their turn, beyond which the ingress answers 503.
    max_backlog: int = Field(default=100_000, ge=1)

    # Storage group commit: how many queued writes one transaction may take.
    commit_batch_max: int = Field(default=512, ge=1)

    # Delivery.
    delivery_connect_timeout: float = Field(default=5.0, gt=0)
    delivery_total_timeout: float = Field(default=15.0, gt=0)
    delivery_max_per_endpoint: int = Field(default=64, ge=1)
    delivery_retry_schedule: list[float] = Field(
        default=[5, 30, 300, 1800, 7200, 18000, 36000, 36000],
        description="Seconds to wait before each retry; after the last the output is failed.",
    )
    delivery_sweep_seconds: float = Field(
        default=2.0,
        ge=0,
        description=(
            "How often the server looks in the outbox for pending outputs it does not "
            "hold (replayed by the CLI, or a missed hand-over); 0 turns the sweep off."
        ),
    )

    # Several processes on one PostgreSQL database (docs/deployment.md).
    role: Literal["both", "ingress", "worker"] = Field(
        default="both",
        description=(
            "ingress: accept messages and serve the admin API only; worker: run turns and "
            "deliver only (serves /healthz, /readyz, /metrics); both. Roles other than "
            "both need PostgreSQL."
        ),
    )
    lease_seconds: float = Field(
        default=10.0,
        ge=1.0,
        description=(
            "How long a worker's lease on its partitions of sessions lasts unless renewed "
            "(every third of it): a process that dies is taken over after at most this."
        ),
    )
    scan_seconds: float = Field(
        default=2.0,
        ge=0,
        description=(
            "How often a worker looks for pending messages of its partitions even without "
            "a notification (covers a missed one); 0: never."
        ),
    )
    db_pool_size: int = Field(
        default=4, ge=1, description="Reads at once, each on a pooled connection."
    )
    db_max_overflow: int = Field(
        default=4, ge=0, description="Extra pooled connections allowed under bursts."
    )
    database_listen_url: str | None = Field(
        default=None,
        description=(
            "A direct PostgreSQL URL for LISTEN when FLOWHOOK_DATABASE_URL goes through "
            "pgbouncer in transaction mode; default: the database URL."
        ),
    )
    database_prepare: bool = Field(
        default=True,
        description=(
            "Use server-side prepared statements; false for pgbouncer in transaction mode "
            "before 1.21."
        ),
    )

    # Metrics (GET /metrics, Prometheus text format).
    metrics_require_token: bool = Field(
        default=False,
        description="Require the admin token (Authorization: Bearer) on GET /metrics.",
    )

    # Webhook security.
    webhook_allow_cidrs: Annotated[list[str], NoDecode] = Field(
        default=[],
        description=(
            "Networks webhooks may reach although the SSRF guard blocks them (loopback, "
            "private, ...). Env: comma-separated or a JSON list, e.g. 127.0.0.0/8,::1/128."
        ),
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Master key (base64 of 32 bytes) for stored secrets; default: a key file.",
    )
    signing_secret_grace_seconds: float = Field(
        default=24 * 3600,
        ge=0,
        description="After a rotation, how long the previous signing secret still signs.",
    )

    @field_validator("webhook_allow_cidrs", mode="before")
    @classmethod
    def _split_cidrs(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("webhook_allow_cidrs")
    @classmethod
    def _check_cidrs(cls, value: list[str]) -> list[str]:
        parse_networks(value)  # raises ValueError naming the bad entry
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'flowhook.db').resolve()}"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):  # noqa: S104 - displayed, not bound
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"
