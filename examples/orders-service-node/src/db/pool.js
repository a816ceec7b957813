'use strict';

/**
 * A small connection pool.
 *
 * Connections are created lazily up to `max`. When all of them are checked
 * out, `acquire()` waits in a FIFO queue for one to be released and gives up
 * after `acquireTimeoutMs` with a PoolTimeoutError. Every successful
 * `acquire()` must be paired with exactly one `release()`; prefer
 * `withConnection()`, which does the pairing for you.
 */

class PoolTimeoutError extends Error {
  constructor(timeoutMs, stats) {
    super(
      `pool exhausted: no connection available within ${timeoutMs} ms ` +
        `(${stats.inUse}/${stats.max} in use, ${stats.waiting} waiting)`,
    );
    this.name = 'PoolTimeoutError';
    this.code = 'POOL_TIMEOUT';
  }
}

class Pool {
  constructor(db, { max = 5, acquireTimeoutMs = 2000 } = {}) {
    if (!(max >= 1)) throw new RangeError('pool max must be at least 1');
    this.db = db;
    this.max = max;
    this.acquireTimeoutMs = acquireTimeoutMs;
    this._idle = [];
    this._inUse = new Set();
    this._waiters = [];
    this._creating = 0;
    this._ended = false;
  }

  stats() {
    return {
      max: this.max,
      total: this._idle.length + this._inUse.size + this._creating,
      idle: this._idle.length,
      inUse: this._inUse.size,
      waiting: this._waiters.length,
    };
  }

  async acquire() {
    if (this._ended) throw new Error('pool has been ended');

    const idle = this._idle.pop();
    if (idle) {
      this._inUse.add(idle);
      return idle;
    }

    if (this.stats().total < this.max) {
      this._creating += 1;
      let conn;
      try {
        conn = await this.db.connect();
      } finally {
        this._creating -= 1;
      }
      this._inUse.add(conn);
      return conn;
    }

    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject, timer: null };
      waiter.timer = setTimeout(() => {
        const error = new PoolTimeoutError(this.acquireTimeoutMs, this.stats());
        this._waiters.splice(this._waiters.indexOf(waiter), 1);
        reject(error);
      }, this.acquireTimeoutMs);
      this._waiters.push(waiter);
    });
  }

  release(conn) {
    if (!this._inUse.delete(conn)) {
      throw new Error('release() called with a connection that is not checked out of this pool');
    }
    if (this._ended) {
      conn.close();
      return;
    }
    const waiter = this._waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      this._inUse.add(conn);
      waiter.resolve(conn);
      return;
    }
    this._idle.push(conn);
  }

  /** Run `fn(conn)` with a pooled connection and return its result. */
  async withConnection(fn) {
    const conn = await this.acquire();
    const result = await fn(conn);
    this.release(conn);
    return result;
  }

  /** Close idle connections and fail pending acquires. Checked-out connections close on release. */
  async end() {
    this._ended = true;
    for (const waiter of this._waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('pool has been ended'));
    }
    await Promise.all(this._idle.splice(0).map((conn) => conn.close()));
  }
}

module.exports = { Pool, PoolTimeoutError };
