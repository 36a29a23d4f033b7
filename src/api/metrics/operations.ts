/** The routes of the SKUs watched for /metrics (./routes.ts), described for the OpenAPI document (src/api/openapi/). */
import { skuSchema } from '../../domain/schemas';
import type { ApiOperation } from '../openapi/document';
import { watchedSkusSchema } from './routes';

const sku = { sku: { schema: skuSchema, description: 'the SKU' } };

/** GET, PUT and DELETE of the SKUs watched for /metrics (src/api/metrics/routes.ts). */
export function watchedSkuOperations(): ApiOperation[] {
  const answer = (description: string) => ({ 200: { description, json: watchedSkusSchema } });
  return [
    {
      method: 'get',
      path: '/v1/metrics/watched-skus',
      access: 'admin',
      tag: 'Metrics',
      summary: 'The SKUs with stock gauges in /metrics',
      description:
        'An addition to the contract: `/metrics` has `stockhold_stock_units{sku}` for these SKUs only, so its series stay bounded.',
      responses: answer('the watched SKUs'),
      errors: ['UNAVAILABLE'],
    },
    {
      method: 'put',
      path: '/v1/metrics/watched-skus/:sku',
      access: 'admin',
      tag: 'Metrics',
      summary: 'Watch a SKU',
      description:
        'Idempotent. At most `limit` SKUs (METRICS_WATCHED_SKUS_MAX) at once: one more is 409 `WATCH_LIMIT_REACHED`.',
      pathParams: sku,
      responses: answer('the watched SKUs, this one included'),
      errors: ['SKU_NOT_FOUND', 'WATCH_LIMIT_REACHED', 'UNAVAILABLE'],
    },
    {
      method: 'delete',
      path: '/v1/metrics/watched-skus/:sku',
      access: 'admin',
      tag: 'Metrics',
      summary: 'Stop watching a SKU',
      description: 'Idempotent: a SKU not watched is no error. Its series leave `/metrics` at the next scrape.',
      pathParams: sku,
      responses: answer('the watched SKUs, this one left out'),
      errors: ['UNAVAILABLE'],
    },
  ];
}
