/**
 * The cluster part of the stats (SPEC 9): this instance, its Redis link and its peers, as a small HTML section,
 * Prometheus lines and the /ready warning. Absent without `cluster:`.
 */
import type { ClusterStatus } from '../proxy/cluster-state/cluster-view.ts';
import { escapeHtml as e, formatDuration, formatMs } from './format.ts';

/** The warning /ready adds (still 200) while Redis is unreachable; null when all is well. */
export function clusterWarning(c: ClusterStatus | undefined): string | null {
  if (c === undefined || c.redis.connected) return null;
  return `cluster ${c.name}: Redis unreachable (${c.redis.lastError ?? 'no connection'}), instance ${c.instance} runs on local state`;
}

export function clusterHtml(c: ClusterStatus | undefined, now: number): string {
  if (c === undefined) return '';
  const link = c.redis.connected
    ? `Redis <b class="ok">connected</b> (${e(c.redis.where)})`
    : `Redis <b class="bad">unreachable</b> for ${formatDuration(now - c.redis.since)} (${e(c.redis.where)}${c.redis.lastError ? `: ${e(c.redis.lastError)}` : ''}): running on local state`;
  const peers = c.peers.length === 0
    ? 'no peer seen'
    : c.peers.map((p) => `${e(p.instance)} ${p.alive ? `<span class="ok">heartbeat ${formatMs(p.lastHeartbeatAgoMs ?? 0)} ago</span>` : '<span class="bad">gone</span>'}${p.configHash ? ` <small class="muted">config ${e(p.configHash)}</small>` : ''}`).join(' &middot; ');
  const b = c.bindings;
  return `<p class="cluster">cluster <b>${e(c.name)}</b>, instance <b>${e(c.instance)}</b> &middot; ${link} &middot; Redis errors ${e(c.redis.errors)}` +
    ` &middot; bindings written back ${e(b.writtenBack)}, pending ${e(b.pendingWriteBack)}, conflicts ${e(b.conflicts)}<br>peers: ${peers}</p>\n`;
}

export function clusterMetrics(c: ClusterStatus | undefined, label: (v: string) => string): string {
  if (c === undefined) return '';
  const id = `cluster="${label(c.name)}",instance="${label(c.instance)}"`;
  let out = '# HELP licproxy_cluster_redis_up Whether this instance reaches the cluster\'s Redis (1) or runs on local state (0)\n# TYPE licproxy_cluster_redis_up gauge\n';
  out += `licproxy_cluster_redis_up{${id}} ${c.redis.connected ? 1 : 0}\n`;
  out += '# HELP licproxy_cluster_redis_errors_total Redis operations that failed or exceeded cluster.timeout (local state decided)\n# TYPE licproxy_cluster_redis_errors_total counter\n';
  out += `licproxy_cluster_redis_errors_total{${id}} ${c.redis.errors}\n`;
  out += '# HELP licproxy_cluster_binding_conflicts_total Bindings made here that another instance had made first (theirs kept)\n# TYPE licproxy_cluster_binding_conflicts_total counter\n';
  out += `licproxy_cluster_binding_conflicts_total{${id}} ${c.bindings.conflicts}\n`;
  out += '# HELP licproxy_cluster_peer_up Whether the peer\'s heartbeat is alive in Redis\n# TYPE licproxy_cluster_peer_up gauge\n';
  for (const p of c.peers) out += `licproxy_cluster_peer_up{${id},peer="${label(p.instance)}"} ${p.alive ? 1 : 0}\n`;
  out += '# HELP licproxy_cluster_peer_heartbeat_age_seconds Time since the peer\'s last heartbeat (from its Redis TTL)\n# TYPE licproxy_cluster_peer_heartbeat_age_seconds gauge\n';
  for (const p of c.peers) if (p.lastHeartbeatAgoMs !== null) out += `licproxy_cluster_peer_heartbeat_age_seconds{${id},peer="${label(p.instance)}"} ${p.lastHeartbeatAgoMs / 1000}\n`;
  return out;
}
