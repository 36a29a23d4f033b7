/**
 * The contract's search attributes on a namespace: their names and types as the CLI and tcld
 * spell them, and their registration on a server the service did not start.
 */
import type { Client } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_KEYS } from '../workflows/definitions';

const SA_TYPE_NAMES: Record<string, string> = { KEYWORD: 'Keyword', KEYWORD_LIST: 'KeywordList', DATETIME: 'Datetime' };

/** The contract's search attributes with their type as the Temporal CLI and tcld name it (Keyword, KeywordList, Datetime). */
export const SEARCH_ATTRIBUTES: { name: string; type: string }[] = SEARCH_ATTRIBUTE_KEYS.map((key) => ({
  name: key.name,
  type: SA_TYPE_NAMES[key.type]!,
}));

/** `--search-attribute Name=Type` flags for `temporal server start-dev`. */
export function searchAttributeFlags(): string[] {
  return SEARCH_ATTRIBUTES.flatMap(({ name, type }) => ['--search-attribute', `${name}=${type}`]);
}

/** Registers the contract's search attributes on a server we did not start; existing ones are kept. */
export async function ensureSearchAttributes(client: Client, namespace: string): Promise<void> {
  const types: Record<string, number> = { KEYWORD: 2, KEYWORD_LIST: 7, DATETIME: 6 }; // temporal.api.enums.v1.IndexedValueType
  // The time-skipping test server cannot list search attributes, only add them.
  const existing = await client.connection.operatorService
    .listSearchAttributes({ namespace })
    .then((r) => r.customAttributes ?? {})
    .catch(() => ({}));
  const missing = SEARCH_ATTRIBUTE_KEYS.filter((k) => !(k.name in existing));
  if (missing.length === 0) return;
  await client.connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((k) => [k.name, types[k.type]!])),
  });
}
