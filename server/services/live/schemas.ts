import { z } from 'zod';
import { EventFilters } from '../stats/schemas.ts';
import { isStreamId } from './bus.ts';

/** Which committed events a live stream carries (all must match); the workspace comes from the read scope. */
export const LiveFilter = EventFilters.pick({ eventType: true, name: true, source: true, userId: true, targetType: true });
export type LiveFilter = z.infer<typeof LiveFilter>;

export const LiveInput = LiveFilter.extend({
  lastEventId: z
    .string()
    .max(40)
    .refine(isStreamId, 'must be a stream id received from this stream, like "1764230400000-0"')
    .optional()
    .describe('Resume after this event: set automatically by the client (and by EventSource) on reconnect'),
});
export type LiveInput = z.infer<typeof LiveInput>;

export const LiveTicket = z.object({
  ticket: z
    .string()
    .describe('Opens live streams of the named workspace until it expires: send it as connectionParams { ticket } (the `connectionParams` query parameter)'),
  expiresAt: z.date(),
});
export type LiveTicket = z.infer<typeof LiveTicket>;
