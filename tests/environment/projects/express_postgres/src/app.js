const express = require("express");

function makeApp(db) {
  const app = express();
  app.get("/todos/:id", async (req, res) => {
    const result = await db.query("SELECT id, title FROM todos WHERE id = $1", [req.params.id]);
    if (result.rows.length === 0) return res.status(404).json({ error: "not found" });
    return res.json(result.rows[0]);
  });
  return app;
}

module.exports = { makeApp };
