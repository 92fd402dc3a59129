"""A timing helper for the bench: how long intent matching takes per input."""

from __future__ import annotations

import random
import time

from flowhook.nlu.matcher import Intent, IntentModel

# Words most requests share ("I want to ...") plus made-up topic words, so the
# sample has the shape of real intents: a few common words, many specific ones.
_COMMON = [
    "i",
    "my",
    "me",
    "the",
    "a",
    "to",
    "is",
    "it",
    "can",
    "you",
    "please",
    "want",
    "need",
    "how",
    "do",
    "what",
    "where",
    "when",
]
_LETTERS = "abcdefghiklmnoprstuvwy"


def _topic_words(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choices(_LETTERS, k=rng.randint(3, 9))) for _ in range(count)]


def sample_model(intents: int = 50, examples: int = 10, seed: int = 7) -> IntentModel:
    """A model of ``intents`` made-up intents with ``examples`` sentences each."""
    rng = random.Random(seed)
    built = []
    for number in range(intents):
        topic = _topic_words(rng, 8)
        sentences = [
            " ".join(rng.sample(_COMMON, rng.randint(1, 4)) + rng.sample(topic, rng.randint(2, 4)))
            for _ in range(examples)
        ]
        built.append(Intent(f"intent_{number}", sentences))
    return IntentModel(built)


def sample_inputs(model: IntentModel, count: int, seed: int = 8) -> list[str]:
    """Inputs made of common words, words of a random intent's examples and unknown words."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        intent = rng.choice(model.intents)
        words = rng.choice(list(intent.examples)).split()
        mixed = rng.sample(_COMMON, rng.randint(1, 4)) + rng.sample(words, min(len(words), 3))
        mixed += _topic_words(rng, rng.randint(0, 3))
        rng.shuffle(mixed)
        texts.append(" ".join(mixed))
    return texts


def time_matching(
    intents: int = 50, examples: int = 10, inputs: int = 2000, seed: int = 7
) -> float:
    """Microseconds per input for ``IntentModel.match`` (intents x examples sentences)."""
    model = sample_model(intents, examples, seed)
    texts = sample_inputs(model, inputs, seed + 1)
    started = time.perf_counter()
    for text in texts:
        model.match(text)
    return (time.perf_counter() - started) / inputs * 1e6


if __name__ == "__main__":  # pragma: no cover
    print(f"{time_matching():.1f} µs per input (50 intents x 10 examples)")
