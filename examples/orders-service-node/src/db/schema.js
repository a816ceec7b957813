'use strict';

/** Declare the service's tables on a Database. */
function createSchema(db) {
  db.createTable('customers', { primaryKey: 'id' });
  db.createTable('products', {
    primaryKey: 'sku',
    check: (row) => Number.isInteger(row.priceCents) && row.priceCents >= 0,
  });
  db.createTable('orders', {
    primaryKey: 'id',
    references: { customerId: 'customers' },
    check: (row) => Array.isArray(row.items) && row.items.length > 0,
  });
}

/** Rows for local development (`npm start`) and tests. */
const DEMO_DATA = {
  customers: [
    { id: 'c-1', name: 'Ada Lovelace', email: 'ada@example.com' },
    { id: 'c-2', name: 'Grace Hopper', email: 'grace@example.com' },
  ],
  products: [
    { sku: 'TEA-01', name: 'Sencha, 100 g', priceCents: 850 },
    { sku: 'TEA-02', name: 'Assam, 250 g', priceCents: 1200 },
    { sku: 'MUG-01', name: 'Stoneware mug', priceCents: 1500 },
  ],
};

async function seed(db, data = DEMO_DATA) {
  const conn = await db.connect();
  try {
    for (const [table, rows] of Object.entries(data)) {
      for (const row of rows) await conn.insert(table, row);
    }
  } finally {
    await conn.close();
  }
}

module.exports = { createSchema, seed, DEMO_DATA };
