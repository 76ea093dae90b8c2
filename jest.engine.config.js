/**
 * The engine tier (npm run test:engine): the real Pulumi CLI and plugins built by tools/engine/build.sh,
 * the chart mirror and the network-namespace test hosts. Slow; `npm test` leaves it out.
 */
const base = require("./jest.config");

module.exports = {
  ...base,
  testMatch: ["<rootDir>/tests/engine/**/*.test.ts"],
  testPathIgnorePatterns: [],
  testTimeout: 600000,
};
