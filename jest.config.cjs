/** Tests are TypeScript, transpiled by ts-jest without type checking (isolatedModules):
 *  `npm run build` type-checks the whole project first, so jest only needs to run it. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  },
  testTimeout: 60000,
  // the suites run on the cpu backend unless they choose another (see the file)
  setupFiles: ['<rootDir>/test/setup-backend.ts'],
};
