/**
 * The routes' zod schemas as the JSON Schemas of the OpenAPI document: inline ones (path, query,
 * header values) and the named components, bodies as the routes read them and answers as they are
 * written; a refinement the document cannot show is refused unless it is described.
 */
import { z } from 'zod';
import type { ApiDescription } from './document';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type JsonSchema = Record<string, any>;

/**
 * A refinement (`refine`, `superRefine`) is invisible to z.toJSONSchema, which would print a looser
 * rule than the route applies. Each one must carry its JSON Schema form (or, where JSON Schema has
 * none, a description) with `.meta()` where it is defined; this refuses to build a document otherwise.
 * (`.meta()` makes a child schema whose parent holds the refinement: the child's metadata covers it.)
 */
function convertDescribed<T>(
  convert: (override: (ctx: { zodSchema: unknown; path: (string | number)[] }) => void) => T,
): T {
  type Internals = { _zod: { parent?: unknown; def: { checks?: { _zod: { def: { check: string } } }[] } } };
  const refined = new Map<unknown, string>();
  const described = new Set<unknown>();
  const result = convert((ctx) => {
    const schema = ctx.zodSchema as Internals;
    if (z.globalRegistry.get(ctx.zodSchema as z.ZodType) !== undefined) {
      for (let s: Internals | undefined = schema; s && !described.has(s); s = s._zod.parent as Internals | undefined)
        described.add(s);
    }
    if ((schema._zod.def.checks ?? []).some((c) => c._zod.def.check === 'custom'))
      refined.set(schema, ctx.path.join('.') || '(root)');
  });
  for (const [schema, where] of refined) {
    if (!described.has(schema))
      throw new Error(
        `OpenAPI: the schema at ${where} has a refinement the document cannot show; describe it with .meta() where it is defined`,
      );
  }
  return result;
}

/** One schema, inline (path, query and header values). */
export function inline(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _drop, ...json } = convertDescribed((override) =>
    z.toJSONSchema(schema, { io, override }),
  ) as JsonSchema;
  return json;
}

/** The named schemas as `components.schemas`, bodies as the routes read them and answers as they are written. */
export function componentSchemas(api: ApiDescription, bodies: Set<z.ZodType>): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(api.components)) registry.add(schema, { id });
  const convert = (io: 'input' | 'output') =>
    convertDescribed((override) =>
      z.toJSONSchema(registry, { io, uri: (id) => `#/components/schemas/${id}`, override }),
    ).schemas as Record<string, JsonSchema>;
  const asRead = convert('input');
  const asWritten = convert('output');
  return Object.fromEntries(
    Object.entries(api.components).map(([id, schema]) => {
      // `$id` would give each component a base URI of its own; the document is the base.
      const { $schema: _s, $id: _i, ...json } = (bodies.has(schema) ? asRead : asWritten)[id]!;
      return [id, json];
    }),
  );
}
