"""The data protection, transformer, copilot and translation settings travel in a
snapshot from one installation to another (each backend), secrets as always only
encrypted; a copilotFlow that would not exist is a problem before anything is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.test_snapshots_api import PASSPHRASE, PASSWORD, export, import_, installation
from tests.support.receiver import Receiver

ASSIST = """\
name: assist
nodes:
  hint:
    type: say
    text: "hint: {{ input.text }}"
"""
HOOKS = "def same(doc):\n    return doc\n"
SETTINGS: dict[str, Any] = {
    "inputSanitization": False,
    "maskSensitiveAnalytics": True,
    "contactProfiles": False,
    "abortOnTransformerError": True,
    "inputTransformer": "hooks.py:same",
    "outputTransformer": "hooks.py:same",
    "executionFinishedTransformer": "hooks.py:same",
    "injectTransformer": "hooks.py:same",
    "notifyTransformer": "hooks.py:same",
    "copilotFlow": "assist",
    "translation": {
        "provider": "deepl",
        "flowLocale": "en",
        "apiKeyEnv": "DEEPL_KEY",
        "baseUrl": None,
        "model": None,
        "userLanguageDataKey": None,
        "timeout": 5.0,
        "enabled": False,
        "userLanguage": "de",
        "setLanguageOnExecution": 3,
        "noTranslationMarker": "%%",
        "alwaysRemoveMarkers": True,
        "deeplGlossaryInput": "gin",
        "deeplGlossaryOutput": "gout",
        "deeplFormality": "more",
        "translateData": True,
    },
}


async def test_new_settings_travel_in_a_snapshot(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """Every new setting, changed from its default, is in the export and set on the
    imported endpoint; the webhook password travels only encrypted, as before."""
    flows = {"assist.yaml": ASSIST, "hooks.py": HOOKS}
    async with installation(tmp_path / "a", f"sqlite:///{tmp_path / 'a.db'}", flows) as a:
        await a.create_endpoint(
            name="full", flow="echo", webhookUrl=receiver.url, webhookPassword=PASSWORD, **SETTINGS
        )
        status, text = await export(a, secrets=True)
    assert status == 200
    assert PASSWORD not in text
    (entry,) = json.loads(text)["endpoints"]
    assert {k: entry["settings"][k] for k in SETTINGS} == SETTINGS

    async with installation(tmp_path / "b", db_url, {"hooks.py": HOOKS}) as b:
        status, result = await import_(b, text, passphrase=PASSPHRASE)
        assert status == 200, result
        assert result["endpoints"][0]["ignoredSettings"] == []
        status, listed = await b.api("GET", "/api/v1/endpoints")
        (imported,) = listed["items"]
        assert {k: imported[k] for k in SETTINGS} == SETTINGS
        assert imported["hasWebhookPassword"] is True


async def test_a_missing_copilot_flow_stops_the_import(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    """A snapshot whose endpoint names a copilotFlow that is neither in the snapshot nor
    on the target is refused, naming the setting, and nothing is imported."""
    async with installation(tmp_path / "a", f"sqlite:///{tmp_path / 'a.db'}") as a:
        await a.create_endpoint(name="c", flow="echo", webhookUrl=receiver.url)
        status, text = await export(a, secrets=False)
    doc = json.loads(text)
    doc["endpoints"][0]["settings"]["copilotFlow"] = "ghost"
    async with installation(tmp_path / "b", db_url) as b:
        status, body = await import_(b, json.dumps(doc))
        assert status == 400
        assert "copilotFlow 'ghost' is neither in the snapshot" in " ".join(
            p["message"] for p in body["error"]["problems"]
        )
        assert (await b.api("GET", "/api/v1/endpoints"))[1]["items"] == []
