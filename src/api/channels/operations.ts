/** The channel routes (./routes.ts), described for the OpenAPI document (src/api/openapi/). */
import { channelListSchema, channelSchema } from '../../domain/views';
import type { ApiOperation } from '../openapi/document';
import { channelNameSchema } from '../../domain/schemas';
import { putChannelBody } from './routes';

const channel = { channel: { schema: channelNameSchema, description: 'the channel' } };

/** The routes of ./routes.ts. */
export function channelOperations(): ApiOperation[] {
  return [
    {
      method: 'put',
      path: '/v1/channels/:channel',
      access: 'admin',
      tag: 'Locations and channels',
      summary: 'Create or replace a channel',
      description:
        'Every location must exist. Putting `default` replaces the implicit one (every location in creation order, `priority`), which from then on no longer takes in new locations by itself.',
      pathParams: channel,
      body: { schema: putChannelBody, required: true },
      responses: { 200: { description: 'the channel', json: channelSchema } },
      errors: ['LOCATION_NOT_FOUND', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/channels',
      access: 'admin',
      tag: 'Locations and channels',
      summary: 'Every channel',
      responses: { 200: { description: '`default` first', json: channelListSchema } },
      errors: ['UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/channels/:channel',
      access: 'client',
      tag: 'Locations and channels',
      summary: 'A channel',
      description: '`default` exists unless replaced: every location in creation order, `priority`.',
      pathParams: channel,
      responses: { 200: { description: 'the channel', json: channelSchema } },
      errors: ['CHANNEL_NOT_FOUND', 'UNAVAILABLE'],
    },
  ];
}
