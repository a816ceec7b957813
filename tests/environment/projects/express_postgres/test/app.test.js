const test = require("node:test");
const assert = require("node:assert");
const { makeApp } = require("../src/app");
const { makePool } = require("../src/db");

test("runs on the Node version the project asks for", () => {
  assert.strictEqual(process.versions.node.split(".")[0], "20");
});

test("the app answers from the database", async () => {
  const pool = makePool();
  await pool.query("CREATE TABLE IF NOT EXISTS todos (id serial PRIMARY KEY, title text)");
  const { rows } = await pool.query("INSERT INTO todos (title) VALUES ('write tests') RETURNING id");
  const server = makeApp(pool).listen(0);
  const { port } = server.address();
  const response = await fetch(`http://127.0.0.1:${port}/todos/${rows[0].id}`);
  assert.strictEqual(response.status, 200);
  assert.strictEqual((await response.json()).title, "write tests");
  server.close();
  await pool.end();
});
