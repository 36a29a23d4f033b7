/**
 * GET /docs: the OpenAPI document as one self-contained HTML page, rendered on the server. No
 * script, no stylesheet or font from elsewhere: the service runs without internet access.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const escape = (value: unknown): string =>
  String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Markdown's `code` spans as <code>, the rest escaped. */
const prose = (text: unknown): string => escape(text ?? '').replace(/`([^`]+)`/g, '<code>$1</code>');

const anchor = (method: string, path: string) => `op-${method}-${path.replace(/[^A-Za-z0-9]+/g, '-')}`;
const schemaAnchor = (name: string) => `schema-${name}`;

/** A schema as short text: `StockView` (a link), `string (pattern …)`, `integer 1..500`. */
function typeOf(schema: Json): string {
  if (!schema || typeof schema !== 'object') return '';
  if (schema.$ref) {
    const name = String(schema.$ref).replace('#/components/schemas/', '');
    return `<a href="#${schemaAnchor(name)}">${escape(name)}</a>`;
  }
  if (schema.allOf) return schema.allOf.map(typeOf).join(' & ');
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(' | ');
  const parts: string[] = [];
  if (schema.enum) parts.push(schema.enum.map((v: unknown) => `<code>${escape(JSON.stringify(v))}</code>`).join(' | '));
  else if (schema.const !== undefined) parts.push(`<code>${escape(JSON.stringify(schema.const))}</code>`);
  else if (schema.type === 'array') parts.push(`array of ${typeOf(schema.items)}`);
  else parts.push(escape(Array.isArray(schema.type) ? schema.type.join(' | ') : (schema.type ?? 'any')));
  const range = (min: unknown, max: unknown, unit = '') =>
    min !== undefined || max !== undefined ? `${min ?? ''}..${max ?? ''}${unit}` : '';
  const limits = [
    schema.type === 'integer' || schema.type === 'number' ? range(schema.minimum, schema.maximum) : '',
    schema.type === 'string' ? range(schema.minLength, schema.maxLength, ' characters') : '',
    schema.type === 'array' ? range(schema.minItems, schema.maxItems, ' items') : '',
    // A date-time's pattern says no more than its format.
    schema.pattern && schema.format !== 'date-time' ? `pattern <code>${escape(schema.pattern)}</code>` : '',
    schema.format ? `format ${escape(schema.format)}` : '',
    schema.not?.const !== undefined ? `not ${escape(JSON.stringify(schema.not.const))}` : '',
    schema.default !== undefined ? `default ${escape(JSON.stringify(schema.default))}` : '',
  ].filter(Boolean);
  return limits.length > 0 ? `${parts.join('')} <span class="limits">(${limits.join(', ')})</span>` : parts.join('');
}

/** The fields of an object written inline (not a named schema), itself or as an array's items. */
function nested(field: Json): string {
  const inner = field?.type === 'array' ? field.items : field;
  return inner?.type === 'object' && inner.properties ? fields(inner) : '';
}

/** An object schema's fields as table rows; other schemas as one line. */
function fields(schema: Json): string {
  if (schema?.type !== 'object' || !schema.properties) return `<p>${typeOf(schema)}</p>`;
  const required = new Set<string>(schema.required ?? []);
  const rows = Object.entries(schema.properties as Record<string, Json>).map(
    ([name, field]) =>
      `<tr><td><code>${escape(name)}</code>${required.has(name) ? '' : ' <span class="opt">optional</span>'}</td><td>${typeOf(field)}${nested(field)}</td><td>${prose(field.description ?? '')}</td></tr>`,
  );
  const closed = schema.additionalProperties === false ? '<p class="note">No other fields.</p>' : '';
  return `<table><tr><th>field</th><th>type</th><th></th></tr>${rows.join('')}</table>${closed}`;
}

function operation(path: string, method: string, op: Json): string {
  const access = op['x-stockhold-access'] as string;
  const params = (op.parameters ?? []) as Json[];
  const paramRows = params.map(
    (p) =>
      `<tr><td><code>${escape(p.name)}</code></td><td>${escape(p.in)}${p.required ? '' : ' <span class="opt">optional</span>'}</td><td>${typeOf(p.schema)}</td><td>${prose(p.description)}</td></tr>`,
  );
  const body = op.requestBody
    ? `<h4>Body${op.requestBody.required ? '' : ' <span class="opt">may be left out</span>'}</h4><p>${typeOf(op.requestBody.content['application/json'].schema)}</p>`
    : '';
  const answers = Object.entries(op.responses as Record<string, Json>).map(([status, answer]) => {
    const [type, media] = Object.entries((answer.content ?? {}) as Record<string, Json>)[0] ?? [];
    const schema = media?.schema;
    const codes = schema?.properties?.error?.properties?.code?.enum as string[] | undefined;
    const shape = codes ? `error: ${codes.map((c) => `<code>${escape(c)}</code>`).join(', ')}` : schema?.$ref ? typeOf(schema) : escape(type ?? '');
    return `<tr class="s${status[0]}"><td>${escape(status)}</td><td>${shape}</td><td>${prose(answer.description)}</td></tr>`;
  });
  return `<section id="${anchor(method, path)}" class="op">
<h3><span class="method ${escape(method)}">${escape(method.toUpperCase())}</span> <code>${escape(path)}</code> <span class="access ${escape(access)}">${escape(access)}</span></h3>
<p>${prose(op.summary)}${op.description ? `. ${prose(op.description)}` : ''}</p>
${paramRows.length > 0 ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th></th></tr>${paramRows.join('')}</table>` : ''}
${body}
<h4>Answers</h4><table><tr><th>status</th><th>body</th><th>when</th></tr>${answers.join('')}</table>
</section>`;
}

/** The page: operations by tag, then every named schema. */
export function renderDocsPage(doc: Json): string {
  const ops: { tag: string; path: string; method: string; op: Json }[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) {
    for (const [method, op] of Object.entries(item as Record<string, Json>)) ops.push({ tag: op.tags?.[0] ?? '', path, method, op });
  }
  const tags = (doc.tags as { name: string }[]).map((t) => t.name);
  const index = tags
    .map((tag) => {
      const items = ops
        .filter((o) => o.tag === tag)
        .map((o) => `<li><a href="#${anchor(o.method, o.path)}"><span class="method ${escape(o.method)}">${escape(o.method.toUpperCase())}</span> ${escape(o.path)}</a> ${prose(o.op.summary)}</li>`);
      return `<h3>${escape(tag)}</h3><ul>${items.join('')}</ul>`;
    })
    .join('');
  const sections = tags.map((tag) => `<h2>${escape(tag)}</h2>${ops.filter((o) => o.tag === tag).map((o) => operation(o.path, o.method, o.op)).join('')}`).join('');
  const schemas = Object.entries(doc.components.schemas as Record<string, Json>)
    .map(([name, schema]) => `<section id="${schemaAnchor(name)}" class="schema"><h3>${escape(name)}</h3>${schema.description ? `<p>${prose(schema.description)}</p>` : ''}${fields(schema)}</section>`)
    .join('');
  const security = Object.entries(doc.components.securitySchemes as Record<string, Json>)
    .map(([name, s]) => `<li><code>${escape(name)}</code>: ${escape(s.scheme)} token, ${prose(s.description)}</li>`)
    .join('');
  const description = String(doc.info.description ?? '')
    .split('\n\n')
    .map((p) => `<p>${prose(p)}</p>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(doc.info.title)} API</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em;color:#1b1f24}
code{font:13px ui-monospace,monospace;background:#f2f4f7;padding:0 .25em;border-radius:3px}
table{border-collapse:collapse;margin:.3em 0 1em;width:100%}td,th{border:1px solid #d8dde3;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}.op,.schema{border-top:1px solid #d8dde3;padding-top:.3em}
.method{font:bold 12px ui-monospace,monospace;padding:.1em .4em;border-radius:3px;color:#fff;background:#57606a}
.method.get{background:#1f6feb}.method.post{background:#1a7f37}.method.patch,.method.put{background:#9a6700}.method.delete{background:#cf222e}
.access{font-size:12px;border:1px solid #8c959f;border-radius:10px;padding:0 .5em}.access.admin{border-color:#cf222e;color:#cf222e}
.opt,.limits,.note{color:#57606a;font-size:13px}tr.s4 td:first-child,tr.s5 td:first-child{color:#cf222e}tr.s2 td:first-child{color:#1a7f37}
</style></head><body>
<h1>${escape(doc.info.title)} API <small>${escape(doc.info.version)}</small></h1>
<p>OpenAPI ${escape(doc.openapi)}: <a href="openapi.json">openapi.json</a>.</p>
${description}
<h2>Tokens</h2><ul>${security}</ul>
<h2>Operations</h2>${index}
${sections}
<h2>Schemas</h2>${schemas}
</body></html>
`;
}
