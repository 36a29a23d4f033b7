/**
 * Starts Swagger UI (swagger-ui-dist, loaded before this script) over this service's own
 * /openapi.json. "Try it out" calls the same origin (the document names no server); Authorize
 * takes the client or admin token for the operations that need one, kept only while the page is
 * open.
 */
'use strict';

// A deferred script: the page is parsed and the bundle has run.
window.ui = window.SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
  deepLinking: true,
  // No badge from validator.swagger.io, no ?url= or ?configUrl= to load another document.
  validatorUrl: null,
  queryConfigEnabled: false,
  displayRequestDuration: true,
  persistAuthorization: false,
  tryItOutEnabled: false,
});
