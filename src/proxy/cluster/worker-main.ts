/** Entry of a cluster worker process (`global.workers` > 1), forked by the primary; not a command of its own. */
import { runWorker } from './worker.ts';

await runWorker();
