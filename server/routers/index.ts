import { router } from '../trpc/init.ts';
import { adminRouter } from './admin.ts';
import { telemetryRouter } from './telemetry.ts';

export const appRouter = router({
  telemetry: telemetryRouter,
  admin: adminRouter,
});

/** The contract every client is typed from. Import it with `import type` only. */
export type AppRouter = typeof appRouter;
