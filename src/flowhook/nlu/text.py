"""Text normalisation and the features intent matching compares."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[^\W_]+")


def normalise(text: str) -> str:
    """Lower case, no accents, ``'`` dropped (``don't`` -> ``dont``), single spaces."""
    folded = unicodedata.normalize("NFKD", text.casefold().replace("'", "").replace("\u2019", ""))
    without_marks = "".join(char for char in folded if not unicodedata.combining(char))
    return " ".join(_WORD.findall(without_marks))


def features(normalised: str) -> dict[str, int]:
    """Term counts: each word (``w:``) and each character trigram of `` word `` (``c:``).

    Trigrams make matching forgiving of typos and inflections ("orders",
    "ordr"); words reward exact vocabulary.
    """
    counts: dict[str, int] = {}
    for word in normalised.split():
        key = "w:" + word
        counts[key] = counts.get(key, 0) + 1
        padded = f" {word} "
        for i in range(len(padded) - 2):
            gram = "c:" + padded[i : i + 3]
            counts[gram] = counts.get(gram, 0) + 1
    return counts
