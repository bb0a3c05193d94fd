/** `npm run build` step: bundles the dashboard into dist/dashboard, where the built server serves it from. */
import { findDashboardSources, writeDashboardAssets } from '../server/http/dashboard.ts';

await writeDashboardAssets(findDashboardSources(), 'dist/dashboard');
