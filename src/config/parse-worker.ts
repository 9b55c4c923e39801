/**
 * Body of the worker thread that reads a configuration file for `loadProxyConfigOffThread`: it posts the validated
 * configuration, or what went wrong as plain data (errors do not cross threads with their class).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError, LpxError, errorMessage } from '../common/errors.ts';
import { loadProxyConfig } from './proxy-schema.ts';
import type { ParseAnswer } from './off-thread.ts';

const { file } = workerData as { file: string };
let answer: ParseAnswer;
try {
  answer = { ok: true, config: loadProxyConfig(file) };
} catch (err) {
  if (err instanceof ConfigError) answer = { ok: false, issues: [...err.issues] };
  else if (err instanceof LpxError) answer = { ok: false, code: err.code, message: err.message };
  else answer = { ok: false, code: 'LPX_ERR_CONFIG', message: `${file}: ${errorMessage(err)}` };
}
parentPort!.postMessage(answer);
