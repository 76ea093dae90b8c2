/** Jest transpiles each file without type-checking; `tsc --noEmit` type-checks once (see README). */
module.exports = {
  testEnvironment: "node",
  testMatch: ["<rootDir>/tests/**/*.test.ts"],
  // The engine tier has its own command (npm run test:engine, jest.engine.config.js).
  testPathIgnorePatterns: ["/node_modules/", "<rootDir>/tests/engine/"],
  transform: { "^.+\\.ts$": ["ts-jest", { diagnostics: false }] },
  testTimeout: 60000,
  // Fails at once, with one message, when the upstream charts and CRDs the validators need are missing.
  globalSetup: "<rootDir>/tests/support/require-shared.ts",
  // Pulumi's runtime keeps process-wide state; jest's global clean-up only warns about it.
  testEnvironmentOptions: { globalsCleanup: "off" },
};
