/**
 * The service's version, read from its package manifest so the front page, the OpenAPI document
 * and the logs never drift from what was released. Bundlers inline the manifest at build time.
 */
import manifest from '../package.json' with { type: 'json' };

export const SERVICE_VERSION: string = manifest.version;
