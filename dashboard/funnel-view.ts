import type { TelemetryOutputs } from '../client/index.ts';
import { bar, byId, element, formatCount, formatPercent, renderTable } from './dom.ts';
import type { ViewContext } from './view-context.ts';

type FunnelStep = TelemetryOutputs['telemetry']['stats']['funnel']['steps'][number];

const MIN_STEPS = 2;
const MAX_STEPS = 8;
const EXAMPLE_STEP_COUNT = 3;

const parseSteps = (text: string) =>
  text
    .split(',')
    .map((step) => step.trim())
    .filter((step) => step !== '');

/**
 * Users who did each step in order (each within a day of the first). The steps are the user's:
 * until they type some, the card says what to type (with the range's top names as the example)
 * instead of guessing a funnel from whatever names happen to be frequent.
 */
export function funnelView(onStepsChange: () => void) {
  const form = byId('funnel-form', HTMLFormElement);
  const input = byId('funnel-steps', HTMLInputElement);
  const table = byId('funnel-table', HTMLTableElement);
  const hint = byId('funnel-hint', HTMLElement);
  const example = byId('funnel-example', HTMLElement);
  let lastContext: ViewContext | undefined;

  const note = (text: string) => {
    table.hidden = false;
    renderTable(table, [{ header: 'Funnel', cell: (message: string) => message }], [text]);
  };

  async function query({ client, scope, window }: ViewContext) {
    const steps = parseSteps(input.value);
    hint.hidden = steps.length > 0;
    if (steps.length === 0) {
      table.hidden = true;
      return;
    }
    if (steps.length < MIN_STEPS || steps.length > MAX_STEPS) {
      note(`Enter ${MIN_STEPS} to ${MAX_STEPS} event names, separated by commas.`);
      return;
    }
    const result = await client.telemetry.stats.funnel.query({ ...scope, from: window.from, to: window.to, steps: steps.map((name) => ({ name })) });
    const firstUsers = result.steps[0]?.users ?? 0;
    table.hidden = false;
    renderTable<FunnelStep>(
      table,
      [
        { header: 'Step', cell: (step) => `${step.index + 1}. ${step.name}` },
        { header: 'Users', numeric: true, cell: (step) => element('span', { class: 'count', 'data-value': String(step.users) }, formatCount(step.users)) },
        { header: 'From previous', numeric: true, cell: (step) => formatPercent(step.conversionFromPrevious) },
        {
          header: 'From first',
          numeric: true,
          // The service leaves the first step's conversion empty; everyone who started is 100% of itself.
          cell: (step) =>
            element(
              'span',
              { class: 'share' },
              bar(firstUsers ? step.users / firstUsers : 0),
              formatPercent(step.index === 0 && firstUsers > 0 ? 1 : step.conversionFromFirst),
            ),
        },
      ],
      result.steps,
      'Users reaching each step, in order, within a day of the first',
    );
  }

  form.addEventListener('submit', (submitted) => {
    submitted.preventDefault();
    onStepsChange();
  });

  return {
    /** `topNames`: the range's most frequent names, offered as the example. */
    async load(context: ViewContext, topNames: readonly string[]) {
      lastContext = context;
      if (topNames.length >= MIN_STEPS) {
        const suggestion = topNames.slice(0, EXAMPLE_STEP_COUNT).join(', ');
        example.textContent = suggestion;
        input.placeholder = suggestion;
      }
      await query(context);
    },
    /** Runs the funnel again with the steps now in the input, in the last loaded window. */
    async reload() {
      if (lastContext) await query(lastContext);
    },
    showProblem(message: string) {
      note(message);
    },
  };
}
