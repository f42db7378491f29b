// Tests are TypeScript, precompiled by `tsc -b` (the package's `test` script builds first).
export default {
  typescript: { rewritePaths: { 'src/': 'dist/src/', 'test/': 'dist/test/' }, compile: false },
  files: ['test/**/*.test.ts'],
  workerThreads: false,
  timeout: '2m',
};
