/**
 * GET /docs: Swagger UI over /openapi.json, to read the contract and try it against this service
 * (Authorize takes a token; "Try it out" calls this origin). Swagger UI comes from the npm package
 * swagger-ui-dist, served from node_modules under /docs/assets/; the page and its initializer are
 * ours, in public/docs/. Nothing is loaded from elsewhere, and no inline script runs.
 */
import path from 'node:path';
import express, { Router } from 'express';
import { PUBLIC_DIR } from '../../paths';

const DOCS_DIR = path.join(PUBLIC_DIR, 'docs');
/** The package's folder (what its `getAbsoluteFSPath()` answers, without loading the 1.5 MB bundle into Node). */
const SWAGGER_UI_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));
/** The package's files the page uses (and their source maps); not its demo index.html, which loads a spec from the internet. */
const SWAGGER_UI_ASSETS = new Set([
  '/swagger-ui.css',
  '/swagger-ui-bundle.js',
  '/swagger-ui.css.map',
  '/swagger-ui-bundle.js.map',
  '/favicon-32x32.png',
  '/favicon-16x16.png',
]);
const DOCS_ASSETS = new Set(['/docs.js', '/docs.css']);

/** Scripts and styles from this origin only. Swagger UI sets style attributes from script, which CSP allows. */
export const DOCS_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function docsRoutes(): Router {
  const router = Router();
  const headers = { setHeaders: (res: express.Response) => res.set('X-Content-Type-Options', 'nosniff') };
  const ours = express.static(DOCS_DIR, { index: false, redirect: false, ...headers });
  const swaggerUi = express.static(SWAGGER_UI_DIR, { index: false, redirect: false, ...headers });

  router.get('/docs', (_req, res) => {
    res.set({
      'Content-Security-Policy': DOCS_PAGE_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-cache',
    });
    res.sendFile(path.join(DOCS_DIR, 'index.html'));
  });
  // Any other path under /docs falls through to the API's 404.
  router.use('/docs/assets', (req, res, next) =>
    SWAGGER_UI_ASSETS.has(req.path) ? swaggerUi(req, res, next) : next(),
  );
  router.use('/docs', (req, res, next) => (DOCS_ASSETS.has(req.path) ? ours(req, res, next) : next()));
  return router;
}
