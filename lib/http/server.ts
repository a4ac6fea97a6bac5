/**
 * The node's HTTP surface, next to the WebSocket upgrades on the same port:
 * `GET /livez` (200 while the process answers), `GET /readyz` (200 when storage is open and
 * the node serves, else 503 with a JSON reason), `GET /status` (JSON) and `GET /metrics`
 * (Prometheus text). Everything else is 404; other methods are 405.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface HttpHandlers {
  readiness(): { ready: true } | { ready: false; reason: string };
  status(): unknown;
  metrics(): Promise<{ contentType: string; body: string }>;
}

export function createHttpServer(handlers: HttpHandlers): Server {
  const server = createServer((request, response) => {
    route(request, response, handlers).catch((error: unknown) => {
      if (!response.headersSent) json(response, 500, { error: String(error) });
      else response.destroy();
    });
  });
  // Slow or idle HTTP clients must not hold sockets forever.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  return server;
}

async function route(request: IncomingMessage, response: ServerResponse, handlers: HttpHandlers): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    return json(response, 405, { error: `method ${request.method} not allowed` });
  }
  switch (path) {
    case '/livez':
      return json(response, 200, { live: true });
    case '/readyz': {
      const readiness = handlers.readiness();
      return json(response, readiness.ready ? 200 : 503, readiness);
    }
    case '/status':
      return json(response, 200, handlers.status());
    case '/metrics': {
      const { contentType, body } = await handlers.metrics();
      response.writeHead(200, { 'content-type': contentType });
      response.end(body);
      return;
    }
    default:
      return json(response, 404, { error: `no route ${path}` });
  }
}

function json(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}
