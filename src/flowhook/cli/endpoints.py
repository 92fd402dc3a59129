"""``flowhook endpoints ...`` and ``flowhook keys ...``: the admin API on the command line."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
import typer

from flowhook.cli.context import make_settings, run
from flowhook.cli.output import print_json, print_list

T = TypeVar("T")

endpoints_app = typer.Typer(help="Create, list, change and delete endpoints.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke an endpoint's API keys.", no_args_is_help=True)

TABLE_OPT = typer.Option(
    None, "--table/--json", help="Table or JSON (default: table on a terminal)."
)
AUTH_CHOICES = {"none": "none", "api-key": "apiKey", "apiKey": "apiKey"}


def _auth(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in AUTH_CHOICES:
        raise typer.BadParameter("expected 'none' or 'api-key'", param_hint="--auth")
    return AUTH_CHOICES[value]


def _model(cls: type[Any], **fields: Any) -> Any:
    from pydantic import ValidationError

    try:
        return cls(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        typer.echo(f"error: {where}: {first['msg']}", err=True)
        raise typer.Exit(2) from None


SESSION_TIMEOUT_OPT = typer.Option(
    None, "--session-timeout", help="Idle seconds before a session starts fresh (0: never)."
)
RATE_LIMIT_OPT = typer.Option(None, "--rate-limit", help="Messages per second accepted.")
RATE_BURST_OPT = typer.Option(None, "--rate-burst", help="Messages accepted at once.")
TRANSCRIPTS_OPT = typer.Option(
    None, "--transcripts/--no-transcripts", help="Store each session's messages in and out."
)
RETENTION_OPT = typer.Option(None, "--transcript-days", help="Delete transcripts after N days.")
ANALYTICS_OPT = typer.Option(None, "--analytics/--no-analytics", help="Record turn statistics.")
MASK_IP_OPT = typer.Option(
    None, "--mask-ip/--no-mask-ip", help="Store client addresses truncated (/24, /48)."
)
INPUT_TRANSFORMER_OPT = typer.Option(
    None, "--input-transformer", help="Trusted module:function reshaping requests."
)
OUTPUT_TRANSFORMER_OPT = typer.Option(
    None, "--output-transformer", help="Trusted module:function reshaping deliveries."
)
HANDOVER_OPT = typer.Option(None, "--handover-url", help="Generic webhook handover provider URL.")
ERROR_REPLY_OPT = typer.Option(
    None, "--error-reply", help="Sent to the user like any output when a message's turn fails."
)
MASK_OPT = typer.Option(
    None,
    "--mask-logging/--no-mask-logging",
    help="disableSensitiveLogging on outputs; no message text in logs.",
)


NLU_CONNECTOR_OPT = typer.Option(
    None,
    "--nlu-connector",
    metavar="JSON",
    help='External NLU, e.g. \'{"type": "rasa", "url": "http://localhost:5005"}\'; '
    "'null' (update): back to the built-in matcher.",
)
TRANSLATION_OPT = typer.Option(
    None,
    "--translation",
    metavar="JSON",
    help='e.g. \'{"provider": "deepl", "flowLocale": "en", "apiKeyEnv": "DEEPL_KEY"}\'; '
    "'null' (update): off.",
)


SET_OPT = typer.Option(
    None,
    "--set",
    metavar="NAME=JSON",
    help="Any setting by its API name, e.g. --set inputSanitization=false "
    "--set copilotFlow='\"assist\"' (repeatable; null resets it).",
)


def _set_options(values: list[str] | None) -> dict[str, Any]:
    """``--set name=json`` pairs as model fields (API names, camelCase or snake_case)."""
    fields: dict[str, Any] = {}
    for item in values or []:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"expected NAME=JSON, got {item!r}", param_hint="--set")
        try:
            fields[name.strip()] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            fields[name.strip()] = raw  # a bare word is a string: --set copilotFlow=assist
    return fields


def _json_setting(value: str | None, flag: str) -> tuple[bool, Any]:
    """(given, parsed) for a JSON-valued flag; bad JSON exits 2 naming the flag."""
    if value is None:
        return False, None
    try:
        return True, orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON ({exc})", param_hint=flag) from None


@endpoints_app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="Unique name."),
    flow: str = typer.Option(..., "--flow", help="Flow the endpoint runs."),
    webhook: str | None = typer.Option(
        None, "--webhook", help="URL the bot's outputs are POSTed to (webhook endpoints)."
    ),
    type_: str = typer.Option(
        "webhook", "--type", help="'webhook', or 'rest' (outputs in the HTTP answer)."
    ),
    user: str | None = typer.Option(None, "--user", help="Basic Auth user for the webhook."),
    password: str | None = typer.Option(None, "--password", help="Basic Auth password."),
    auth: str = typer.Option("none", "--auth", help="'none' or 'api-key' (X-Webhook-Key)."),
    locale: str | None = typer.Option(None, "--locale"),
    inactive: bool = typer.Option(False, "--inactive", help="Create it switched off."),
    signing: bool = typer.Option(
        False, "--signing", help="Sign deliveries; the secret is printed this once."
    ),
    session_timeout: float | None = SESSION_TIMEOUT_OPT,
    rate_limit: float | None = RATE_LIMIT_OPT,
    rate_burst: int | None = RATE_BURST_OPT,
    mask_logging: bool | None = MASK_OPT,
    transcripts: bool | None = TRANSCRIPTS_OPT,
    transcript_days: float | None = RETENTION_OPT,
    analytics: bool | None = ANALYTICS_OPT,
    mask_ip: bool | None = MASK_IP_OPT,
    input_transformer: str | None = INPUT_TRANSFORMER_OPT,
    output_transformer: str | None = OUTPUT_TRANSFORMER_OPT,
    handover_url: str | None = HANDOVER_OPT,
    error_reply: str | None = ERROR_REPLY_OPT,
    nlu_connector: str | None = NLU_CONNECTOR_OPT,
    translation: str | None = TRANSLATION_OPT,
    set_: list[str] | None = SET_OPT,
) -> None:
    """Create an endpoint and print it (with its endpointUrl, and signingSecret once)."""
    fields: dict[str, Any] = {
        "nlu_connector": _json_setting(nlu_connector, "--nlu-connector")[1],
        "translation": _json_setting(translation, "--translation")[1],
        "name": name,
        "flow": flow,
        "type": type_,
        "webhook_url": webhook,
        "session_timeout_seconds": session_timeout,
        "rate_limit_per_second": rate_limit,
        "rate_limit_burst": rate_burst,
        "mask_sensitive_logging": mask_logging,
        "store_transcripts": transcripts,
        "transcript_retention_days": transcript_days,
        "collect_analytics": analytics,
        "mask_ip_addresses": mask_ip,
        "input_transformer": input_transformer,
        "output_transformer": output_transformer,
        "handover_url": handover_url,
        "error_reply": error_reply,
        "webhook_user": user,
        "webhook_password": password,
        "auth_method": _auth(auth),
        "locale": locale,
        "active": not inactive,
        "signing": signing,
    }
    from flowhook.endpoints.models import EndpointCreate

    req = _model(EndpointCreate, **{**fields, **_set_options(set_)})
    print_json(run(make_settings(ctx), lambda s: s.create(req)))


@endpoints_app.command("list")
def list_(ctx: typer.Context, table: bool | None = TABLE_OPT) -> None:
    """List all endpoints."""
    views = run(make_settings(ctx), lambda s: s.list_all())
    print_list(views, ["id", "name", "flow", "authMethod", "active", "endpointUrl"], table)


@endpoints_app.command("show")
def show(ctx: typer.Context, endpoint_id: str = typer.Argument(..., help="Endpoint id.")) -> None:
    """Show one endpoint."""
    print_json(run(make_settings(ctx), lambda s: s.get(endpoint_id)))


@endpoints_app.command("update")
def update(
    ctx: typer.Context,
    endpoint_id: str = typer.Argument(..., help="Endpoint id."),
    name: str | None = typer.Option(None, "--name"),
    flow: str | None = typer.Option(None, "--flow"),
    webhook: str | None = typer.Option(None, "--webhook"),
    user: str | None = typer.Option(None, "--user"),
    password: str | None = typer.Option(None, "--password"),
    auth: str | None = typer.Option(None, "--auth", help="'none' or 'api-key'."),
    locale: str | None = typer.Option(None, "--locale"),
    active: bool | None = typer.Option(None, "--active/--inactive"),
    no_signing: bool = typer.Option(
        False, "--no-signing", help="Stop signing and delete the signing secrets."
    ),
    type_: str | None = typer.Option(None, "--type", help="'webhook' or 'rest'."),
    session_timeout: float | None = SESSION_TIMEOUT_OPT,
    rate_limit: float | None = RATE_LIMIT_OPT,
    rate_burst: int | None = RATE_BURST_OPT,
    mask_logging: bool | None = MASK_OPT,
    transcripts: bool | None = TRANSCRIPTS_OPT,
    transcript_days: float | None = RETENTION_OPT,
    analytics: bool | None = ANALYTICS_OPT,
    mask_ip: bool | None = MASK_IP_OPT,
    input_transformer: str | None = INPUT_TRANSFORMER_OPT,
    output_transformer: str | None = OUTPUT_TRANSFORMER_OPT,
    handover_url: str | None = HANDOVER_OPT,
    error_reply: str | None = ERROR_REPLY_OPT,
    nlu_connector: str | None = NLU_CONNECTOR_OPT,
    translation: str | None = TRANSLATION_OPT,
    set_: list[str] | None = SET_OPT,
) -> None:
    """Change the given fields of an endpoint."""
    # JSON flags may be 'null' (reset), so they are kept apart from the None-filtered ones.
    json_fields = {
        name: parsed
        for name, (given, parsed) in (
            ("nlu_connector", _json_setting(nlu_connector, "--nlu-connector")),
            ("translation", _json_setting(translation, "--translation")),
        )
        if given
    }
    fields = {
        "name": name,
        "flow": flow,
        "type": type_,
        "session_timeout_seconds": session_timeout,
        "rate_limit_per_second": rate_limit,
        "rate_limit_burst": rate_burst,
        "mask_sensitive_logging": mask_logging,
        "store_transcripts": transcripts,
        "transcript_retention_days": transcript_days,
        "collect_analytics": analytics,
        "mask_ip_addresses": mask_ip,
        "input_transformer": input_transformer,
        "output_transformer": output_transformer,
        "handover_url": handover_url,
        "error_reply": error_reply,
        "webhook_url": webhook,
        "webhook_user": user,
        "webhook_password": password,
        "auth_method": _auth(auth),
        "locale": locale,
        "active": active,
        "signing": False if no_signing else None,
    }
    given = {k: v for k, v in fields.items() if v is not None}
    from flowhook.endpoints.models import EndpointUpdate

    req = _model(EndpointUpdate, **{**given, **json_fields, **_set_options(set_)})
    print_json(run(make_settings(ctx), lambda s: s.update(endpoint_id, req)))


@endpoints_app.command("rotate-secret")
def rotate_secret(
    ctx: typer.Context, endpoint_id: str = typer.Argument(..., help="Endpoint id.")
) -> None:
    """New signing secret (printed this once); the old one signs too for the grace period."""
    print_json(run(make_settings(ctx), lambda s: s.rotate_signing_secret(endpoint_id)))


@endpoints_app.command("delete")
def delete(
    ctx: typer.Context,
    endpoint_id: str = typer.Argument(..., help="Endpoint id."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Also when messages or outputs are pending: each is failed, with the reason recorded.",
    ),
) -> None:
    """Delete an endpoint and its API keys (refused while work is pending, unless --force)."""
    failed = run(make_settings(ctx), lambda s: s.delete(endpoint_id, force=force))
    print_json(
        {
            "deleted": endpoint_id,
            "failedMessages": failed.messages,
            "failedOutputs": failed.outputs,
        }
    )


@keys_app.command("create")
def key_create(
    ctx: typer.Context,
    endpoint_id: str = typer.Argument(..., help="Endpoint id."),
    name: str | None = typer.Option(None, "--name", help="A name to tell keys apart."),
) -> None:
    """Generate an API key. The key is printed this once; only its hash is stored."""
    from flowhook.endpoints.models import ApiKeyCreate

    req = _model(ApiKeyCreate, name=name)
    print_json(run(make_settings(ctx), lambda s: s.create_key(endpoint_id, req)))


@keys_app.command("list")
def key_list(
    ctx: typer.Context,
    endpoint_id: str = typer.Argument(..., help="Endpoint id."),
    table: bool | None = TABLE_OPT,
) -> None:
    """List an endpoint's API keys (never the keys themselves)."""
    keys = run(make_settings(ctx), lambda s: s.list_keys(endpoint_id))
    print_list(keys, ["id", "name", "keyPrefix", "createdAt", "lastUsedAt"], table)


@keys_app.command("revoke")
def key_revoke(
    ctx: typer.Context,
    endpoint_id: str = typer.Argument(..., help="Endpoint id."),
    key_id: str = typer.Argument(..., help="API key id."),
) -> None:
    """Revoke an API key at once."""
    run(make_settings(ctx), lambda s: s.revoke_key(endpoint_id, key_id))
    print_json({"revoked": key_id})
