// Jest runs the TypeScript sources through swc (fast, CommonJS); type checking is `npm run lint`.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // test/cluster/ runs against its own Temporal cluster (`npm run test:cluster`, jest.cluster.config.js) and
  // test/qemu/ boots a real VM (`npm run test:qemu`, jest.qemu.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/cluster/', '<rootDir>/test/qemu/'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 120_000,
  modulePathIgnorePatterns: ['<rootDir>/dist'],
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
