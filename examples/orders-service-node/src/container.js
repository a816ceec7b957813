'use strict';

const { Database } = require('./db/driver');
const { Pool } = require('./db/pool');
const { createSchema, seed } = require('./db/schema');
const { OrderRepository } = require('./orders/repository');
const { OrderService } = require('./orders/service');
const { loadConfig } = require('./config');

/**
 * Wire database, pool, repository and service together.
 * Returns the parts so callers (the server, tests) can use or inspect them.
 */
async function buildContainer(config = loadConfig(), { seedData } = {}) {
  const db = new Database({ latencyMs: config.db.latencyMs });
  createSchema(db);
  await seed(db, seedData);
  const pool = new Pool(db, config.pool);
  const repository = new OrderRepository(pool);
  const service = new OrderService(repository);
  return {
    config,
    db,
    pool,
    repository,
    service,
    close: () => pool.end(),
  };
}

module.exports = { buildContainer };
