/**
 * The service's router with one breaking change: `telemetry.ingest` takes `eventName` where it
 * takes `name`. The client package test builds a package from it and checks that an app's calls
 * that compile against the live router no longer do (how CI catches a router change that would
 * break its clients). Types only: nothing runs it.
 */
import type { TRPCBuiltRouter, TRPCMutationProcedure } from '@trpc/server';
import type { AppRouter as LiveRouter } from '../../server/routers/index.ts';

type Root = LiveRouter['_def']['_config']['$types'];
type Procedures = LiveRouter['_def']['record'];
type Ingest = Procedures['telemetry']['ingest']['_def']['$types'];

export type AppRouter = TRPCBuiltRouter<
  Root,
  Omit<Procedures, 'telemetry'> & {
    telemetry: Omit<Procedures['telemetry'], 'ingest'> & {
      ingest: TRPCMutationProcedure<{
        input: { source: 'web' | 'backend'; eventType: string; eventName: string };
        output: Ingest['output'];
        meta: Root['meta'];
      }>;
    };
  }
>;
