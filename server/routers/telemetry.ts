import { tracked } from '@trpc/server';
import { ingestProcedure, mapStreamErrors, readProcedure, router } from '../trpc/init.ts';
import { LiveInput, LiveTicket } from '../services/live/schemas.ts';
import { ListEventsInput, ListEventsResult } from '../services/stats/schemas.ts';
import { statsRouter } from './stats.ts';
import { AdapterRejections, AdapterRejectionsInput } from '../services/rejections/schemas.ts';
import { Workspace } from '../services/workspaces/schemas.ts';
import { EventInputWithFastPath, GetEventInput, IngestBatchInput, IngestBatchResult, IngestResult, StoredEvent } from '../services/events/schemas.ts';

export const telemetryRouter = router({
  ingest: ingestProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/events',
        tags: ['telemetry'],
        protect: true,
        summary: 'Store one event',
        description:
          'Answers `{ id, createdAt }` once the event is committed. Sending the same `id` again stores it once and answers the same receipt. Needs an ingest (or admin) key; a key bound to a workspace stamps it on the event.',
      },
    })
    .input(EventInputWithFastPath)
    .output(IngestResult)
    .mutation(async ({ ctx, input }) => {
      const { id, createdAt } = await ctx.services.ingestor.ingestEvent(input, { workspaceBinding: ctx.workspaceBinding });
      return { id, createdAt };
    }),

  ingestBatch: ingestProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/events/batch',
        tags: ['telemetry'],
        protect: true,
        summary: 'Store a batch of events',
        description:
          'Stores every valid event and answers one receipt per input event, in input order: `accepted`, `duplicate` (already stored; same id and createdAt as before) or `rejected` (with code, message and field path). One bad event never loses the others. Costs one rate-limit unit per event.',
      },
    })
    .input(IngestBatchInput)
    .output(IngestBatchResult)
    .mutation(({ ctx, input }) => ctx.services.ingestor.ingestBatch(input.events, { sentAt: input.sentAt, workspaceBinding: ctx.workspaceBinding })),

  workspace: readProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/workspace',
        tags: ['telemetry'],
        protect: true,
        summary: "The caller's workspace: its id and name",
        description:
          "A read key's or a bound admin key's own workspace; an unbound admin key names one with `workspaceId`. 404 when the workspace does not exist.",
      },
    })
    .output(Workspace)
    .query(({ ctx }) => ctx.services.workspaces.getWorkspace(ctx.workspaceId)),

  events: router({
    list: readProcedure
      .meta({
        openapi: {
          method: 'POST',
          path: '/events/list',
          tags: ['telemetry'],
          protect: true,
          summary: 'List events, newest first',
          description:
            'Filters by time range, type, name, source, user, target and metadata containment. Keyset pagination: pass nextCursor back as cursor; pages stay stable while events arrive.',
        },
      })
      .input(ListEventsInput)
      .output(ListEventsResult)
      .query(({ ctx, input }) => ctx.services.eventReader.listEvents(ctx.workspaceId, input)),

    get: readProcedure
      .meta({
        openapi: {
          method: 'GET',
          path: '/events/{id}',
          tags: ['telemetry'],
          protect: true,
          summary: 'Read one event',
          description: 'Needs a read (or admin) key. An event of another workspace is answered 404, like a missing one.',
        },
      })
      .input(GetEventInput)
      .output(StoredEvent)
      .query(({ ctx, input }) => ctx.services.eventReader.getEvent(input.id, ctx.workspaceId)),
  }),

  stats: statsRouter,

  adapterRejections: readProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/adapter-rejections',
        tags: ['telemetry'],
        protect: true,
        summary: 'What ingest adapters refused in this workspace',
        description:
          'OpenTelemetry, Segment and PostHog SDKs never read per-event results, so what their adapters refused is kept here: totals by adapter and reason, and the latest refusals with their message, field path and request id (the last 100 are kept).',
      },
    })
    .input(AdapterRejectionsInput)
    .output(AdapterRejections)
    .query(({ ctx, input }) => ctx.services.adapterRejections.read(ctx.workspaceId, input)),

  /**
   * Newly committed events of one workspace, as Server-Sent Events. Each event carries its stream
   * id; a client that reconnects with it (`lastEventId`, sent automatically) first receives what it
   * missed while the bus still holds it, then new events, each once.
   */
  live: readProcedure.input(LiveInput).subscription(async function* ({ ctx, input, signal }) {
    const { lastEventId, workspaceId: _scope, ...filter } = input;
    const stream = ctx.services.live.open({ keyId: ctx.key.id, workspaceId: ctx.workspaceId, filter, lastEventId, signal });
    for await (const record of mapStreamErrors(ctx, 'telemetry.live', stream)) {
      yield tracked(record.streamId, record.event);
    }
  }),

  liveTicket: readProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/live/ticket',
        tags: ['telemetry'],
        protect: true,
        summary: 'Mint a short-lived ticket for a live stream',
        description:
          'Keys must not travel in URLs (proxies and access logs keep them), but a browser\'s EventSource cannot send headers. Call this with a read or admin key in the Authorization header; the ticket it answers opens `telemetry.live` streams of the named workspace, with the rights of a read key bound to it, until it expires (LIVE_TICKET_TTL_S). Pass it as connectionParams `{ "ticket": "..." }`. Revoking the key that minted it invalidates it, and ends the streams it opened.',
      },
    })
    .output(LiveTicket)
    .mutation(({ ctx }) => ctx.services.streamTickets.mint(ctx.key.id, ctx.workspaceId)),
});
