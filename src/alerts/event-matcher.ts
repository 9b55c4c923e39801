/**
 * Maps the balancer's events (event-log.ts) to the alert events of SPEC 10. `up` is a server back from DOWN, not
 * every server's first UP at start (that would page everyone at each restart); so the matcher remembers which
 * servers it saw go down.
 */
import type { ProxyEvent } from '../proxy/event-log.ts';
import type { AlertMessage } from './alert-message.ts';

/** Bounds the memory of down servers (a reload may rename thousands). */
const MAX_DOWN_SERVERS = 100_000;

export class EventMatcher {
  readonly #down = new Set<string>();

  match(e: Readonly<ProxyEvent>): AlertMessage | null {
    const base = {
      time: e.time,
      reason: e.reason,
      suppressed: 0,
      ...(e.pool !== undefined ? { pool: e.pool } : {}),
      ...(e.server !== undefined ? { server: e.server } : {}),
      ...(e.from !== undefined ? { from: e.from } : {}),
      ...(e.to !== undefined ? { to: e.to } : {}),
    };
    switch (e.kind) {
      case 'server': {
        const key = `${e.pool ?? ''}\u0000${e.server ?? ''}`;
        if (e.to === 'DOWN') {
          if (this.#down.size < MAX_DOWN_SERVERS) this.#down.add(key);
          return { event: 'down', ...base };
        }
        // Back from DOWN through the failback delay (NOLB) or a drain counts when it reaches UP.
        if (e.to === 'UP' && this.#down.delete(key)) return { event: 'up', ...base };
        if (e.to === 'MAINT') this.#down.delete(key);
        return null;
      }
      case 'failover':
        return { event: 'failover', ...base };
      case 'failback':
        return { event: 'failback', ...base };
      case 'pool':
        return e.to === 'unavailable' ? { event: 'pool_unavailable', ...base } : null;
      case 'reload':
        return e.reason.startsWith('reload failed') ? { event: 'reload_failed', ...base } : null;
      default:
        return null;
    }
  }
}
