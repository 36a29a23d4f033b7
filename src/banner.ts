import type { Config } from './config';

/**
 * What `npm start` prints once the service is up: where the API and the Web UI are, and where each
 * token comes from. It never claims a token is configured when it is the public development one.
 */
export function startupBanner(
  config: Pick<Config, 'adminToken' | 'apiToken' | 'tokenSources' | 'temporalAddress' | 'temporalNamespace'>,
  where: { apiUrl: string; uiUrl?: string; devServer: boolean },
): string {
  const token = (label: string, value: string, source: 'env' | 'dev', variable: string) =>
    source === 'env'
      ? `  ${label} from ${variable}`
      : `  ${label} ${value}   (public development token: set ${variable} for a real one)`;
  return [
    '',
    'Stockhold is running.',
    `  API:              ${where.apiUrl}`,
    ...(where.uiUrl ? [`  Temporal Web UI:  ${where.uiUrl}/namespaces/${config.temporalNamespace}/workflows`] : []),
    `  Temporal server:  ${config.temporalAddress}${where.devServer ? ' (local dev server, state in .data/temporal.db)' : ''}`,
    token('Admin token:     ', config.adminToken, config.tokenSources.admin, 'INVENTORY_ADMIN_TOKEN'),
    token('Client token:    ', config.apiToken, config.tokenSources.api, 'INVENTORY_API_TOKEN'),
    'Press Ctrl-C to stop.',
    '',
  ].join('\n');
}
