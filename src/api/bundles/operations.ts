/** The bundle routes (./routes.ts), described for the OpenAPI document (src/api/openapi/). */
import { skuSchema } from '../../domain/schemas';
import { bundleSchema } from '../../domain/views';
import type { ApiOperation } from '../openapi/document';
import { putBundleBody } from './routes';

/** The routes of ./routes.ts. */
export function bundleOperations(): ApiOperation[] {
  return [
    {
      method: 'put',
      path: '/v1/bundles/:sku',
      access: 'admin',
      tag: 'Bundles',
      summary: 'Create or replace a bundle',
      description:
        'A bundle is a SKU made of other SKUs, with no stock of its own: `GET /v1/skus/:sku` answers its availability from its components. Its id must not be a stocked SKU (409 `SKU_EXISTS`); every component must be one (404 `SKU_NOT_FOUND`; a bundle as a component is 400).',
      pathParams: { sku: { schema: skuSchema, description: "the bundle's id" } },
      body: { schema: putBundleBody, required: true },
      responses: { 200: { description: 'the bundle', json: bundleSchema } },
      errors: ['SKU_NOT_FOUND', 'SKU_EXISTS', 'UNAVAILABLE'],
    },
  ];
}
