"""The errors a snapshot export or import raises (all in the one ``FlowhookError`` tree)."""

from __future__ import annotations

from flowhook.errors import InvalidRequest, Unprocessable


class SnapshotInvalid(Unprocessable):
    """The snapshot cannot be imported; ``problems`` lists every reason, and nothing was
    written."""

    code = "snapshot_invalid"

    def __init__(self, problems: list[str]) -> None:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(
            f"the snapshot was not imported ({count}):\n" + "\n".join(problems), problems=problems
        )
        self.problems = problems


class WrongPassphrase(Unprocessable):
    """The passphrase does not open the snapshot's encrypted secrets."""

    code = "wrong_passphrase"


class PassphraseRequired(InvalidRequest):
    """Secrets are to be exported or imported but no (usable) passphrase was given."""
