// `npm run test:cluster` (bench/test-cluster.sh): the suites under test/cluster/, against a multi-service
// Temporal cluster on PostgreSQL started by their own global setup, instead of the main suite's dev server.
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['<rootDir>/test/cluster/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  globalSetup: '<rootDir>/test/cluster/global-setup.ts',
  globalTeardown: '<rootDir>/test/cluster/global-teardown.ts',
};
