#!/usr/bin/env node
// Entry of a cluster worker process (`global.workers` > 1), forked by the primary; not a command of its own.
import { register } from 'tsx/esm/api';
register();
const { runWorker } = await import('../src/proxy/cluster/worker.ts');
await runWorker();
