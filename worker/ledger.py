"""The idempotency ledger (DESIGN §4): one entry per idempotency key, claimed with a lease.

States: absent → running (lease held) → succeeded (result kept for replay). A failure deletes the entry
so the same key may run again; checkpoints outlive failures and redeliveries so a retry resumes where
the last attempt stopped. Leases are shorter than the broker's visibility timeout and renewed by one
keeper thread per process while the job runs.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import redis

from worker import keys

log = logging.getLogger(__name__)

# KEYS: ledger, lease, checkpoints. ARGV: fingerprint, owner, lease_ms, ttl_s. A claim also answers which
# sections (worker.mutex) the key's job holds from earlier runs, so the run that ends the job leaves them.
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
local fp = redis.call('HGET', KEYS[1], 'fingerprint')
if state == 'succeeded' then
  if fp == ARGV[1] then return {'replay', redis.call('HGET', KEYS[1], 'result')} end
  return {'mismatch', ''}
end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  if state == 'running' and fp and fp ~= ARGV[1] then
    redis.call('DEL', KEYS[2])
    return {'mismatch', ''}
  end
  redis.call('HSET', KEYS[1], 'state', 'running', 'fingerprint', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  local held = {}
  for _, field in ipairs(redis.call('HKEYS', KEYS[3])) do
    if string.sub(field, 1, 6) == 'mutex:' then table.insert(held, string.sub(field, 7)) end
  end
  return {'claimed', table.concat(held, ' ')}
end
if fp and fp ~= ARGV[1] then return {'mismatch', ''} end
return {'busy', tostring(redis.call('PTTL', KEYS[2]))}
"""

# KEYS: ledger, lease. ARGV: owner, result, ttl_s.
_SUCCEED = """
redis.call('HSET', KEYS[1], 'state', 'succeeded', 'result', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""

# KEYS: ledger, lease. ARGV: owner.
_RELEASE = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  if redis.call('HGET', KEYS[1], 'state') == 'running' then redis.call('DEL', KEYS[1]) end
  return 1
end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

ClaimOutcome = Literal["claimed", "replay", "mismatch", "busy"]


@dataclass(frozen=True)
class Claim:
    key: str
    outcome: ClaimOutcome
    owner: str
    result: dict[str, Any] | None = None
    retry_in_ms: int = 0
    held: tuple[str, ...] = ()  # mutex keys the key's job holds from earlier runs


class Ledger:
    def __init__(self, client: redis.Redis, *, lease_ms: int, ttl_s: int) -> None:
        self.redis = client
        self.lease_ms = lease_ms
        self.ttl_s = ttl_s
        self._succeed = client.register_script(_SUCCEED)
        self._release = client.register_script(_RELEASE)
        self.keeper = LeaseKeeper(client, client.register_script(_RENEW), lease_ms)

    def claim(self, key: str, fingerprint: str) -> Claim:
        pipe = self.redis.pipeline(transaction=False)
        owner = self.queue_claim(pipe, key, fingerprint)
        (answer,) = pipe.execute()
        return self.read_claim(key, owner, answer)

    def queue_claim(self, pipe: Any, key: str, fingerprint: str) -> str:
        """Queue a claim of ``key`` on ``pipe`` (so it shares a round trip); the owner to read it with."""
        owner = uuid.uuid4().hex
        keys_ = [keys.ledger(key), keys.lease(key), keys.checkpoint(key)]
        pipe.eval(_CLAIM, len(keys_), *keys_, fingerprint, owner, self.lease_ms, self.ttl_s)
        return owner

    def read_claim(self, key: str, owner: str, answer: Any) -> Claim:
        outcome, value = (item.decode() if isinstance(item, bytes) else item for item in answer)
        if outcome == "claimed":
            self.keeper.hold(key, owner)
            return Claim(key, "claimed", owner, held=tuple(value.split()))
        if outcome == "replay":
            return Claim(key, "replay", owner, json.loads(value))
        if outcome == "busy":
            return Claim(key, "busy", owner, retry_in_ms=max(int(value), 100))
        return Claim(key, "mismatch", owner)

    def succeed(self, key: str, owner: str, result: dict[str, Any], pipe: Any = None) -> None:
        """Store the result for replay (on ``pipe`` when given, run with the caller's other writes)."""
        self.keeper.drop(key)
        args: list[str | int] = [owner, json.dumps(result), self.ttl_s]
        if pipe is None:
            self._succeed(keys=[keys.ledger(key), keys.lease(key)], args=args)
        else:  # EVAL, not the script object: in a pipeline that costs a SCRIPT EXISTS round trip first
            pipe.eval(_SUCCEED, 2, keys.ledger(key), keys.lease(key), *args)

    def release(self, key: str, owner: str) -> None:
        self.keeper.drop(key)
        self._release(keys=[keys.ledger(key), keys.lease(key)], args=[owner])

    def forget(self, key: str, pipe: Any = None) -> None:
        """Drop a key's entry and checkpoints entirely (a terminated service may be provisioned again)."""
        (pipe or self.redis).delete(keys.ledger(key), keys.checkpoint(key))

    def checkpoints(self, key: str) -> Checkpoints:
        return Checkpoints(self.redis, key, self.ttl_s)


class Checkpoints:
    """The JobContext checkpoint store of one key, kept in Redis."""

    def __init__(self, client: redis.Redis, key: str, ttl_s: int) -> None:
        self.redis = client
        self.idempotency_key = key
        self._key = keys.checkpoint(key)
        self._ttl = ttl_s

    def checkpoint(self, name: str) -> str | None:
        value = self.redis.hget(self._key, name)
        return value.decode() if isinstance(value, bytes) else value

    def save_checkpoint(self, name: str, value: str) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(self._key, name, value)
        pipe.expire(self._key, self._ttl)
        pipe.execute()


class LeaseKeeper:
    """One daemon thread per process renewing every lease this process holds."""

    def __init__(self, client: redis.Redis, renew: Any, lease_ms: int) -> None:
        self._renew = renew
        self._lease_ms = lease_ms
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def hold(self, key: str, owner: str) -> None:
        with self._lock:
            self._held[key] = owner
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()

    def drop(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)

    def _run(self) -> None:
        while not self._wake.wait(self._lease_ms / 3000):
            with self._lock:
                held = list(self._held.items())
            for key, owner in held:
                try:
                    self._renew(keys=[keys.lease(key)], args=[owner, self._lease_ms])
                except redis.RedisError as exc:
                    log.warning("lease renewal failed for a job: %s", type(exc).__name__)
