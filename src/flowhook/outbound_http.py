"""One pooled aiohttp client session for the calls flows and pipelines make (http and
llm nodes, NLU connectors, translation), created lazily inside the running loop
because aiohttp binds a session to the loop that creates it."""

from __future__ import annotations

import aiohttp


class LazySession:
    def __init__(
        self, user_agent: str = "flowhook", *, limit: int = 100, limit_per_host: int = 20
    ) -> None:
        self._user_agent = user_agent
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._limit, limit_per_host=self._limit_per_host
                ),
                headers={"User-Agent": self._user_agent},
            )
            self._session = session
        return session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
