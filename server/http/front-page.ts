import { createHash } from 'node:crypto';
import { Hono } from 'hono';
import { html, raw } from 'hono/html';
import { secureHeaders } from 'hono/secure-headers';

export interface FrontPageOptions {
  /** The service's version, shown under its name. */
  version: string;
}

/** The pages a newcomer looks for first, in the order the page lists them. */
export const FRONT_PAGE_LINKS = [
  { path: '/docs', label: 'API explorer', what: 'every procedure, tried from the browser' },
  { path: '/dashboard', label: 'Dashboard', what: 'volume, top events, performance, funnels, live events' },
  { path: '/metrics', label: 'Metrics', what: 'Prometheus exposition' },
  { path: '/healthz', label: 'Health', what: 'answers 200 while the process runs' },
] as const;

/** A first event any ingest key accepts: a custom event from a shell, no workspace named (the key's). */
export const FIRST_EVENT = { source: 'cli', eventType: 'custom', name: 'hello.world', metadata: { from: 'front page' } } as const;

export interface FirstStep {
  title: string;
  explanation: string;
  commands: { label: string; command: string }[];
}

const shellQuote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

/** The three steps from nothing to an event on the dashboard, with commands for this service's origin. */
export function firstSteps(origin: string): FirstStep[] {
  /** `body`: the shell word after -d, already quoted. */
  const curl = (path: string, key: string, body: string) =>
    [`curl -X POST ${origin}${path}`, `  -H "Authorization: Bearer $${key}" -H 'Content-Type: application/json'`, `  -d ${body}`].join(' \\\n');
  return [
    {
      title: 'Create a workspace',
      explanation:
        'With the admin key the service printed on its first start (or TELEMETRY_ADMIN_KEY). A workspace holds one app’s events; its id is in the answer.',
      commands: [
        { label: 'CLI', command: `export TELEMETRY_URL=${origin} TELEMETRY_KEY=$ADMIN_KEY\ntelemetry workspaces create "My app"` },
        { label: 'curl', command: curl('/api/admin/workspaces', 'ADMIN_KEY', shellQuote(JSON.stringify({ name: 'My app' }))) },
      ],
    },
    {
      title: 'Create keys',
      explanation: 'An ingest key for the app that sends events, a read key for the dashboard. Each secret is shown once, in the answer.',
      commands: [
        {
          label: 'CLI',
          command:
            'telemetry keys create --kind ingest --workspace "$WORKSPACE_ID" --name "My app"\ntelemetry keys create --kind read --workspace "$WORKSPACE_ID"',
        },
        {
          label: 'curl, the ingest key',
          // The workspace id comes from the shell: the JSON's quotes end around it.
          command: curl('/api/admin/keys', 'ADMIN_KEY', `'{"kind":"ingest","workspaceId":"'"$WORKSPACE_ID"'"}'`),
        },
        { label: 'curl, the read key', command: curl('/api/admin/keys', 'ADMIN_KEY', `'{"kind":"read","workspaceId":"'"$WORKSPACE_ID"'"}'`) },
      ],
    },
    {
      title: 'Send an event',
      explanation: 'The ingest key stamps its workspace on the event. Then open the dashboard with the read key.',
      commands: [{ label: 'curl', command: curl('/api/events', 'INGEST_KEY', shellQuote(JSON.stringify(FIRST_EVENT))) }],
    },
  ];
}

const STYLES = `
:root { color-scheme: light dark; --muted: #6b7280; --line: rgba(127,127,127,.3); --code: rgba(127,127,127,.12); }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 52rem; padding: 1.5rem 1rem 3rem; font: 16px/1.5 system-ui, sans-serif; }
h1 { margin: 0; font-size: 1.7rem; }
.version { color: var(--muted); margin: 0 0 1.5rem; }
nav ul { list-style: none; padding: 0; display: grid; grid-template-columns: repeat(auto-fit, minmax(11rem, 1fr)); gap: .6rem; }
nav li { border: 1px solid var(--line); border-radius: .5rem; padding: .6rem .8rem; }
nav a { font-weight: 600; }
nav span { display: block; color: var(--muted); font-size: .85rem; }
ol.steps { padding-left: 1.2rem; }
ol.steps > li { margin-bottom: 1.5rem; }
h3 { margin: 0 0 .25rem; font-size: 1.1rem; }
.command { position: relative; margin: .5rem 0; }
.command-label { font-size: .8rem; color: var(--muted); }
pre { margin: .2rem 0 0; padding: .7rem .8rem; background: var(--code); border-radius: .4rem; overflow-x: auto; }
code { font: .85rem/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; user-select: all; }
button.copy { position: absolute; top: 0; right: 0; font-size: .75rem; padding: .15rem .5rem; cursor: pointer; }
`;
const STYLES_HASH = `'sha256-${createHash('sha256').update(STYLES).digest('base64')}'`;

/** Copy buttons: progressive, the commands stay selectable (one click selects a whole block) without it. */
const COPY_SCRIPT = `for (const block of document.querySelectorAll('[data-copy]')) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'copy';
  button.textContent = 'Copy';
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(block.textContent ?? '');
      button.textContent = 'Copied';
    } catch {
      getSelection()?.selectAllChildren(block);
      button.textContent = 'Press Ctrl+C';
    }
  });
  block.closest('.command')?.append(button);
}
`;

/** A bar chart in the service's blue. */
const FAVICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2563eb"/><path d="M3 13V8h2v5zm4 0V4h2v9zm4 0V6h2v7z" fill="#fff"/></svg>';

/**
 * The page runs only its own script and the one stylesheet whose hash it names; it loads nothing
 * from anywhere else.
 */
const frontPageSecurityHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: [STYLES_HASH],
    imgSrc: ["'self'", 'data:'],
    connectSrc: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
    formAction: ["'none'"],
  },
  crossOriginResourcePolicy: 'same-origin',
  crossOriginEmbedderPolicy: false,
  referrerPolicy: 'no-referrer',
});

/**
 * The origin the browser used: the Host it sent (and, behind a TLS-terminating proxy, the protocol
 * it forwarded), so the commands on the page work when copied from the same machine.
 */
export function requestOrigin(url: string, forwardedProto: string | undefined): string {
  const parsed = new URL(url);
  const proto = forwardedProto?.split(',')[0]?.trim();
  if (proto === 'https' || proto === 'http') parsed.protocol = `${proto}:`;
  return parsed.origin;
}

export function renderFrontPage(origin: string, version: string) {
  const steps = firstSteps(origin);
  return html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Telemetry service</title>
    <link rel="icon" href="/favicon.ico" type="image/svg+xml" />
    <style>${raw(STYLES)}</style>
    <script type="module" src="/front-page.js"></script>
  </head>
  <body>
    <header>
      <h1>Telemetry service</h1>
      <p class="version">version <span id="version">${version}</span> · <span id="origin">${origin}</span></p>
    </header>
    <nav aria-label="Pages">
      <ul>
        ${FRONT_PAGE_LINKS.map(({ path, label, what }) => html`<li><a href="${origin}${path}">${label}</a> <code>${path}</code><span>${what}</span></li>`)}
      </ul>
    </nav>
    <h2>First steps</h2>
    <ol class="steps">
      ${steps.map(
        (step) => html`<li>
        <h3>${step.title}</h3>
        <p>${step.explanation}</p>
        ${step.commands.map(
          ({ label, command }) => html`<div class="command"><div class="command-label">${label}</div><pre><code data-copy>${command}</code></pre></div>`,
        )}
      </li>`,
      )}
    </ol>
  </body>
</html>`;
}

/** `GET /` (the page) and `GET /front-page.js` (its copy buttons), to mount with `app.route('/', frontPageRoutes(...))`. */
export function frontPageRoutes({ version }: FrontPageOptions) {
  const routes = new Hono();
  routes.get('/', frontPageSecurityHeaders, (c) => {
    c.header('Cache-Control', 'no-cache');
    return c.html(renderFrontPage(requestOrigin(c.req.url, c.req.header('x-forwarded-proto')), version));
  });
  // Browsers ask every page's origin for one; answering it keeps their consoles free of 404s (/docs too).
  routes.get('/favicon.ico', (c) => {
    c.header('Content-Type', 'image/svg+xml');
    c.header('Cache-Control', 'public, max-age=86400');
    return c.body(FAVICON_SVG);
  });
  routes.get('/front-page.js', frontPageSecurityHeaders, (c) => {
    c.header('Content-Type', 'text/javascript; charset=utf-8');
    c.header('Cache-Control', 'public, max-age=3600');
    return c.body(COPY_SCRIPT);
  });
  return routes;
}
