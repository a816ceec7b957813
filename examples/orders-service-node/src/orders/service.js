'use strict';

const { randomUUID } = require('node:crypto');
const { NotFoundError, ValidationError } = require('./errors');

const MAX_QUANTITY = 100;

function validateItems(items) {
  if (!Array.isArray(items) || items.length === 0) {
    throw new ValidationError('items must be a non-empty array');
  }
  for (const item of items) {
    if (!item || typeof item.sku !== 'string' || item.sku === '') {
      throw new ValidationError('every item needs a sku');
    }
    if (!Number.isInteger(item.quantity) || item.quantity < 1 || item.quantity > MAX_QUANTITY) {
      throw new ValidationError(`quantity for ${item.sku} must be an integer from 1 to ${MAX_QUANTITY}`);
    }
  }
}

/** Business rules for placing and reading orders. */
class OrderService {
  constructor(repository, { now = () => new Date() } = {}) {
    this.repository = repository;
    this.now = now;
  }

  async placeOrder({ customerId, items } = {}) {
    if (typeof customerId !== 'string' || customerId === '') {
      throw new ValidationError('customerId is required');
    }
    validateItems(items);

    const skus = [...new Set(items.map((item) => item.sku))];
    const products = new Map((await this.repository.findProducts(skus)).map((p) => [p.sku, p]));
    const unknown = skus.filter((sku) => !products.has(sku));
    if (unknown.length > 0) throw new ValidationError(`unknown product(s): ${unknown.join(', ')}`);

    const lines = items.map(({ sku, quantity }) => ({
      sku,
      quantity,
      unitPriceCents: products.get(sku).priceCents,
    }));
    const order = {
      id: randomUUID(),
      customerId,
      items: lines,
      totalCents: lines.reduce((sum, line) => sum + line.quantity * line.unitPriceCents, 0),
      status: 'pending',
      createdAt: this.now().toISOString(),
    };

    try {
      return await this.repository.insert(order);
    } catch (err) {
      if (err.code === 'FOREIGN_KEY_VIOLATION') throw new ValidationError(`unknown customer: ${customerId}`);
      throw err;
    }
  }

  async getOrder(id) {
    const order = await this.repository.findById(id);
    if (!order) throw new NotFoundError(`order ${id} not found`);
    return order;
  }

  listOrders(customerId) {
    return this.repository.findByCustomer(customerId);
  }

  async cancelOrder(id) {
    const order = await this.getOrder(id);
    if (order.status !== 'pending') throw new ValidationError(`order ${id} is already ${order.status}`);
    return this.repository.updateStatus(id, 'cancelled');
  }
}

module.exports = { OrderService, MAX_QUANTITY };
