"""Built-in NLU: local intent matching and slot extraction, no network, no model files.

``IntentModel`` is built once per flow from its intents' example sentences and
matches each input in well under a millisecond (TF-IDF over words and
character trigrams, cosine similarity to the closest example). Slots come from
regular expressions or lists of values (with synonyms).
"""

from flowhook.nlu.matcher import DEFAULT_THRESHOLD, Intent, IntentModel, NluResult
from flowhook.nlu.slots import SlotSpec

__all__ = ["DEFAULT_THRESHOLD", "Intent", "IntentModel", "NluResult", "SlotSpec"]
