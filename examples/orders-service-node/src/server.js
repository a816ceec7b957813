'use strict';

const { buildContainer } = require('./container');
const { createApp } = require('./app');
const { loadConfig } = require('./config');

async function main() {
  const config = loadConfig();
  const container = await buildContainer(config);
  const server = createApp(container);
  server.listen(config.port, () => {
    console.log(`orders-service listening on http://localhost:${server.address().port}`);
  });

  const shutdown = () => {
    server.close(() => container.close().then(() => process.exit(0)));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

module.exports = { main };
