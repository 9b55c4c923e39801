/**
 * `work`, or a rejection ("no answer within N ms") once `ms` pass first; the timer is cleared either way. (A failure
 * of `work` after the timeout is handled by the race's own subscription.) For bounded one-off probes, the start-up
 * self-tests, where a hang must become an answer.
 */
export async function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
