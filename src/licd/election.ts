import type { PeerLink } from './peer-link.ts';
import type { MemberInfo } from './peer-messages.ts';

/** A voter's answer: whether it votes for this candidate, and the version of the state it holds. */
export interface Vote {
  ok: boolean;
  sterm: number;
  sseq: number;
}

/** What the votes received so far decide. */
export type Tally =
  | { kind: 'wait' }
  | { kind: 'refused' }
  /** A voter holds a fresher state: fetch it before serving. */
  | { kind: 'fetch'; from: PeerLink }
  | { kind: 'won'; voters: PeerLink[] };

/** The member that should serve among this one and its linked peers: the lowest order; null when alone. */
export function candidateOf(self: Pick<MemberInfo, 'name' | 'order'>, connected: readonly PeerLink[]): string | null {
  if (connected.length === 0) return null;
  let best = { name: self.name, order: self.order };
  for (const l of connected) if (l.remote!.order < best.order) best = { name: l.name, order: l.remote!.order };
  return best.name;
}

/**
 * One candidacy (PROTOCOL.md "Terms, votes and who serves"): the term asked for, the votes received, and the voter
 * whose fresher state is being fetched. One vote is a majority of three; in a pair, the peer's vote. A candidate
 * holding an older state than a voter first fetches that voter's snapshot, so the new master starts from a state
 * that has every acknowledged change.
 */
export class Election {
  readonly term: number;
  /** The promised term before this member voted for itself: restored when the election fails (nobody serves it). */
  readonly votedBefore: number;
  readonly deadline: number;
  readonly votes = new Map<PeerLink, Vote>();
  /** The voter whose fresher state is being fetched before serving. */
  fetching: PeerLink | null = null;

  constructor(term: number, votedBefore: number, deadline: number) {
    this.term = term;
    this.votedBefore = votedBefore;
    this.deadline = deadline;
  }

  /** Records a vote and says what the votes decide, given this member's own state `(term, seq)`. */
  record(link: PeerLink, vote: Vote, own: { term: number; seq: number }, connected: number): Tally {
    this.votes.set(link, vote);
    const yes = this.voters();
    if (yes.length === 0) return this.votes.size >= connected ? { kind: 'refused' } : { kind: 'wait' };
    let fresh: PeerLink | null = null;
    let ft = own.term;
    let fs = own.seq;
    for (const l of yes) {
      const v = this.votes.get(l)!;
      if (v.sterm > ft || (v.sterm === ft && v.sseq > fs)) {
        fresh = l;
        ft = v.sterm;
        fs = v.sseq;
      }
    }
    return fresh ? { kind: 'fetch', from: fresh } : { kind: 'won', voters: yes };
  }

  /** The members that voted yes. */
  voters(): PeerLink[] {
    return [...this.votes].filter(([, v]) => v.ok).map(([l]) => l);
  }
}
