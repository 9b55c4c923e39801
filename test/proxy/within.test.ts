/** src/common/within.ts, the bound on the start-up self-tests (node-internals, native relay). */
import test from 'ava';
import { within } from '../../src/common/within.ts';

test('within: the answer when it comes first, "no answer within N ms" when the time does', async (t) => {
  t.is(await within(Promise.resolve(7), 1_000), 7);
  await t.throwsAsync(within(Promise.reject(new Error('boom')), 1_000), { message: 'boom' });
  const never = new Promise<never>(() => {});
  await t.throwsAsync(within(never, 20), { message: 'no answer within 20 ms' });
});
