'use strict';

const http = require('node:http');
const { PoolTimeoutError } = require('./db/pool');
const { NotFoundError, ValidationError } = require('./orders/errors');

const MAX_BODY_BYTES = 64 * 1024;

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function statusFor(err) {
  if (err instanceof HttpError) return err.status;
  if (err instanceof ValidationError) return 400;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof PoolTimeoutError) return 503;
  return 500;
}

function sendJson(res, status, payload) {
  const body = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'request body too large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    throw new HttpError(400, 'invalid JSON body');
  }
}

/** Create the HTTP server (not yet listening) for a container from buildContainer(). */
function createApp({ service, pool }, { logger = console } = {}) {
  async function route(req) {
    const { pathname } = new URL(req.url, 'http://localhost');
    const parts = pathname.split('/').filter(Boolean);

    if (req.method === 'GET' && pathname === '/health') return [200, { status: 'ok', pool: pool.stats() }];
    if (req.method === 'POST' && pathname === '/orders') return [201, await service.placeOrder(await readJson(req))];
    if (parts[0] === 'orders' && parts.length === 2 && req.method === 'GET') {
      return [200, await service.getOrder(parts[1])];
    }
    if (parts[0] === 'orders' && parts[2] === 'cancel' && parts.length === 3 && req.method === 'POST') {
      return [200, await service.cancelOrder(parts[1])];
    }
    if (parts[0] === 'customers' && parts[2] === 'orders' && parts.length === 3 && req.method === 'GET') {
      return [200, await service.listOrders(parts[1])];
    }
    throw new HttpError(404, `no route for ${req.method} ${pathname}`);
  }

  return http.createServer(async (req, res) => {
    try {
      const [status, payload] = await route(req);
      sendJson(res, status, payload);
    } catch (err) {
      const status = statusFor(err);
      if (status >= 500) logger.error(`${req.method} ${req.url} failed:`, err);
      sendJson(res, status, { error: status === 500 ? 'internal error' : err.message });
    }
  });
}

module.exports = { createApp };
