"""``flowhook send``: post one message the way the reference's cURL example does."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import typer


def send_message(
    url: str,
    user_id: str,
    session_id: str,
    text: str | None,
    data: str | None,
    key: str | None,
) -> tuple[int, str]:
    body: dict[str, object] = {"userId": user_id, "sessionId": session_id}
    if text is not None:
        body["text"] = text
    if data is not None:
        try:
            body["data"] = json.loads(data)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--data") from None
    headers = {"Content-Type": "application/json"}
    if key:
        headers["X-Webhook-Key"] = key
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("expected an http:// or https:// URL", param_hint="URL")
    req = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except urllib.error.URLError as exc:
        # The URL was fine; the server was not there: a connection error, not a usage one.
        reason = getattr(exc.reason, "strerror", None) or exc.reason
        typer.echo(f"error: cannot connect to {url}: {reason}", err=True)
        raise typer.Exit(1) from None
    except (TimeoutError, ConnectionError) as exc:
        typer.echo(f"error: no answer from {url}: {exc}", err=True)
        raise typer.Exit(1) from None
