import { z } from 'zod';
import { REJECTION_CODES } from '../events/schemas.ts';

/** The foreign wire formats this service speaks (docs/ingest-adapters.md). */
export const ADAPTER_NAMES = ['otlp', 'segment', 'posthog'] as const;
export const AdapterName = z.enum(ADAPTER_NAMES);
export type AdapterName = z.infer<typeof AdapterName>;

/**
 * Why an adapter did not store a record: a receipt's rejection code, or `malformed_request` when
 * the whole request could not be read (its records were never seen).
 */
export const ADAPTER_REJECTION_REASONS = [...REJECTION_CODES, 'malformed_request'] as const;
export const AdapterRejectionReason = z.enum(ADAPTER_REJECTION_REASONS);
export type AdapterRejectionReason = z.infer<typeof AdapterRejectionReason>;

/** Most recent refusals one read answers, and kept per workspace. */
export const MAX_KEPT_REJECTIONS = 100;

export const AdapterRejectionsInput = z.object({
  limit: z.number().int().min(1).max(MAX_KEPT_REJECTIONS).default(20).describe(`Most recent refusals to answer (at most ${MAX_KEPT_REJECTIONS})`),
});
export type AdapterRejectionsInput = z.infer<typeof AdapterRejectionsInput>;

export const AdapterRejectionCount = z.object({
  adapter: AdapterName,
  reason: AdapterRejectionReason,
  refused: z.number().int().describe('Records refused for this reason since the workspace first sent through this adapter'),
  lastAt: z.date().describe('When the last of them was refused'),
});
export type AdapterRejectionCount = z.infer<typeof AdapterRejectionCount>;

export const AdapterRejection = z.object({
  at: z.date(),
  adapter: AdapterName,
  reason: AdapterRejectionReason,
  message: z.string().describe('Why, in words (clipped to 500 characters)'),
  path: z.string().describe('Dotted path of the offending field inside the mapped event, empty for the whole record or request'),
  recordIndex: z.number().int().nullable().describe("The record's position in its request; null when the whole request was refused"),
  requestId: z.string().nullable().describe('The request id the refusal was answered with (X-Request-Id), to find it in logs'),
});
export type AdapterRejection = z.infer<typeof AdapterRejection>;

export const AdapterRejections = z.object({
  counts: z.array(AdapterRejectionCount).describe('Totals by adapter and reason, most recent first'),
  recent: z.array(AdapterRejection).describe(`The latest refusals, newest first; the last ${MAX_KEPT_REJECTIONS} are kept`),
});
export type AdapterRejections = z.infer<typeof AdapterRejections>;
