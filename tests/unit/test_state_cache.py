"""The session state cache: least recently used out first, whatever came and went before."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flowhook.sessions.state_cache import SessionKey, StateCache

Step = tuple[str, int]

steps = st.lists(
    st.tuples(st.sampled_from(["get", "put", "drop"]), st.integers(0, 3)), max_size=100
)


def key(n: int) -> SessionKey:
    return ("endpoint", f"session-{n}")


@given(capacity=st.integers(1, 3), script=steps)
def test_the_cache_matches_a_plain_lru_model(capacity: int, script: list[Step]) -> None:
    """Every get, put and drop leaves the cache holding exactly what a least-recently-used
    list of that capacity holds, and a get answers as the list would."""
    cache = StateCache(capacity)
    model: list[tuple[SessionKey, dict[str, Any]]] = []  # least recently used first
    for op, n in script:
        k = key(n)
        held = next((s for kk, s in model if kk == k), None)
        if op == "get":
            assert cache.get(k) == held
            if held is not None:
                model = [(kk, s) for kk, s in model if kk != k] + [(k, held)]
        elif op == "put":
            state = {"n": n, "step": len(model)}
            cache.put(k, state)
            model = [(kk, s) for kk, s in model if kk != k] + [(k, state)]
            model = model[-capacity:]
        else:
            cache.drop(k)
            model = [(kk, s) for kk, s in model if kk != k]
        assert [key(i) in cache for i in range(4)] == [key(i) in dict(model) for i in range(4)]
    for kk, state in model:
        assert cache.get(kk) == state
    assert all(cache.get(key(n)) is None for n in range(4) if key(n) not in dict(model))


def test_a_full_cache_turned_over_many_times_still_evicts_the_oldest() -> None:
    """Past many evictions (where a plain dict piles up deleted slots at its front) the
    next eviction still takes the least recently used session, and a get refreshes one."""
    cache = StateCache(100)
    for n in range(10_000):
        cache.put(key(n), {"n": n})
    assert cache.get(key(9_899)) is None
    assert cache.get(key(9_900)) == {"n": 9_900}  # now the most recently used
    cache.put(key(10_000), {"n": 10_000})
    assert cache.get(key(9_901)) is None  # the oldest went
    assert cache.get(key(9_900)) == {"n": 9_900}
