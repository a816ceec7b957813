'use strict';

/**
 * A simulated async database driver that keeps its tables in memory.
 *
 * It behaves like a network driver where it matters to the code above it:
 * every call is asynchronous, a connection must be opened before use and can
 * be closed, and constraint violations surface as rejected promises carrying a
 * `code`, like a real driver's errors.
 */

class DatabaseError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'DatabaseError';
    this.code = code;
  }
}

function delay(ms) {
  return new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));
}

class Database {
  constructor({ latencyMs = 0 } = {}) {
    this.latencyMs = latencyMs;
    this.tables = new Map();
    this.openConnections = 0;
  }

  /**
   * Declare a table. `references` maps a column to the table its value must
   * exist in (a foreign key); `check` is a row predicate (a CHECK constraint).
   */
  createTable(name, { primaryKey = 'id', references = {}, check = null } = {}) {
    this.tables.set(name, { primaryKey, references, check, rows: new Map() });
  }

  async connect() {
    await delay(this.latencyMs);
    this.openConnections += 1;
    return new Connection(this);
  }

  _table(name) {
    const table = this.tables.get(name);
    if (!table) throw new DatabaseError(`no such table: ${name}`, 'UNDEFINED_TABLE');
    return table;
  }

  _validate(tableName, table, row) {
    for (const [column, target] of Object.entries(table.references)) {
      if (row[column] !== undefined && row[column] !== null && !this._table(target).rows.has(row[column])) {
        throw new DatabaseError(
          `insert or update on "${tableName}" violates foreign key "${column}" -> "${target}": ${row[column]}`,
          'FOREIGN_KEY_VIOLATION',
        );
      }
    }
    if (table.check && !table.check(row)) {
      throw new DatabaseError(`row violates check constraint on "${tableName}"`, 'CHECK_VIOLATION');
    }
  }
}

class Connection {
  constructor(db) {
    this._db = db;
    this.closed = false;
  }

  async _begin() {
    if (this.closed) throw new DatabaseError('connection is closed', 'CONNECTION_CLOSED');
    await delay(this._db.latencyMs);
  }

  async insert(tableName, row) {
    await this._begin();
    const table = this._db._table(tableName);
    const key = row[table.primaryKey];
    if (key === undefined) throw new DatabaseError(`missing primary key "${table.primaryKey}"`, 'NOT_NULL_VIOLATION');
    if (table.rows.has(key)) {
      throw new DatabaseError(`duplicate key ${tableName}.${table.primaryKey}=${key}`, 'UNIQUE_VIOLATION');
    }
    this._db._validate(tableName, table, row);
    table.rows.set(key, structuredClone(row));
    return structuredClone(row);
  }

  async findOne(tableName, key) {
    await this._begin();
    const row = this._db._table(tableName).rows.get(key);
    return row === undefined ? null : structuredClone(row);
  }

  /** Rows whose columns equal every value in `where`, in insertion order. */
  async find(tableName, where = {}) {
    await this._begin();
    const matches = [];
    for (const row of this._db._table(tableName).rows.values()) {
      if (Object.entries(where).every(([column, value]) => row[column] === value)) {
        matches.push(structuredClone(row));
      }
    }
    return matches;
  }

  async update(tableName, key, changes) {
    await this._begin();
    const table = this._db._table(tableName);
    const current = table.rows.get(key);
    if (current === undefined) return null;
    const next = { ...current, ...changes };
    this._db._validate(tableName, table, next);
    table.rows.set(key, next);
    return structuredClone(next);
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    this._db.openConnections -= 1;
  }
}

module.exports = { Database, Connection, DatabaseError };
