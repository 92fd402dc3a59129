"""One Settings object, read once from CLI flags, the environment (``FLOWHOOK_*``) and
the config file ``flowhook.toml``, in that order of precedence.

The server and every CLI command read the same file, so ``flowhook endpoints create``
checks webhook URLs and prints endpoint URLs exactly as the running server would. The
file is ``./flowhook.toml`` when it exists, or the path in ``FLOWHOOK_CONFIG`` (empty:
no file). Its keys are the settings' names, the environment variables' names without
``FLOWHOOK_`` in lower case (``port = 18080``).
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from flowhook.delivery.ssrf import parse_networks
from flowhook.errors import ConfigError

CONFIG_ENV = "FLOWHOOK_CONFIG"
CONFIG_FILE = "flowhook.toml"


def config_path() -> Path | None:
    """The config file to read: FLOWHOOK_CONFIG if set (empty: none), else
    ./flowhook.toml if it exists."""
    named = os.environ.get(CONFIG_ENV)
    if named is None:
        default = Path(CONFIG_FILE)
        return default if default.is_file() else None
    return Path(named) if named.strip() else None


class TomlFileSource(PydanticBaseSettingsSource):
    """The settings in the config file; a key that is no setting is an error (a typo
    must not be silently ignored)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = config_path()
        self._values: dict[str, Any] = {}
        if path is None:
            return
        try:
            self._values = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        known = list(settings_cls.model_fields)
        for key in sorted(set(self._values) - set(known)):
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"config file {path}: {key!r} is not a setting{hint}")

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


_ALLOWLISTS = (
    "webhook_allow_cidrs",
    "http_node_allow_cidrs",
    "llm_allow_cidrs",
    "translation_allow_cidrs",
    "nlu_allow_cidrs",
)


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
    commit_spacing_ms: float = Field(
        default=2.0,
        ge=0,
        le=50,
        description=(
            "Milliseconds from the start of one group commit to the start of the next, at "
            "least: at moderate load more messages share one log sync (less CPU per "
            "message) for at most this much more latency; 0 commits back to back."
        ),
    )

    # Delivery.
    delivery_connect_timeout: float = Field(default=5.0, gt=0)
    delivery_total_timeout: float = Field(default=15.0, gt=0)
    delivery_max_per_endpoint: int = Field(
        default=64, ge=1, description="Concurrent POSTs to one endpoint's webhook, at most."
    )
    delivery_max_connections: int = Field(
        default=1024,
        ge=1,
        description=(
            "Concurrent POSTs in all. Past it an endpoint gets a slot only below its fair "
            "share (this divided by the endpoints sending), so busy endpoints never starve "
            "the others; the total never exceeds twice this."
        ),
    )
    delivery_max_per_failing_endpoint: int = Field(
        default=4,
        ge=1,
        description=(
            "Concurrent POSTs to an endpoint whose last 5 attempts all failed, until one "
            "succeeds: a hanging receiver holds this many connections (and output bodies), "
            "not its whole share."
        ),
    )
    delivery_window_per_endpoint: int = Field(
        default=500,
        ge=1,
        description=(
            "Outputs of one endpoint held in memory (queued, in flight, due for a retry); "
            "the rest wait in the outbox and are read in order as the window drains."
        ),
    )
    delivery_window_total: int = Field(
        default=1000,
        ge=1,
        description=(
            "Outputs held in memory in all; past it an endpoint takes more only below its "
            "fair share (the total never exceeds twice this)."
        ),
    )
    delivery_retry_schedule: list[float] = Field(
        default=[5, 30, 300, 1800, 7200, 18000, 36000, 36000],
        description="Seconds to wait before each retry; after the last the output is failed.",
    )
    delivery_sweep_seconds: float = Field(
        default=0.5,
        ge=0,
        description=(
            "How often the server looks in the outbox for work it does not hold: retries "
            "that came due, outputs replayed or switched on by another process (the CLI), "
            "a missed hand-over; 0: only once at start-up."
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
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description=(
            "Serve GET /metrics on this port (on metrics_host) instead of the main one; "
            "the main port then answers 404 for /metrics."
        ),
    )
    metrics_host: str = Field(default="127.0.0.1", description="Address of metrics_port.")

    # Flow authors' code (code nodes, transformers) runs in worker processes.
    code_workers: int = Field(default=2, ge=1, description="Code worker processes at most.")
    code_timeout_seconds: float = Field(
        default=5.0, gt=0, description="A code call running longer is killed (the turn fails)."
    )
    code_memory_mb: int = Field(
        default=512, ge=64, description="Address-space limit of each code worker (MB)."
    )
    code_allow_modules: bool = Field(
        default=False,
        description=(
            "Let code nodes and transformers name 'package.module:function' from sys.path; "
            "by default only files in the flows dir load as code."
        ),
    )

    # Connections (uvicorn).
    http_header_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a client has to send a request's headers."
    )
    http_keepalive_timeout: float = Field(
        default=5.0, gt=0, description="Seconds an idle keep-alive connection is kept."
    )
    http_max_connections: int = Field(
        default=2000,
        ge=1,
        description="Open connections at most; beyond it new requests get 503.",
    )

    # Webhook security.
    webhook_allow_cidrs: Annotated[list[str], NoDecode] = Field(
        default=[],
        description=(
            "Networks webhooks may reach although the SSRF guard blocks them (loopback, "
            "private, ...). Env: comma-separated or a JSON list, e.g. 127.0.0.0/8,::1/128."
        ),
    )
    outbound_public: bool = Field(
        default=True,
        description=(
            "Whether outbound connections (webhooks, handover, http and llm nodes, "
            "translation, NLU) may reach public addresses; false: only the allowlists."
        ),
    )
    # Allowlists of the other outbound features (same syntax; docs/security.md).
    http_node_allow_cidrs: Annotated[list[str], NoDecode] = Field(
        default=[], description="Networks http nodes may reach although the SSRF guard blocks them."
    )
    llm_allow_cidrs: Annotated[list[str], NoDecode] = Field(
        default=[], description="Networks llm nodes may reach (a local model server)."
    )
    translation_allow_cidrs: Annotated[list[str], NoDecode] = Field(
        default=[], description="Networks translation providers may be reached on."
    )
    nlu_allow_cidrs: Annotated[list[str], NoDecode] = Field(
        default=[], description="Networks NLU connectors may reach."
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

    @field_validator(*_ALLOWLISTS, mode="before")
    @classmethod
    def _split_cidrs(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator(*_ALLOWLISTS)
    @classmethod
    def _check_cidrs(cls, value: list[str]) -> list[str]:
        parse_networks(value)  # raises ValueError naming the bad entry
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Flags, then FLOWHOOK_* variables, then flowhook.toml, then the defaults.
        return init_settings, env_settings, TomlFileSource(settings_cls)

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
