/**
 * The Redis key names of one cluster. Every key starts with `licproxy:<cluster name>:`, so instances of another
 * cluster sharing the same Redis neither read nor overwrite them (cluster names cannot hold `:`).
 */
export class ClusterKeys {
  readonly prefix: string;

  constructor(cluster: string) {
    this.prefix = `licproxy:${cluster}:`;
  }

  binding(pool: string, ip: string): string {
    return `${this.prefix}aff:${pool}:${ip}`;
  }

  /** Hash: field `state|weight:<pool>/<server>` -> value. */
  get admin(): string {
    return `${this.prefix}admin`;
  }

  /** List, newest last, capped: the cluster's event history. */
  get events(): string {
    return `${this.prefix}events`;
  }

  /** Pub/sub: admin changes and new events. */
  get notify(): string {
    return `${this.prefix}notify`;
  }

  /** Set of the instance names that ever sent a heartbeat. */
  get peers(): string {
    return `${this.prefix}peers`;
  }

  heartbeat(instance: string): string {
    return `${this.prefix}peer:${instance}`;
  }
}
