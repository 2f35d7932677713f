from __future__ import annotations

import fakeredis

from worker import keys
from worker.ledger import Ledger


def make() -> Ledger:
    return Ledger(fakeredis.FakeRedis(), lease_ms=1000, ttl_s=60)


def test_claim_then_succeed_then_replay() -> None:
    ledger = make()
    claim = ledger.claim("k", "fp")
    assert claim.outcome == "claimed"
    ledger.succeed("k", claim.owner, {"status": "succeeded", "data": {"x": 1}})
    replay = ledger.claim("k", "fp")
    assert replay.outcome == "replay"
    assert replay.result == {"status": "succeeded", "data": {"x": 1}}


def test_live_lease_is_busy_and_other_payload_is_a_mismatch() -> None:
    ledger = make()
    ledger.claim("k", "fp")
    busy = ledger.claim("k", "fp")
    assert busy.outcome == "busy"
    assert 0 < busy.retry_in_ms <= 1000
    assert ledger.claim("k", "other").outcome == "mismatch"


def test_release_lets_the_key_run_again_with_any_payload() -> None:
    ledger = make()
    claim = ledger.claim("k", "fp")
    ledger.release("k", claim.owner)
    assert ledger.claim("k", "other").outcome == "claimed"


def test_expired_lease_of_a_dead_worker_can_be_taken_over() -> None:
    ledger = make()
    ledger.claim("k", "fp")
    ledger.keeper.drop("k")
    ledger.redis.delete(keys.lease("k"))  # the lease ran out: its holder is gone
    assert ledger.claim("k", "fp").outcome == "claimed"


def test_checkpoints_survive_release() -> None:
    ledger = make()
    claim = ledger.claim("k", "fp")
    ledger.checkpoints("k").save_checkpoint("username", "bob_1a2b")
    ledger.release("k", claim.owner)
    assert ledger.checkpoints("k").checkpoint("username") == "bob_1a2b"
    ledger.forget("k")
    assert ledger.checkpoints("k").checkpoint("username") is None


def test_a_stale_owner_cannot_release_a_new_claim() -> None:
    ledger = make()
    old = ledger.claim("k", "fp")
    ledger.redis.delete(keys.lease("k"))
    new = ledger.claim("k", "fp")
    ledger.release("k", old.owner)
    assert ledger.claim("k", "fp").outcome == "busy"
    assert new.outcome == "claimed"
