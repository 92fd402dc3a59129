"""One Settings object, read once from the environment (``FLOWHOOK_*``) and CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    log_level: str = "info"
    log_format: str = Field(default="console", pattern="^(console|json)$")

    # How long an endpoint (and its key hashes) may be served from the in-process cache
    # before it is re-read; bounds how late another process's change takes effect.
    endpoint_cache_seconds: float = Field(default=1.0, ge=0)

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
