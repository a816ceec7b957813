'use strict';

const { describe, it, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert/strict');

const { Database } = require('../src/db/driver');
const { Pool, PoolTimeoutError } = require('../src/db/pool');

describe('Pool', () => {
  let db;
  let pool;

  beforeEach(() => {
    db = new Database();
    db.createTable('things');
    pool = new Pool(db, { max: 2, acquireTimeoutMs: 50 });
  });

  afterEach(() => pool.end());

  it('reuses a released connection instead of opening a new one', async () => {
    const first = await pool.acquire();
    pool.release(first);
    const second = await pool.acquire();
    assert.equal(second, first);
    assert.equal(db.openConnections, 1);
    pool.release(second);
  });

  it('never opens more than max connections', async () => {
    const conns = await Promise.all([pool.acquire(), pool.acquire()]);
    assert.equal(pool.stats().total, 2);
    await assert.rejects(pool.acquire(), PoolTimeoutError);
    conns.forEach((conn) => pool.release(conn));
  });

  it('hands a released connection to the next waiter', async () => {
    const a = await pool.acquire();
    const b = await pool.acquire();
    const waiting = pool.acquire();
    assert.equal(pool.stats().waiting, 1);
    pool.release(a);
    assert.equal(await waiting, a);
    pool.release(a);
    pool.release(b);
    assert.deepEqual(pool.stats(), { max: 2, total: 2, idle: 2, inUse: 0, waiting: 0 });
  });

  it('rejects a release of a connection it did not hand out', async () => {
    const stranger = await db.connect();
    assert.throws(() => pool.release(stranger), /not checked out/);
  });

  it('withConnection() returns the callback result and releases the connection', async () => {
    const row = await pool.withConnection((conn) => conn.insert('things', { id: 1, name: 'one' }));
    assert.deepEqual(row, { id: 1, name: 'one' });
    assert.equal(pool.stats().inUse, 0);
  });

  it('withConnection() releases the connection when the callback throws', async () => {
    await assert.rejects(
      pool.withConnection((conn) => conn.insert('things', { name: 'no primary key' })),
      { code: 'NOT_NULL_VIOLATION' },
    );
    assert.equal(pool.stats().inUse, 0, 'connection leaked after a failed query');
    assert.equal(pool.stats().idle, 1);
  });
});
