/**
 * Heartbeats of a cluster's instances (SPEC 9): each writes its key (name, version, configuration digest) every
 * second with a TTL, and lists the others. A peer's age is read from its key's remaining TTL in Redis, so no
 * instance compares its clock with another's.
 */
import { VERSION } from '../../cli/version.ts';
import type { PeerStatus } from './cluster-view.ts';
import type { ClusterKeys } from './keys.ts';
import type { RedisLink } from './redis-link.ts';

const BEAT_MS = 1_000;
const BEAT_TTL_MS = 5_000;
/** A peer gone this many beats in a row leaves the list (and the shared set). */
const FORGET_AFTER = 3_600;

export class Peers {
  readonly #link: RedisLink;
  readonly #keys: ClusterKeys;
  readonly #instance: string;
  configHash = '';
  #timer: NodeJS.Timeout | null = null;
  #peers = new Map<string, PeerStatus & { goneBeats: number }>();
  #beating = false;

  constructor(link: RedisLink, keys: ClusterKeys, instance: string) {
    this.#link = link;
    this.#keys = keys;
    this.#instance = instance;
  }

  start(configHash: string): void {
    this.configHash = configHash;
    this.#timer = setInterval(() => void this.#beat(), BEAT_MS);
    this.#timer.unref();
    this.#link.onUp(() => void this.#beat());
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  list(): PeerStatus[] {
    return [...this.#peers.values()].map(({ goneBeats: _g, ...p }) => p);
  }

  async #beat(): Promise<void> {
    if (this.#beating || !this.#link.isUp) return;
    this.#beating = true;
    const cmd = this.#link.cmd;
    try {
      const me = JSON.stringify({ instance: this.#instance, version: VERSION, configHash: this.configHash, pid: process.pid });
      const [, [, members]] = ((await cmd.multi().set(this.#keys.heartbeat(this.#instance), me, 'PX', BEAT_TTL_MS).sadd(this.#keys.peers, this.#instance).smembers(this.#keys.peers).exec()) ?? []).slice(1) as [unknown, [unknown, string[]]];
      const others = (members ?? []).filter((m) => m !== this.#instance).slice(0, 64);
      if (others.length === 0) return;
      const p = cmd.pipeline();
      for (const o of others) p.get(this.#keys.heartbeat(o)).pttl(this.#keys.heartbeat(o));
      const res = (await p.exec()) ?? [];
      others.forEach((name, i) => {
        const raw = res[2 * i]?.[1];
        const pttl = res[2 * i + 1]?.[1];
        const prev = this.#peers.get(name);
        const info = parseBeat(raw);
        const alive = typeof pttl === 'number' && pttl > 0;
        const goneBeats = alive ? 0 : (prev?.goneBeats ?? 0) + 1;
        if (goneBeats > FORGET_AFTER) {
          this.#peers.delete(name);
          void cmd.srem(this.#keys.peers, name).catch(() => {});
          return;
        }
        this.#peers.set(name, {
          instance: name,
          alive,
          lastHeartbeatAgoMs: alive ? Math.max(0, BEAT_TTL_MS - (pttl as number)) : null,
          version: info?.version ?? prev?.version ?? null,
          configHash: info?.configHash ?? prev?.configHash ?? null,
          goneBeats,
        });
      });
    } catch {
      this.#link.countError();
    } finally {
      this.#beating = false;
    }
  }
}

function parseBeat(raw: unknown): { version: string | null; configHash: string | null } | null {
  if (typeof raw !== 'string' || raw.length > 4096) return null;
  try {
    const o = JSON.parse(raw) as Record<string, unknown>;
    return { version: typeof o.version === 'string' ? o.version.slice(0, 40) : null, configHash: typeof o.configHash === 'string' ? o.configHash.slice(0, 40) : null };
  } catch {
    return null;
  }
}
