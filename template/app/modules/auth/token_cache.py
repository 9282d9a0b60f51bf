"""Bearer tokens recently found good, so that reads skip re-checking them.

Every authenticated request used to verify the token's signature and load its
user: a quarter of a list's CPU and one of its round trips. A read (GET) may
instead trust, for a few seconds, a token that passed both checks. The price is
bounded and documented (AUTH_CACHE_SECONDS): a user deactivated or deleted
meanwhile, or a token revoked (sign-out everywhere, new password) in another
worker process, keeps read access for at most that long. Writes always check.
"""

import time
from collections.abc import Callable

from app.core.config import settings


class VerifiedTokens:
    """Token -> user id, each entry good for `ttl` seconds and never past the
    token's own expiry. Per process; at most `max_entries`, oldest out first."""

    def __init__(
        self,
        ttl: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, int]] = {}

    def get(self, token: str) -> int | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._entries.pop(token, None)
            return None
        return entry[1]

    def put(self, token: str, user_id: int, token_expires_at: float) -> None:
        """Remember a token that was just verified for an active user.

        `token_expires_at` is the token's "exp" claim (seconds since the epoch)."""
        lifetime = min(self.ttl, token_expires_at - time.time())
        if lifetime <= 0:
            return
        if len(self._entries) >= self.max_entries:
            # Dicts keep insertion order: the first key is the oldest entry.
            self._entries.pop(next(iter(self._entries)))
        self._entries[token] = (self._clock() + lifetime, user_id)

    def forget_user(self, user_id: int) -> None:
        """Drop every token of one user: its tokens were just revoked."""
        for token in [t for t, (_, uid) in self._entries.items() if uid == user_id]:
            del self._entries[token]

    def clear(self) -> None:
        self._entries.clear()


# Per process: a revocation clears this process's entries at once; another
# worker may still trust a revoked token for reads for AUTH_CACHE_SECONDS.
verified_tokens = VerifiedTokens(settings.AUTH_CACHE_SECONDS)
