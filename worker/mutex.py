"""Named mutual exclusion between jobs, for provider steps that no natural key can make safe.

A holder is a job (its idempotency key), not a process: a retry of the same job walks back in, so a
worker killed inside the section does not lock its own successor out. Another job waits (the caller
re-schedules it) until the holder lets go or the time-to-live lapses, which bounds the wait after a
holder died and never came back.
"""

from __future__ import annotations

from typing import Any

import redis

# KEYS: mutex. ARGV: owner, ttl_ms. Returns 0 when held by owner now, else the holder's remaining ms.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 0
end
local left = redis.call('PTTL', KEYS[1])
if left < 1 then return 1 end
return left
"""

# KEYS: mutex. ARGV: owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Mutexes:
    def __init__(self, client: redis.Redis) -> None:
        self._acquire: Any = client.register_script(_ACQUIRE)
        self._release: Any = client.register_script(_RELEASE)

    def acquire(self, key: str, owner: str, ttl_ms: int) -> int:
        """0 when ``owner`` holds ``key`` now (for ``ttl_ms``), else the milliseconds the holder has left."""
        return int(self._acquire(keys=[key], args=[owner, ttl_ms]))

    def release(self, key: str, owner: str) -> bool:
        return bool(self._release(keys=[key], args=[owner]))
