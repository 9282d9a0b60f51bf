"""Rate limits on a moving window, in memory or shared through Redis.

In memory, each worker process counts on its own; set REDIS_URL so that every
worker (and every replica) shares one count. When Redis cannot be reached the
limiter falls back to counting in this process, logs one warning, and goes
back to Redis once it answers again: a limit slightly looser for a while is
better than refusing every login.
"""

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

logger = logging.getLogger("app.rate_limit")

# Seconds: a Redis that does not answer must not hold up the request.
REDIS_TIMEOUT_SECONDS = 0.5


def _storage(uri: str, **options: float | str) -> Storage:
    storage = storage_from_string(uri, wrap_exceptions=True, **options)
    assert isinstance(storage, Storage)  # async+ URIs give async storages
    return storage


class RateLimiter:
    def __init__(self, limit: str, redis_url: str | None = None) -> None:
        self.item: RateLimitItem = parse(limit)
        self._memory = MovingWindowRateLimiter(_storage("async+memory://"))
        self.redis: Storage | None = None
        self._shared: MovingWindowRateLimiter | None = None
        if redis_url:
            self.redis = _storage(
                f"async+{redis_url}",
                implementation="redispy",
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._shared = MovingWindowRateLimiter(self.redis)
        self.degraded = False  # True while Redis is unreachable

    async def hit(self, key: str) -> int | None:
        """Count one request for `key`: None if allowed, else seconds to wait."""
        if self._shared is not None:
            try:
                retry_after = await self._hit(self._shared, key)
            except StorageError as exc:
                if not self.degraded:
                    self.degraded = True
                    logger.warning(
                        "Redis unreachable (%s); rate limits count per process "
                        "until it is back",
                        exc.storage_error,
                    )
            else:
                if self.degraded:
                    self.degraded = False
                    logger.warning("Redis reachable again; rate limits are shared")
                return retry_after
        return await self._hit(self._memory, key)

    async def _hit(self, limiter: MovingWindowRateLimiter, key: str) -> int | None:
        if await limiter.hit(self.item, key):
            return None
        stats = await limiter.get_window_stats(self.item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))


async def redis_reachable(limiter: RateLimiter) -> bool | None:
    """For readiness: None when no Redis is configured, else whether it answers."""
    if limiter.redis is None:
        return None
    return await limiter.redis.check()  # a PING; False on any failure
