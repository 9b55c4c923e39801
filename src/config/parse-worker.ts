/**
 * Body of the worker thread that reads configuration files for `loadProxyConfigOffThread`: for each file name it
 * is sent, it posts the validated configuration, or what went wrong as plain data (errors do not cross threads
 * with their class). It lives across reloads, so a reload does not pay for starting a thread and loading modules.
 */
import { parentPort } from 'node:worker_threads';
import { ConfigError, LpxError, errorMessage } from '../common/errors.ts';
import { loadProxyConfig } from './proxy-schema.ts';
import type { ParseAnswer } from './off-thread.ts';

parentPort!.on('message', (file: string) => {
  let answer: ParseAnswer;
  try {
    answer = { ok: true, config: loadProxyConfig(file) };
  } catch (err) {
    if (err instanceof ConfigError) answer = { ok: false, issues: [...err.issues] };
    else if (err instanceof LpxError) answer = { ok: false, code: err.code, message: err.message };
    else answer = { ok: false, code: 'LPX_ERR_CONFIG', message: `${file}: ${errorMessage(err)}` };
  }
  parentPort!.postMessage(answer);
});
