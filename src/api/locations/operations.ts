/** The location routes (./routes.ts), described for the OpenAPI document (src/api/openapi/). */
import { locationListSchema, locationSchema } from '../../domain/views';
import type { ApiOperation } from '../openapi/document';
import { createLocationBody } from './routes';

/** The routes of ./routes.ts. */
export function locationOperations(): ApiOperation[] {
  return [
    {
      method: 'post',
      path: '/v1/locations',
      access: 'admin',
      tag: 'Locations and channels',
      summary: 'Create a location',
      description:
        'A place where units are counted (a warehouse, a store, a supplier). It joins the channel `default` while no admin has replaced that channel.',
      body: { schema: createLocationBody, required: true },
      responses: { 201: { description: 'the location', json: locationSchema } },
      errors: ['LOCATION_EXISTS', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/locations',
      access: 'admin',
      tag: 'Locations and channels',
      summary: 'Every location',
      responses: { 200: { description: 'in creation order, `default` first', json: locationListSchema } },
      errors: ['UNAVAILABLE'],
    },
  ];
}
