/**
 * What `npm start` prints once everything is ready: where the API, the Web UI and the docs are, and
 * the development tokens when they are in use.
 */
import type { Config } from './config';

/**
 * What `npm start` prints once the service is up: where the API and the Web UI are, how many API
 * and worker processes run, which Temporal it uses and how it authenticates there, and where each
 * token comes from. It never claims a token is configured when it is the public development one,
 * and never prints a secret (a configured token, the Temporal API key).
 */
export function startupBanner(
  config: Pick<Config, 'adminToken' | 'apiToken' | 'tokenSources' | 'temporalAddress' | 'temporalNamespace'> &
    Partial<Pick<Config, 'temporalTls' | 'temporalApiKey'>>,
  where: { apiUrl: string; uiUrl?: string; devServer: boolean; processes?: { api: number; workers: number } },
): string {
  // How the service reaches Temporal, never the secrets themselves.
  const auth = [
    ...(config.temporalTls ? [config.temporalTls.clientCert ? 'mTLS' : 'TLS'] : []),
    ...(config.temporalApiKey ? ['API key from TEMPORAL_API_KEY'] : []),
  ];
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 'es'}`;
  const token = (label: string, value: string, source: 'env' | 'dev', variable: string) =>
    source === 'env'
      ? `  ${label} from ${variable}`
      : `  ${label} ${value}   (public development token: set ${variable} for a real one)`;
  return [
    '',
    'Stockhold is running.',
    `  API:              ${where.apiUrl}`,
    ...(where.processes
      ? [
          `  Processes:        ${plural(where.processes.api, 'API process')}${where.processes.api > 1 ? ' sharing the port' : ''}, ${plural(where.processes.workers, 'worker process')}`,
        ]
      : []),
    ...(where.uiUrl ? [`  Temporal Web UI:  ${where.uiUrl}/namespaces/${config.temporalNamespace}/workflows`] : []),
    `  Temporal server:  ${config.temporalAddress}${where.devServer ? ' (local dev server, state in .data/temporal.db)' : ''}${auth.length > 0 ? ` (${auth.join(', ')})` : ''}`,
    `  Namespace:        ${config.temporalNamespace}`,
    token('Admin token:     ', config.adminToken, config.tokenSources.admin, 'INVENTORY_ADMIN_TOKEN'),
    token('Client token:    ', config.apiToken, config.tokenSources.api, 'INVENTORY_API_TOKEN'),
    'Press Ctrl-C to stop.',
    '',
  ].join('\n');
}
