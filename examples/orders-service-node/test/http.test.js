'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');

const { buildContainer } = require('../src/container');
const { createApp } = require('../src/app');

const TEST_CONFIG = { port: 0, pool: { max: 2, acquireTimeoutMs: 50 }, db: { latencyMs: 0 } };
const quietLogger = { error() {} };

/** One JSON request on a fresh socket (no keep-alive, so the server closes promptly). */
function request(port, method, path, payload) {
  return new Promise((resolve, reject) => {
    const body = payload === undefined ? '' : JSON.stringify(payload);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (data += chunk));
        res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(data) }));
      },
    );
    req.setTimeout(2000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

describe('HTTP API', () => {
  let container;
  let server;
  let port;

  before(async () => {
    container = await buildContainer(TEST_CONFIG);
    server = createApp(container, { logger: quietLogger });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = server.address().port;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await container.close();
  });

  it('GET /health reports pool stats', async () => {
    const res = await request(port, 'GET', '/health');
    assert.equal(res.status, 200);
    assert.equal(res.body.pool.max, 2);
  });

  it('POST /orders then GET /orders/:id', async () => {
    const created = await request(port, 'POST', '/orders', {
      customerId: 'c-2',
      items: [{ sku: 'MUG-01', quantity: 2 }],
    });
    assert.equal(created.status, 201);
    const fetched = await request(port, 'GET', `/orders/${created.body.id}`);
    assert.deepEqual(fetched, { status: 200, body: created.body });
  });

  it('answers 400 for invalid orders and 404 for unknown routes', async () => {
    assert.equal((await request(port, 'POST', '/orders', { customerId: 'c-1', items: [] })).status, 400);
    assert.equal((await request(port, 'GET', '/nope')).status, 404);
  });

  it('keeps serving orders after requests for unknown customers', async () => {
    for (const customerId of ['x-1', 'x-2', 'x-3']) {
      const res = await request(port, 'POST', '/orders', { customerId, items: [{ sku: 'TEA-01', quantity: 1 }] });
      assert.equal(res.status, 400, JSON.stringify(res.body));
    }
    const res = await request(port, 'POST', '/orders', { customerId: 'c-1', items: [{ sku: 'TEA-01', quantity: 1 }] });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  });
});
