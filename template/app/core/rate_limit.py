"""Rate limits on a moving window, in memory or shared through Redis.

In memory, each worker process counts on its own; set REDIS_URL so that every
worker (and every replica) shares one count.
"""

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string


class RateLimiter:
    def __init__(self, limit: str, redis_url: str | None = None) -> None:
        self.item: RateLimitItem = parse(limit)
        storage = (
            storage_from_string(f"async+{redis_url}", implementation="redispy")
            if redis_url
            else storage_from_string("async+memory://")
        )
        assert isinstance(storage, Storage)  # async+ URIs give async storages
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(self.storage)

    async def hit(self, key: str) -> int | None:
        """Count one request for `key`: None if allowed, else seconds to wait."""
        if await self._limiter.hit(self.item, key):
            return None
        stats = await self._limiter.get_window_stats(self.item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))
