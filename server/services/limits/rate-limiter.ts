import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from '../../logger.ts';
import type { RateLimitPolicy } from '../keys/schemas.ts';

/** Whose budget refused a call: the key's own, or the one all keys of its workspace share. */
export type RateLimitBudget = 'key' | 'workspace';

export type RateLimitDecision =
  | { allowed: true }
  /** Over budget now; a retry after `retryAfterSeconds` may pass. */
  | { allowed: false; reason: 'rate'; budget: RateLimitBudget; retryAfterSeconds: number }
  /** Costs more than the whole budget: no retry of the same call can ever pass. */
  | { allowed: false; reason: 'over_budget'; budget: RateLimitBudget; retryAfterSeconds?: undefined };

/** A budget several keys spend from together (a workspace's ceiling), kept under `subject`. */
export interface SharedBudget {
  subject: string;
  policy: RateLimitPolicy;
}

/** Where budgets are kept right now: this process, Redis, or this process because Redis is down. */
export type RateLimitStore = 'memory' | 'redis' | 'memory-fallback';

export interface RateLimiter {
  /**
   * Spends `cost` units (events or calls) of `subject`'s budget under `policy` and, when given, of
   * the `shared` budget too: a call passes only if it fits both, and a call the shared budget
   * refuses gives the key's units back.
   */
  consume(subject: string, cost: number, policy: RateLimitPolicy, shared?: SharedBudget): Promise<RateLimitDecision>;
  store(): RateLimitStore;
  /** How often Redis failed and the in-memory budget answered instead. */
  fallbackCount(): number;
  close(): Promise<void>;
}

// The burst allowance refills over this window, on top of the sustained per-second rate.
const BURST_WINDOW_SECONDS = 10;

/**
 * Per-key and per-workspace budgets with rate-limiter-flexible: a sustained rate (`eventsPerSecond`
 * per 1 s window) plus a burst allowance (`burst` per 10 s window) that pays for whatever a call
 * needs beyond the sustained budget. With a Redis client every instance shares the budgets; if Redis is unreachable
 * each instance keeps limiting with its own in-memory budget (rate-limiter-flexible's insurance
 * limiter) and the switch is logged, so ingest never stops because Redis did.
 * @see https://github.com/animir/node-rate-limiter-flexible/wiki/Options#insuranceLimiter
 */
export function createRateLimiter(options: { redis?: Redis; logger: Logger; keyPrefix?: string }): RateLimiter {
  const { redis, logger } = options;
  const prefix = options.keyPrefix ?? 'telemetry:rl';
  const limiters = new Map<string, { sustained: RateLimiterAbstract; burst: RateLimiterAbstract | undefined }>();
  let redisHealthy = redis ? redis.status === 'ready' : false;
  let fallbacks = 0;
  let inFallback = false;
  let lastRedisError: string | undefined;

  if (redis) {
    redis.on('ready', () => {
      if (inFallback) logger.info('Redis reachable again: rate limits shared across instances');
      redisHealthy = true;
      inFallback = false;
    });
    redis.on('error', (error: Error) => {
      lastRedisError = error.message;
      redisHealthy = false;
    });
    redis.on('end', () => {
      redisHealthy = false;
    });
  }

  const build = (keyPrefix: string, points: number, duration: number): RateLimiterAbstract => {
    const memory = new RateLimiterMemory({ keyPrefix, points, duration });
    if (!redis) return memory;
    return new RateLimiterRedis({ storeClient: redis, keyPrefix, points, duration, insuranceLimiter: memory, rejectIfRedisNotReady: true });
  };

  const limitersFor = (policy: RateLimitPolicy) => {
    const id = `${policy.eventsPerSecond}:${policy.burst}`;
    let pair = limiters.get(id);
    if (!pair) {
      pair = {
        sustained: build(`${prefix}:${id}:rate`, policy.eventsPerSecond, 1),
        burst: policy.burst > 0 ? build(`${prefix}:${id}:burst`, policy.burst, BURST_WINDOW_SECONDS) : undefined,
      };
      limiters.set(id, pair);
    }
    return pair;
  };

  const retryAfter = (rejection: RateLimiterRes) => Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));

  type Spent = { allowed: true; refund: () => Promise<void> } | { allowed: false; retryAfterSeconds: number };

  /** Spends from one budget: the sustained rate first, whatever it cannot pay for from the burst. */
  async function spend(subject: string, cost: number, policy: RateLimitPolicy): Promise<Spent> {
    const { sustained, burst } = limitersFor(policy);
    // Giving back is best effort: a lost refund only makes the budget a little stricter for a second.
    const giveBack = (limiter: RateLimiterAbstract, points: number) =>
      limiter.reward(subject, points).then(
        () => undefined,
        () => undefined,
      );
    try {
      await sustained.consume(subject, cost);
      return { allowed: true, refund: () => giveBack(sustained, cost) };
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      if (!burst) return { allowed: false, retryAfterSeconds: retryAfter(rejection) };
      // The part of this call the sustained budget could not pay for comes out of the burst.
      const overflow = Math.min(cost, rejection.consumedPoints - policy.eventsPerSecond);
      try {
        await burst.consume(subject, overflow);
        return { allowed: true, refund: async () => void (await Promise.all([giveBack(sustained, cost), giveBack(burst, overflow)])) };
      } catch (burstRejection) {
        if (!(burstRejection instanceof RateLimiterRes)) throw burstRejection;
        return { allowed: false, retryAfterSeconds: retryAfter(rejection) };
      }
    }
  }

  return {
    async consume(subject, cost, policy, shared) {
      if (redis && !redisHealthy) {
        fallbacks += 1;
        if (!inFallback) {
          inFallback = true;
          logger.warn('Redis unreachable: rate limits fall back to per-instance memory budgets', { error: lastRedisError });
        }
      }
      // A request larger than a whole budget could never pass; refuse it without spending.
      if (cost > policy.eventsPerSecond + policy.burst) return { allowed: false, reason: 'over_budget', budget: 'key' };
      if (shared && cost > shared.policy.eventsPerSecond + shared.policy.burst) return { allowed: false, reason: 'over_budget', budget: 'workspace' };
      // The key first: a key over its own budget never eats into what its workspace's other keys share.
      const own = await spend(subject, cost, policy);
      if (!own.allowed) return { allowed: false, reason: 'rate', budget: 'key', retryAfterSeconds: own.retryAfterSeconds };
      if (!shared) return { allowed: true };
      const together = await spend(shared.subject, cost, shared.policy);
      if (together.allowed) return { allowed: true };
      await own.refund();
      return { allowed: false, reason: 'rate', budget: 'workspace', retryAfterSeconds: together.retryAfterSeconds };
    },
    store: () => (redis ? (redisHealthy ? 'redis' : 'memory-fallback') : 'memory'),
    fallbackCount: () => fallbacks,
    async close() {
      limiters.clear();
    },
  };
}
