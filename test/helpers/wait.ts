/** Polls `cond` until it returns a truthy value or the deadline passes; tests never sleep blindly. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  opts: { timeout?: number; interval?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const timeout = opts.timeout ?? 5_000;
  const interval = opts.interval ?? 10;
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout}ms waiting for ${opts.what ?? 'condition'}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * Resolves with `p`'s value, or throws once the deadline passes: for "this happens at all" on an event (a socket
 * closing), where a bare `await` would hang the test until ava's timeout. The deadline only catches "never".
 */
export async function settles<T>(p: Promise<T>, opts: { timeout?: number; what?: string } = {}): Promise<T> {
  const timeout = opts.timeout ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeout}ms waiting for ${opts.what ?? 'a promise'}`)), timeout);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
