const { Pool } = require("pg");

function makePool() {
  return new Pool({ connectionString: process.env.DATABASE_URL });
}

module.exports = { makePool };
