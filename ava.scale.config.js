// The scale test runs alone, after every other test (npm test): its 60,000 loopback connections take most of the
// ephemeral port range, and a test that re-listens on a port it had before could find that port taken meanwhile.
export default {
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  files: ['test/scale/**/*.test.ts'],
  timeout: '300s',
  concurrency: 1,
  workerThreads: false,
};
