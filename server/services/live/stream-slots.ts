import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A held stream slot; `release` is idempotent. */
export interface StreamLease {
  release(): void;
}

/** Counts a key's open live streams across every instance. */
export interface SharedStreamSlots {
  /** A lease, or undefined when the key already holds `limit` streams. Throws when the store cannot answer. */
  acquire(keyId: string, limit: number): Promise<StreamLease | undefined>;
}

// Drops expired leases, then takes one if fewer than the limit are held: one atomic step.
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

/**
 * Stream slots in Redis: one sorted set per key (`<prefix><keyId>`) of leases scored by their
 * expiry. A holder renews its lease every third of `leaseMs`; a lease of an instance that died
 * expires on its own, so a crash never leaves a key locked out for longer than `leaseMs`.
 */
export function createRedisStreamSlots(options: { redis: Redis; prefix?: string; leaseMs?: number }): SharedStreamSlots {
  const { redis } = options;
  const prefix = options.prefix ?? 'telemetry:live:slots:';
  const leaseMs = options.leaseMs ?? 60_000;
  return {
    async acquire(keyId, limit) {
      const key = `${prefix}${keyId}`;
      const member = randomUUID();
      const now = Date.now();
      const granted = await redis.eval(ACQUIRE, 1, key, now, now + leaseMs, limit, member, leaseMs * 2);
      if (granted !== 1) return undefined;
      const renew = setInterval(
        () => {
          const expiry = Date.now() + leaseMs;
          redis
            .multi()
            .zadd(key, 'XX', expiry, member)
            .pexpire(key, leaseMs * 2)
            .exec()
            .catch(() => {}); // Redis away: the lease lapses, which frees the slot rather than locking it
        },
        Math.max(1000, Math.floor(leaseMs / 3)),
      );
      renew.unref();
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          clearInterval(renew);
          redis.zrem(key, member).catch(() => {});
        },
      };
    },
  };
}
