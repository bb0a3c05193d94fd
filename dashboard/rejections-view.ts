import type { TelemetryOutputs } from '../client/index.ts';
import { byId, element, formatCount, renderTable } from './dom.ts';
import type { ViewContext } from './view-context.ts';

type Rejections = TelemetryOutputs['telemetry']['adapterRejections'];

const LATEST_SHOWN = 10;

const when = (date: Date) => date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });

/**
 * What the OpenTelemetry, Segment and PostHog adapters refused in this workspace: their SDKs never
 * read per-event results, so this card is where a team sees records that were not stored. Hidden
 * while nothing was refused.
 */
export function rejectionsView() {
  const section = byId('rejections', HTMLElement);
  const totals = byId('rejections-totals', HTMLTableElement);
  const latest = byId('rejections-latest', HTMLTableElement);

  return {
    async load({ client, scope }: ViewContext) {
      const { counts, recent }: Rejections = await client.telemetry.adapterRejections.query({ ...scope, limit: LATEST_SHOWN });
      section.hidden = counts.length === 0;
      renderTable<Rejections['counts'][number]>(
        totals,
        [
          { header: 'Adapter', cell: (count) => count.adapter },
          { header: 'Reason', cell: (count) => element('code', {}, count.reason) },
          { header: 'Refused', numeric: true, cell: (count) => formatCount(count.refused) },
          { header: 'Last', cell: (count) => when(count.lastAt) },
        ],
        counts,
        'Records refused by adapter and reason, since the first',
      );
      renderTable<Rejections['recent'][number]>(
        latest,
        [
          { header: 'At', cell: (rejection) => when(rejection.at) },
          { header: 'Adapter', cell: (rejection) => rejection.adapter },
          { header: 'Record', cell: (rejection) => (rejection.recordIndex === null ? 'whole request' : `#${rejection.recordIndex}`) },
          {
            header: 'Why',
            cell: (rejection) => element('span', { class: 'key' }, rejection.path ? `${rejection.path}: ${rejection.message}` : rejection.message),
          },
        ],
        recent,
        `The latest ${LATEST_SHOWN} refusals`,
      );
    },
    showProblem() {
      section.hidden = true;
    },
  };
}
