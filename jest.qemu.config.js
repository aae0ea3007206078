// `npm run test:qemu` (bench/test-qemu.sh): the QEMU guest image booting for real (test/qemu/). No shared
// Temporal server: the boot test stands in for the guest API itself, and the backend test starts its own
// inside the network namespaces it builds.
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['<rootDir>/test/qemu/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  globalSetup: undefined,
  globalTeardown: undefined,
  // TCG boots take about a minute here; the test's own deadlines are the real limits.
  testTimeout: 900_000,
};
