/**
 * The dashboard page: sign-in with a read key (or an admin key, then a workspace picked from the
 * list), then the views, all read through the typed client over this service's own origin.
 */
import { createTelemetryClient, type TelemetryClient } from '../client/index.ts';
import { byId, element } from './dom.ts';
import { describeProblem, isForbidden } from './errors.ts';
import { firstEventView } from './first-event-view.ts';
import { funnelView } from './funnel-view.ts';
import { liveView } from './live-view.ts';
import { percentilesView } from './percentiles-view.ts';
import { rejectionsView } from './rejections-view.ts';
import { clearSession, loadSession, saveSession, type Session } from './session.ts';
import { isRangeName, queryWindow, type RangeName } from './time-range.ts';
import { topView } from './top-view.ts';
import type { ViewContext } from './view-context.ts';
import { BREAKDOWNS, volumeView, type Breakdown } from './volume-view.ts';

const REFRESH_EVERY_MS = 60_000;

const signInView = byId('sign-in-view', HTMLElement);
const signInForm = byId('sign-in-form', HTMLFormElement);
const signInError = byId('sign-in-error', HTMLElement);
const signInButton = byId('sign-in-submit', HTMLButtonElement);
const apiKeyInput = byId('api-key', HTMLInputElement);
const workspaceStep = byId('workspace-step', HTMLElement);
const workspaceSelect = byId('workspace-select', HTMLSelectElement);
const workspaceTruncated = byId('workspace-truncated', HTMLElement);
const workspaceName = byId('workspace-name', HTMLElement);
const workspaceSwitch = byId('workspace-switch', HTMLSelectElement);
const dashboardView = byId('dashboard-view', HTMLElement);
const controls = byId('controls', HTMLElement);
const errorBanner = byId('error-banner', HTMLElement);
const breakdownSelect = byId('volume-breakdown', HTMLSelectElement);
const rangeButtons = [...document.querySelectorAll<HTMLButtonElement>('[data-range]')];
const selectedBreakdown = (): Breakdown | undefined => BREAKDOWNS.find((breakdown) => breakdown === breakdownSelect.value);

let client: TelemetryClient | undefined;
let currentSession: Session | undefined;
let scope: { workspaceId?: string } = {};
let range: RangeName = '24h';
/** Bumped by every refresh, so answers of an older one (slower, other range) are dropped. */
let refreshGeneration = 0;
let refreshTimer: ReturnType<typeof setInterval> | undefined;
const problems = new Map<string, string>();

function showProblems() {
  errorBanner.replaceChildren(...[...problems].map(([view, message]) => element('p', {}, `${view}: ${message}`)));
  errorBanner.hidden = problems.size === 0;
}

/** A failed call: a rejected key ends the session; anything else is shown beside the data. */
function reportProblem(view: string, error: unknown): string | undefined {
  const problem = describeProblem(error);
  if (problem.signInAgain) {
    signOut(problem.message);
    return undefined;
  }
  problems.set(view, problem.message);
  showProblems();
  return problem.message;
}

const volume = volumeView();
const top = topView();
const percentiles = percentilesView(() => void runView('Performance', percentiles, (context) => percentiles.load(context)));
const funnel = funnelView(() => void runView('Funnel', funnel, () => funnel.reload()));
const live = liveView((error) => reportProblem('Live', error));
const firstEvent = firstEventView();
const rejections = rejectionsView();

function currentContext(): ViewContext | undefined {
  return client && { client, scope, window: queryWindow(range) };
}

/**
 * Runs one view's load; its failure is shown in that view (and the banner) without stopping the
 * others. A refresh passes one context to all its views, so they cover the same window.
 */
async function runView<T>(
  name: string,
  view: { showProblem(message: string): void },
  load: (context: ViewContext) => Promise<T>,
  context = currentContext(),
): Promise<T | undefined> {
  if (!context) return undefined;
  const generation = refreshGeneration;
  try {
    const result = await load(context);
    if (generation === refreshGeneration) {
      problems.delete(name);
      showProblems();
    }
    return result;
  } catch (error) {
    if (generation !== refreshGeneration) return undefined;
    const message = reportProblem(name, error);
    if (message) view.showProblem(message);
    return undefined;
  }
}

async function refresh() {
  refreshGeneration += 1;
  document.body.dataset['loading'] = 'true';
  const breakdown = selectedBreakdown();
  const generation = refreshGeneration;
  const context = currentContext();
  await Promise.all([
    runView('Event volume', volume, (loaded) => volume.load(loaded, breakdown), context),
    runView('Performance', percentiles, (loaded) => percentiles.load(loaded), context),
    runView('Top events', top, (loaded) => top.load(loaded), context).then((names) =>
      runView('Funnel', funnel, (loaded) => funnel.load(loaded, names ?? []), context),
    ),
    runView('First event', firstEvent, (loaded) => firstEvent.load(loaded), context),
    runView('Refused by adapters', rejections, (loaded) => rejections.load(loaded), context),
  ]);
  // Says whether the figures on screen are final: the styles dim charts meanwhile, and automation can wait on it.
  if (generation === refreshGeneration) document.body.dataset['loading'] = 'false';
}

function showSignIn(message?: string) {
  dashboardView.hidden = true;
  controls.hidden = true;
  workspaceName.hidden = true;
  workspaceSwitch.hidden = true;
  workspaceStep.hidden = true;
  workspaceSelect.replaceChildren();
  apiKeyInput.readOnly = false;
  signInView.hidden = false;
  signInError.textContent = message ?? '';
  signInError.hidden = !message;
  apiKeyInput.focus();
}

function showDashboard(session: Session) {
  currentSession = session;
  client = createTelemetryClient({ url: location.origin, apiKey: session.apiKey });
  scope = session.workspaceId ? { workspaceId: session.workspaceId } : {};
  signInView.hidden = true;
  dashboardView.hidden = false;
  controls.hidden = false;
  live.start(client, scope);
  void showWorkspaceName(client, session);
  void refresh();
  clearInterval(refreshTimer);
  refreshTimer = setInterval(() => {
    if (document.visibilityState === 'visible') void refresh();
  }, REFRESH_EVERY_MS);
}

function signOut(message?: string) {
  clearSession();
  clearInterval(refreshTimer);
  live.stop();
  client = undefined;
  currentSession = undefined;
  refreshGeneration += 1;
  problems.clear();
  showProblems();
  showSignIn(message);
}

/** The open workspace's name in the header (its id in the tooltip); a workspace gone since sign-in signs out. */
async function showWorkspaceName(reader: TelemetryClient, session: Session) {
  try {
    const workspace = await reader.telemetry.workspace.query(session.workspaceId ? { workspaceId: session.workspaceId } : {});
    if (reader !== client) return;
    workspaceName.textContent = workspace.name;
    workspaceName.title = workspace.id;
    workspaceName.hidden = false;
    firstEvent.setWorkspace(workspace.id);
    // An admin session (it names its workspace) switches between the workspaces its key may read.
    if (!session.workspaceId) return;
    const { workspaces } = await reader.admin.workspaces.list.query();
    if (reader !== client || workspaces.length < 2) return;
    workspaceSwitch.replaceChildren(...workspaces.map((listed) => element('option', { value: listed.id }, listed.name)));
    workspaceSwitch.value = workspace.id;
    workspaceSwitch.hidden = false;
    workspaceName.hidden = true;
  } catch (error) {
    if (reader === client) reportProblem('Workspace', error);
  }
}

/**
 * Step one checks the key: an admin key lists the workspaces it may read (one opens at once, more
 * are offered in a select); a read key is bound to its workspace and opens it. Step two (admin
 * keys with several workspaces) opens the one picked.
 */
signInForm.addEventListener('submit', async (submitted) => {
  submitted.preventDefault();
  const apiKey = apiKeyInput.value.trim();
  if (!workspaceStep.hidden && workspaceSelect.value) {
    openSession({ apiKey, workspaceId: workspaceSelect.value });
    return;
  }
  const probe = createTelemetryClient({ url: location.origin, apiKey });
  signInButton.disabled = true;
  try {
    const listed = await probe.admin.workspaces.list.query().catch((error: unknown) => {
      // Not an admin key: a read key, bound to its workspace, which the next call proves it can read.
      if (isForbidden(error)) return undefined;
      throw error;
    });
    if (!listed) {
      await probe.telemetry.workspace.query({});
      openSession({ apiKey });
      return;
    }
    const [only, ...others] = listed.workspaces;
    if (!only) {
      showSignIn('There is no workspace yet: create one first (telemetry workspaces create "My app", or POST /api/admin/workspaces).');
      return;
    }
    if (others.length === 0) {
      openSession({ apiKey, workspaceId: only.id });
      return;
    }
    workspaceSelect.replaceChildren(...listed.workspaces.map((workspace) => element('option', { value: workspace.id }, workspace.name)));
    workspaceTruncated.hidden = !listed.truncated;
    workspaceStep.hidden = false;
    // The key was checked: picking another workspace must not send a different one.
    apiKeyInput.readOnly = true;
    signInError.hidden = true;
    workspaceSelect.focus();
  } catch (error) {
    showSignIn(describeProblem(error).message);
  } finally {
    signInButton.disabled = false;
  }
});

workspaceSwitch.addEventListener('change', () => {
  if (currentSession && workspaceSwitch.value) openSession({ apiKey: currentSession.apiKey, workspaceId: workspaceSwitch.value });
});

function openSession(session: Session) {
  saveSession(session);
  apiKeyInput.value = '';
  showDashboard(session);
}

for (const button of rangeButtons) {
  button.addEventListener('click', () => {
    const chosen = button.dataset['range'];
    if (!isRangeName(chosen) || chosen === range) return;
    range = chosen;
    for (const other of rangeButtons) other.setAttribute('aria-pressed', String(other === button));
    void refresh();
  });
}
breakdownSelect.addEventListener('change', () => void runView('Event volume', volume, (context) => volume.load(context, selectedBreakdown())));
byId('refresh', HTMLButtonElement).addEventListener('click', () => void refresh());
byId('sign-out', HTMLButtonElement).addEventListener('click', () => signOut());

const restored = loadSession();
if (restored) showDashboard(restored);
else showSignIn();
