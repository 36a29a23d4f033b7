/**
 * Every answer the HTTP test suites receive is checked against the OpenAPI document
 * (src/api/openapi/document.ts): its path and method must be documented (or the answer is 404 NOT_FOUND),
 * its status must be one the operation lists, its media type one of that status's, and a JSON
 * body must match that status's schema (JSON Schema 2020-12, checked by ajv).
 *
 * Two ways in, both automatic once this module is loaded:
 * - `request()` of test/helpers/stack.ts (the integration suites) calls `expectConforming`;
 * - supertest's answers (test/api/*) are checked by a hook on its `Test.prototype.assert`, so a
 *   mismatch fails the request's promise like a failed `.expect()`.
 * A mismatch also fails the test file in `afterAll`, even if a test swallowed the error.
 */
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import { Test } from 'supertest';
import { buildOpenApiDocument } from '../../src/api/openapi/document';
import { apiDescription } from '../../src/api/openapi/operations';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const DOCUMENT_ID = 'https://stockhold.invalid/openapi.json';

/** The document the app serves (RESERVATION_MAX_TTL_SECONDS only bounds request bodies, not answers). */
export const openApiDocument: Json = buildOpenApiDocument(apiDescription({ maxTtlSeconds: 86_400 }), {
  version: 'test',
});

// strict: false only because the document is not a schema itself (openapi, paths, ...); the
// schemas in it are compiled in strict mode by test/unit/openapi.test.ts. The `pattern` of a
// date-time says all `format` would, so formats are not checked twice.
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema({ ...openApiDocument, $id: DOCUMENT_ID });

const pointer = (...segments: string[]) => segments.map((s) => s.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
const validators = new Map<string, ValidateFunction>();

/** The validator of the schema at `#/<segments...>` of the document. */
function validatorAt(...segments: string[]): ValidateFunction {
  const ref = `${DOCUMENT_ID}#/${pointer(...segments)}`;
  let validate = validators.get(ref);
  if (!validate) {
    validate = ajv.compile({ $ref: ref });
    validators.set(ref, validate);
  }
  return validate;
}

/** Document paths as Express matches them: one segment per parameter, an optional trailing slash, any case. */
const routes = Object.keys(openApiDocument.paths as Record<string, unknown>).map((path) => ({
  path,
  pattern: new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '[^/]+')}/?$`, 'i'),
}));

export interface Answer {
  method: string;
  /** The request's URL or path (with its query, if any). */
  url: string;
  status: number;
  contentType: string | null | undefined;
  /** The body as received (text). */
  text: string;
}

/** What is wrong with `answer` by the document, or undefined when it conforms. */
export function nonConformance(answer: Answer): string | undefined {
  const method = answer.method.toLowerCase();
  const path = new URL(answer.url, 'http://localhost').pathname;
  const where = `${answer.method.toUpperCase()} ${path} answered ${answer.status}`;
  const mediaType = (answer.contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const json = (): { value?: unknown; problem?: string } => {
    try {
      return { value: JSON.parse(answer.text) };
    } catch {
      return { problem: `${where} with a body that is not JSON: ${answer.text.slice(0, 200)}` };
    }
  };
  if (method === 'head' || method === 'options') return undefined; // Express's own answers, not the contract's

  const route = routes.find((r) => r.pattern.test(path));
  const operation = route ? openApiDocument.paths[route.path][method] : undefined;
  if (!operation) {
    // Not in the document: the app's answer to any other route is 404 NOT_FOUND.
    if (answer.status !== 404) return `${where}, but ${method.toUpperCase()} ${path} is not in the OpenAPI document`;
    if (mediaType !== 'application/json') return `${where} as ${mediaType || 'no media type'}, not application/json`;
    const body = json();
    if (body.problem) return body.problem;
    const validate = validatorAt('components', 'schemas', 'Error');
    if (!validate(body.value) || (body.value as { error: { code: string } }).error.code !== 'NOT_FOUND') {
      return `${where}: an undocumented route must answer 404 NOT_FOUND in the error shape; got ${answer.text.slice(0, 200)}`;
    }
    return undefined;
  }

  const documented = operation.responses as Record<string, { content?: Record<string, unknown> }>;
  const response = documented[String(answer.status)];
  if (!response)
    return `${where}, which the OpenAPI document does not list for ${route!.path} (it lists ${Object.keys(documented).join(', ')})`;
  if (!response.content)
    return answer.text === '' ? undefined : `${where} with a body, but the document says it has none`;
  if (!response.content[mediaType]) {
    return `${where} as ${mediaType || 'no media type'}; the document says ${Object.keys(response.content).join(' or ')}`;
  }
  if (mediaType !== 'application/json') return undefined;
  const body = json();
  if (body.problem) return body.problem;
  const validate = validatorAt(
    'paths',
    route!.path,
    method,
    'responses',
    String(answer.status),
    'content',
    mediaType,
    'schema',
  );
  if (validate(body.value)) return undefined;
  return `${where}, which does not match the OpenAPI document (paths['${route!.path}'].${method}.responses['${answer.status}']): ${ajv.errorsText(validate.errors, { dataVar: 'body' })}\nbody: ${answer.text.slice(0, 500)}`;
}

const failures: string[] = [];

/** Throws (and remembers, for this file's afterAll) when `answer` does not conform to the document. */
export function expectConforming(answer: Answer): void {
  const problem = nonConformance(answer);
  if (problem === undefined) return;
  failures.push(problem);
  throw new Error(problem);
}

// A failure also fails the file, even when the test that met it caught the error.
if (typeof afterAll === 'function') {
  afterAll(() => {
    if (failures.length > 0)
      throw new Error(
        `${failures.length} answer(s) did not match the OpenAPI document:\n${[...new Set(failures)].slice(0, 10).join('\n')}`,
      );
  });
}

// supertest: check each answer before its own assertions.
type SupertestInternals = {
  method: string;
  url: string;
  assert(
    resError: unknown,
    res: { status: number; headers: Record<string, string>; text?: string } | undefined,
    fn?: (err: unknown, res: unknown) => void,
  ): void;
};
const proto = Test.prototype as unknown as SupertestInternals & { conformanceHooked?: boolean };
if (!proto.conformanceHooked) {
  const original = proto.assert;
  proto.assert = function (this: SupertestInternals, resError, res, fn) {
    if (res) {
      const problem = nonConformance({
        method: this.method,
        url: this.url,
        status: res.status,
        contentType: res.headers['content-type'],
        text: res.text ?? '',
      });
      if (problem !== undefined) {
        failures.push(problem);
        fn?.call(this, new Error(problem), res);
        return;
      }
    }
    original.call(this, resError, res, fn);
  };
  proto.conformanceHooked = true;
}
