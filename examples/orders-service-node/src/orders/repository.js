'use strict';

/** Data access for orders and products. Every call borrows a pooled connection. */
class OrderRepository {
  constructor(pool) {
    this.pool = pool;
  }

  insert(order) {
    return this.pool.withConnection((conn) => conn.insert('orders', order));
  }

  findById(id) {
    return this.pool.withConnection((conn) => conn.findOne('orders', id));
  }

  findByCustomer(customerId) {
    return this.pool.withConnection((conn) => conn.find('orders', { customerId }));
  }

  updateStatus(id, status) {
    return this.pool.withConnection((conn) => conn.update('orders', id, { status }));
  }

  /** Products by SKU; SKUs that do not exist are simply absent from the result. */
  findProducts(skus) {
    return this.pool.withConnection(async (conn) => {
      const products = [];
      for (const sku of skus) {
        const product = await conn.findOne('products', sku);
        if (product) products.push(product);
      }
      return products;
    });
  }
}

module.exports = { OrderRepository };
