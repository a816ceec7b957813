'use strict';

function intFrom(value, fallback) {
  if (value === undefined || value === '') return fallback;
  const n = Number.parseInt(value, 10);
  if (!Number.isFinite(n) || n < 0) throw new Error(`invalid integer setting: ${value}`);
  return n;
}

/** Read the service configuration from environment variables. */
function loadConfig(env = process.env) {
  return {
    port: intFrom(env.PORT, 3000),
    pool: {
      max: intFrom(env.DB_POOL_MAX, 5),
      acquireTimeoutMs: intFrom(env.DB_ACQUIRE_TIMEOUT_MS, 2000),
    },
    db: {
      latencyMs: intFrom(env.DB_LATENCY_MS, 1),
    },
  };
}

module.exports = { loadConfig };
