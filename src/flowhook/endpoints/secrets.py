"""Unguessable tokens and API keys, and how keys are stored (only as a hash)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_KEY_PREFIX = "fhk_"


def new_url_token() -> str:
    """The secret part of an endpoint URL: 192 bits of randomness."""
    return secrets.token_urlsafe(24)


_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
MAX_URL_TOKEN_LENGTH = 64


def is_well_formed_url_token(token: str) -> bool:
    """Whether ``token`` could be a URL token at all: checked before any lookup, so
    junk in the URL never reaches the database (or the cache)."""
    return 0 < len(token) <= MAX_URL_TOKEN_LENGTH and _TOKEN_ALPHABET.issuperset(token)


def new_api_key() -> str:
    """An endpoint API key: 256 bits of randomness, recognisable by its prefix."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # The key carries 256 bits of entropy, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_display_prefix(key: str) -> str:
    """The first characters of a key, safe to show so people can tell keys apart."""
    return key[: len(API_KEY_PREFIX) + 4]


def matches_any(candidate_hash: str, stored_hashes: tuple[str, ...]) -> str | None:
    """Constant-time comparison of a presented key's hash against every stored hash.

    Returns the matching stored hash, or None. Every stored hash is compared, so
    the time taken does not reveal which key (or whether any) matched early.
    """
    found = None
    for stored in stored_hashes:
        if hmac.compare_digest(candidate_hash, stored):
            found = stored
    return found
