import { ingestProcedure, router } from '../trpc/init.ts';
import { EventInput, IngestBatchInput, IngestBatchResult, IngestResult } from '../services/events/schemas.ts';

export const telemetryRouter = router({
  ingest: ingestProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/events',
        tags: ['telemetry'],
        summary: 'Store one event',
        description: 'Answers `{ id, createdAt }` once the event is committed. Sending the same `id` again stores it once and answers the same receipt.',
      },
    })
    .input(EventInput)
    .output(IngestResult)
    .mutation(async ({ ctx, input }) => {
      const { id, createdAt } = await ctx.services.events.ingestEvent(input);
      return { id, createdAt };
    }),

  ingestBatch: ingestProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/events/batch',
        tags: ['telemetry'],
        summary: 'Store a batch of events',
        description:
          'Stores every valid event and answers one receipt per input event, in input order: `accepted`, `duplicate` (already stored; same id and createdAt as before) or `rejected` (with code, message and field path). One bad event never loses the others.',
      },
    })
    .input(IngestBatchInput)
    .output(IngestBatchResult)
    .mutation(({ ctx, input }) => ctx.services.events.ingestBatch(input.events, { sentAt: input.sentAt })),
});

