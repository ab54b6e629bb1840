"""What bot processes on several machines share in Redis: keeper leases and idempotency claims,
nonce reservations, and a per-instance ledger summary.

* :class:`RedisKeeperStore` implements :class:`keepers.store.KeeperStore` with the semantics of
  :class:`~keepers.store.SqliteKeeperStore`: each operation is one Lua script (Redis runs a script
  atomically), so check-and-set is atomic across every process on every machine. A lease is a hash
  ``{owner, expires_at}``; a claim a hash ``{owner, claimed_at[, expires_at]}``. Expiry is judged
  by the clock the store is given, or by default by the Redis server's own ``TIME``, so that
  machines whose clocks drift still agree on when a lease ends. Every lease (and every claim with
  a ttl) also gets a Redis ``PEXPIRE`` of its ttl, so Redis drops what has expired by itself.
  The engine claims a candidate's idempotency key here before it sends a bundle, so that of
  several workers exactly one sends it.
* :class:`RedisNonceStore` implements :class:`execution.nonces.NonceStore`: the state is one hash
  ``{version, state}`` and ``compare_and_set`` is a Lua compare-and-set on ``version``, so the
  :class:`~execution.nonces.NonceManager` of each process reserves nonces that no other process
  holds.
* :class:`SharedLedger` is the cross-instance view of the ledger (each instance keeps its own
  SQLite ledger in full): per instance, counts of bundles sent and of their outcomes by status, and
  the realized profit, as one hash ``{ns}:ledger:{instance}``. ``mevbot status`` reads every
  instance with :func:`read_shared_ledger`. Profit is kept exactly as two 64-bit counters (gwei and
  the wei remainder), since wei sums overflow Redis integers.

Keys live under a namespace (default ``mevbot``), so bots of several deployments can share one
Redis. :func:`connect_redis` makes a client with a timeout on every command.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from execution.nonces import NonceState, Reservation
from keepers.store import Lease

Clock = Callable[[], float]

COMMAND_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 2.0
GWEI = 10**9


def connect_redis(url: str, *, command_timeout_s: float = COMMAND_TIMEOUT_S) -> aioredis.Redis:
    """A client for ``url`` (``redis://host:port/db``): every command times out, and a dropped
    connection is retried twice quickly before the error reaches the caller (whose own loop
    backs off for longer outages)."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=command_timeout_s,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2),
        health_check_interval=10,
    )


def raise_if_cancelled() -> None:
    """Stop the current task if it was cancelled: redis-py (8.1 at least) can swallow a
    cancellation that arrives as a reply completes (the redis-py #2028 family), so every loop and
    store call here checks after its Redis calls, and a cancelled task stops instead of going on."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class RedisStoreError(RuntimeError):
    """What Redis holds under one of our keys is not what we wrote there."""


# Every script takes the caller's clock reading as a number, or "" for the server's own time.
_PRELUDE = """
local function now_s(given)
  local n = tonumber(given)
  if n then return n end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function gc_ms(ttl_s) return math.max(1, math.ceil(tonumber(ttl_s) * 1000)) end
"""

_ACQUIRE_LEASE = """
local now = now_s(ARGV[3])
local held = redis.call('HMGET', KEYS[1], 'owner', 'expires_at')
if held[1] and held[1] ~= ARGV[1] and tonumber(held[2]) > now then return false end
local expires = string.format('%.17g', now + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'expires_at', expires)
redis.call('PEXPIRE', KEYS[1], gc_ms(ARGV[2]))
return expires
"""

_GET_LEASE = """
local now = now_s(ARGV[1])
local held = redis.call('HMGET', KEYS[1], 'owner', 'expires_at')
if held[1] and tonumber(held[2]) > now then return held end
return false
"""

_CLAIM = """
local now = now_s(ARGV[3])
local held = redis.call('HMGET', KEYS[1], 'owner', 'expires_at')
if held[1] and (not held[2] or tonumber(held[2]) > now) then return 0 end
redis.call('DEL', KEYS[1])
local claimed_at = string.format('%.17g', now)
local ttl = tonumber(ARGV[2])
if ttl then
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'claimed_at', claimed_at,
             'expires_at', string.format('%.17g', now + ttl))
  redis.call('PEXPIRE', KEYS[1], gc_ms(ttl))
else
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'claimed_at', claimed_at)
end
return 1
"""

_CLAIM_OWNER = """
local now = now_s(ARGV[1])
local held = redis.call('HMGET', KEYS[1], 'owner', 'expires_at')
if held[1] and (not held[2] or tonumber(held[2]) > now) then return held[1] end
return false
"""

# Leases and claims alike: only the owner may delete (expired or not, as SQLite's DELETE does).
_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

_NONCE_CAS = """
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'state', ARGV[3])
return 1
"""


class _Client:
    """A Redis client that a store may own (and then closes with itself)."""

    def __init__(self, client: aioredis.Redis, namespace: str, owns_client: bool) -> None:
        self.redis = client
        self.namespace = namespace
        self._owns_client = owns_client

    def _script(self, body: str) -> Callable[..., Awaitable[Any]]:
        script = self.redis.register_script(_PRELUDE + body)

        async def run(keys: list[str], args: list[Any]) -> Any:
            result = await script(keys=keys, args=args)
            raise_if_cancelled()
            return result

        return run

    async def close(self) -> None:
        if self._owns_client:
            await self.redis.aclose()


class RedisKeeperStore(_Client):
    """:class:`keepers.store.KeeperStore` in Redis, for bot instances on several machines.

    ``clock=None`` (the default) judges expiry by the Redis server's time; pass a clock (as
    :class:`~keepers.store.SqliteKeeperStore` takes one) to judge it by the caller's.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        namespace: str = "mevbot",
        clock: Clock | None = None,
        owns_client: bool = False,
    ) -> None:
        super().__init__(client, namespace, owns_client)
        self._clock = clock
        self._acquire = self._script(_ACQUIRE_LEASE)
        self._get_lease = self._script(_GET_LEASE)
        self._claim = self._script(_CLAIM)
        self._claim_owner = self._script(_CLAIM_OWNER)
        self._release = self._script(_RELEASE)

    @classmethod
    def connect(
        cls, url: str, *, namespace: str = "mevbot", clock: Clock | None = None
    ) -> RedisKeeperStore:
        return cls(connect_redis(url), namespace=namespace, clock=clock, owns_client=True)

    def _now(self) -> str:
        return "" if self._clock is None else repr(float(self._clock()))

    def _lease_key(self, name: str) -> str:
        return f"{self.namespace}:lease:{name}"

    def _claim_key(self, key: str) -> str:
        return f"{self.namespace}:claim:{key}"

    async def acquire_lease(self, name: str, owner: str, ttl_s: float) -> Lease | None:
        expires = await self._acquire(
            keys=[self._lease_key(name)], args=[owner, repr(float(ttl_s)), self._now()]
        )
        return None if expires is None else Lease(name, owner, float(expires))

    async def release_lease(self, name: str, owner: str) -> bool:
        return await self._release(keys=[self._lease_key(name)], args=[owner]) == 1

    async def lease(self, name: str) -> Lease | None:
        held = await self._get_lease(keys=[self._lease_key(name)], args=[self._now()])
        if held is None:
            return None
        owner, expires = held
        return Lease(name, owner.decode(), float(expires))

    async def claim(self, key: str, owner: str, ttl_s: float | None = None) -> bool:
        ttl = "" if ttl_s is None else repr(float(ttl_s))
        return await self._claim(keys=[self._claim_key(key)], args=[owner, ttl, self._now()]) == 1

    async def release_claim(self, key: str, owner: str) -> bool:
        return await self._release(keys=[self._claim_key(key)], args=[owner]) == 1

    async def claim_owner(self, key: str) -> str | None:
        owner = await self._claim_owner(keys=[self._claim_key(key)], args=[self._now()])
        return None if owner is None else owner.decode()


def _reservation_row(r: Reservation) -> list[Any]:
    return [r.nonce, r.key, r.first_block, r.last_block, r.confirmed_at]


def _reservations(rows: Any) -> tuple[Reservation, ...]:
    return tuple(Reservation(*row) for row in rows)


def encode_nonce_state(state: NonceState) -> bytes:
    """The JSON stored for ``state`` (its version is kept beside it)."""
    return orjson.dumps(
        {
            "chain_nonce": state.chain_nonce,
            "synced_block": state.synced_block,
            "reserved": [_reservation_row(r) for r in state.reserved],
            "confirmed": [_reservation_row(r) for r in state.confirmed],
        }
    )


def decode_nonce_state(version: int, blob: bytes) -> NonceState:
    try:
        data = orjson.loads(blob)
        return NonceState(
            version=version,
            chain_nonce=data["chain_nonce"],
            synced_block=data["synced_block"],
            reserved=_reservations(data["reserved"]),
            confirmed=_reservations(data["confirmed"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError) as error:
        raise RedisStoreError(f"nonce state is unreadable: {error!r:.200}") from None


class RedisNonceStore(_Client):
    """:class:`execution.nonces.NonceStore` in Redis: one account's nonce state, shared by every
    process that sends from it (``account`` names the cell, usually the sending address).

    A compare-and-set that loses answers False at once; the
    :class:`~execution.nonces.NonceManager` backs off (jittered, doubling) before it retries.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        account: str,
        *,
        namespace: str = "mevbot",
        owns_client: bool = False,
    ) -> None:
        super().__init__(client, namespace, owns_client)
        self.key = f"{namespace}:nonces:{account.lower()}"
        self.conflicts = 0
        self._cas = self._script(_NONCE_CAS)

    async def load(self) -> NonceState:
        version, blob = await self.redis.hmget(self.key, ["version", "state"])
        raise_if_cancelled()
        if version is None or blob is None:
            return NonceState()
        return decode_nonce_state(int(version), blob)

    async def compare_and_set(self, expected_version: int, state: NonceState) -> bool:
        written = await self._cas(
            keys=[self.key],
            args=[expected_version, state.version, encode_nonce_state(state)],
        )
        if written == 1:
            return True
        self.conflicts += 1
        return False


@dataclass(frozen=True, slots=True)
class InstanceLedger:
    """One bot instance's bundles: how many were sent, their outcomes, the realized profit."""

    instance: str
    counts: dict[str, int]  # "sent" and one entry per outcome status (landed, missed, ...)
    realized_profit_wei: int
    updated_at: float


@dataclass(frozen=True, slots=True)
class SharedLedgerSummary:
    """Every instance's :class:`InstanceLedger` and their sums."""

    instances: tuple[InstanceLedger, ...]
    counts: dict[str, int]
    realized_profit_wei: int


_NON_COUNT_FIELDS = {"profit_gwei", "profit_wei_rem", "updated_at"}


class SharedLedger(_Client):
    """This instance's side of the shared ledger view: call :meth:`record_sent` for each bundle
    sent (one per target block) and :meth:`record_outcome` for each settled one."""

    def __init__(
        self,
        client: aioredis.Redis,
        instance: str,
        *,
        namespace: str = "mevbot",
        owns_client: bool = False,
    ) -> None:
        super().__init__(client, namespace, owns_client)
        self.instance = instance
        self.key = ledger_key(namespace, instance)

    async def record_sent(self, bundles: int = 1) -> None:
        await self._record({"sent": bundles})

    async def record_outcome(self, status: str, realized_profit_wei: int = 0) -> None:
        gwei, rest = divmod(realized_profit_wei, GWEI)
        await self._record({status: 1, "profit_gwei": gwei, "profit_wei_rem": rest})

    async def _record(self, increments: dict[str, int]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(f"{self.namespace}:ledger:instances", self.instance)
            for name, amount in increments.items():
                pipe.hincrby(self.key, name, amount)
            pipe.hset(self.key, "updated_at", repr(time.time()))
            await pipe.execute()
        raise_if_cancelled()


def ledger_key(namespace: str, instance: str) -> str:
    return f"{namespace}:ledger:{instance}"


async def read_shared_ledger(
    client: aioredis.Redis, *, namespace: str = "mevbot"
) -> SharedLedgerSummary:
    """Every instance's counts and profit, and their totals (for ``mevbot status``)."""
    names = sorted(n.decode() for n in await client.smembers(f"{namespace}:ledger:instances"))
    async with client.pipeline(transaction=True) as pipe:
        for name in names:
            pipe.hgetall(ledger_key(namespace, name))
        rows = await pipe.execute()
    instances = []
    totals: dict[str, int] = {}
    for name, raw in zip(names, rows, strict=True):
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        counts = {k: int(v) for k, v in fields.items() if k not in _NON_COUNT_FIELDS}
        profit = int(fields.get("profit_gwei", 0)) * GWEI + int(fields.get("profit_wei_rem", 0))
        instances.append(InstanceLedger(name, counts, profit, float(fields.get("updated_at", 0.0))))
        for status, count in counts.items():
            totals[status] = totals.get(status, 0) + count
    return SharedLedgerSummary(
        tuple(instances), totals, sum(i.realized_profit_wei for i in instances)
    )
