'use strict';

const { describe, it, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert/strict');

const { buildContainer } = require('../src/container');
const { ValidationError, NotFoundError } = require('../src/orders/errors');

const TEST_CONFIG = { port: 0, pool: { max: 2, acquireTimeoutMs: 50 }, db: { latencyMs: 0 } };

describe('OrderService', () => {
  let container;
  let service;

  beforeEach(async () => {
    container = await buildContainer(TEST_CONFIG);
    service = container.service;
  });

  afterEach(() => container.close());

  it('places an order and prices it from the catalogue', async () => {
    const order = await service.placeOrder({
      customerId: 'c-1',
      items: [
        { sku: 'TEA-01', quantity: 2 },
        { sku: 'MUG-01', quantity: 1 },
      ],
    });
    assert.equal(order.status, 'pending');
    assert.equal(order.totalCents, 2 * 850 + 1500);
    assert.deepEqual(await service.getOrder(order.id), order);
  });

  it('lists orders by customer', async () => {
    await service.placeOrder({ customerId: 'c-1', items: [{ sku: 'TEA-01', quantity: 1 }] });
    await service.placeOrder({ customerId: 'c-2', items: [{ sku: 'TEA-02', quantity: 1 }] });
    const orders = await service.listOrders('c-2');
    assert.deepEqual(orders.map((o) => o.items[0].sku), ['TEA-02']);
  });

  it('rejects malformed orders before touching the database', async () => {
    await assert.rejects(service.placeOrder({ customerId: 'c-1', items: [] }), ValidationError);
    await assert.rejects(
      service.placeOrder({ customerId: 'c-1', items: [{ sku: 'TEA-01', quantity: 0 }] }),
      ValidationError,
    );
  });

  it('rejects unknown products', async () => {
    await assert.rejects(
      service.placeOrder({ customerId: 'c-1', items: [{ sku: 'NOPE', quantity: 1 }] }),
      /unknown product\(s\): NOPE/,
    );
  });

  it('rejects unknown customers', async () => {
    await assert.rejects(
      service.placeOrder({ customerId: 'c-404', items: [{ sku: 'TEA-01', quantity: 1 }] }),
      { name: 'ValidationError', message: 'unknown customer: c-404' },
    );
  });

  it('cancels a pending order once', async () => {
    const order = await service.placeOrder({ customerId: 'c-1', items: [{ sku: 'TEA-01', quantity: 1 }] });
    assert.equal((await service.cancelOrder(order.id)).status, 'cancelled');
    await assert.rejects(service.cancelOrder(order.id), /already cancelled/);
    await assert.rejects(service.getOrder('missing'), NotFoundError);
  });

  it('failed orders do not exhaust the connection pool', async () => {
    // More failures than the pool has connections (max: 2).
    for (let i = 0; i < 3; i += 1) {
      await assert.rejects(
        service.placeOrder({ customerId: `ghost-${i}`, items: [{ sku: 'TEA-01', quantity: 1 }] }),
        ValidationError,
      );
    }
    const order = await service.placeOrder({ customerId: 'c-1', items: [{ sku: 'TEA-02', quantity: 1 }] });
    assert.equal(order.totalCents, 1200);
    assert.equal(container.pool.stats().inUse, 0);
  });
});
