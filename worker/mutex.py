"""Named mutual exclusion between jobs, for provider steps that no natural key can make safe.

A holder is a job (its idempotency key), not a process: a retry of the same job walks back in, so a
worker killed inside the section does not lock its own successor out. A section lives for the holder's
``ttl_s`` plus the visibility timeout (a killed holder's message comes back within it), and a holder
re-scheduled inside keeps it until its next run could come back (the countdown plus the same margin).
Each section a job holds is also noted in the job's checkpoints, so whichever run ends the job (a
success, a final failure) leaves the sections earlier runs entered, even one whose worker was killed.
Another job waits (the caller re-schedules it) until the holder leaves or the time-to-live lapses, which
bounds the wait after a holder that never comes back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

# KEYS: mutex, the holder's checkpoints. ARGV: owner, ttl_ms, checkpoint ttl_s.
# Returns 0 when held by owner now, else the holder's remaining ms.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('HSET', KEYS[2], 'mutex:' .. KEYS[1], '1')
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  return 0
end
local left = redis.call('PTTL', KEYS[1])
if left < 1 then return 1 end
return left
"""

# KEYS: the holder's checkpoints, then the mutexes to leave. ARGV: owner.
_RELEASE = """
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
  redis.call('HDEL', KEYS[1], 'mutex:' .. KEYS[i])
end
return 1
"""


# KEYS: mutexes. ARGV: owner, ms. Those still held by owner are kept for at least ms from now.
_EXTEND = """
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] and redis.call('PTTL', KEYS[i]) < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  end
end
return 1
"""


class Mutexes:
    def __init__(self, client: redis.Redis, checkpoint_ttl_s: int) -> None:
        self._acquire: Any = client.register_script(_ACQUIRE)
        self._release: Any = client.register_script(_RELEASE)
        self._extend: Any = client.register_script(_EXTEND)
        self._checkpoint_ttl_s = checkpoint_ttl_s

    def acquire(self, key: str, owner: str, checkpoints: str, ttl_ms: int) -> int:
        """0 when ``owner`` holds ``key`` now (for ``ttl_ms``), else the milliseconds the holder has left."""
        return int(self._acquire(keys=[key, checkpoints], args=[owner, ttl_ms, self._checkpoint_ttl_s]))

    def release(self, held: Iterable[str], owner: str, checkpoints: str) -> None:
        """Leave every mutex of ``held`` that ``owner`` still holds, and forget them in its checkpoints."""
        held = list(held)
        if held:
            self._release(keys=[checkpoints, *held], args=[owner])

    def extend(self, held: Iterable[str], owner: str, hold_ms: int) -> None:
        """Keep every mutex of ``held`` that ``owner`` still holds for at least ``hold_ms`` more."""
        held = list(held)
        if held:
            self._extend(keys=held, args=[owner, hold_ms])
