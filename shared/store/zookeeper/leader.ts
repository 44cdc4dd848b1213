/**
 * Leader election over the ZooKeeper store: whoever creates the ephemeral leader node leads; the others watch it and
 * contest again when it goes. A leader's writes are bound to its term and session (`guard`).
 */
import { randomUUID } from 'node:crypto';
import { StraitError } from '../../errors';
import type { Logger } from '../../logger';
import type { LeaderCallbacks } from '../store';
import { decodeLeaderId, decodeLeaderToken, encodeLeader } from './codec';
import type { Nodes } from './nodes';
import { C, type SessionGuard, type SessionKeeper } from './session';
import type { Watch, WatchSet } from './watch';

interface Campaign {
  id: string;
  /** tells this campaign's leader record from another campaign of the same session */
  token: string;
  cb: LeaderCallbacks;
  leader: boolean;
  /** grows by one each time this campaign is elected: a leader's writes belong to one term (see `guard`) */
  term: number;
  /** runs the rounds (`contest`) until the campaign resigns (`watch.active`) */
  watch: Watch;
}

export class Election {
  private readonly campaigns = new Set<Campaign>();

  constructor(
    private readonly session: SessionKeeper,
    private readonly nodes: Nodes,
    private readonly watches: WatchSet,
    /** the leader node */
    private readonly path: string,
    private readonly log: Logger | undefined,
  ) {}

  async campaign(id: string, cb: LeaderCallbacks): Promise<() => Promise<void>> {
    const c: Campaign = {
      id,
      token: randomUUID(),
      cb,
      leader: false,
      term: 0,
      watch: this.watches.make(`${this.path} (campaign ${id})`, () => this.contest(c)),
    };
    const resign = async () => {
      if (!c.watch.active) return;
      c.watch.active = false;
      this.campaigns.delete(c);
      await c.watch.job.idle();
      c.leader = false;
      if (this.session.closed) return;
      // by the record, not by c.leader: a round cut short by resign may have created it without electing anyone
      const node = await this.nodes.getNode(this.path);
      if (node && node.stat.ephemeralOwner === this.session.current?.id && decodeLeaderToken(node.data, this.path) === c.token) {
        await this.nodes.deleteNode(this.path, node.stat.version);
      }
    };
    this.campaigns.add(c);
    await c.watch.job.trigger();
    if (c.watch.job.lastError !== undefined && !c.leader) {
      await resign().catch(() => {});
      throw c.watch.job.lastError;
    }
    return resign;
  }

  /** One round: try to create the leader node; whoever holds it, leave a watch that runs the next round. */
  private async contest(c: Campaign): Promise<void> {
    const path = this.path;
    for (;;) {
      if (!c.watch.live()) return;
      await this.nodes.createNode(path, encodeLeader(c.id, c.token), C.ZOO_EPHEMERAL);
      const stat = await this.nodes.existsWatch(path, c.watch.rearm);
      if (!stat) continue; // gone already (its holder left): contest again
      if (this.session.previousSessions.has(stat.ephemeralOwner)) {
        // left by this process's lost session, which the server has not expired yet
        await this.nodes.deleteNode(path, stat.version);
        continue;
      }
      let mine = false;
      if (stat.ephemeralOwner === this.session.current?.id) {
        const node = await this.nodes.getNode(path);
        if (!node) continue;
        mine = node.stat.ephemeralOwner === this.session.current?.id && decodeLeaderToken(node.data, path) === c.token;
      }
      if (!c.watch.live()) return;
      if (mine && !c.leader) {
        c.leader = true;
        c.term++;
        this.log?.info({ id: c.id, session: this.session.current?.id }, 'elected leader');
        this.session.safely(() => c.cb.elected(), 'elected callback');
      } else if (!mine && c.leader) {
        c.leader = false;
        this.session.safely(() => c.cb.lost(), 'leader lost callback');
      }
      return;
    }
  }

  async readLeader(): Promise<string | undefined> {
    const node = await this.nodes.getNode(this.path);
    return node ? decodeLeaderId(node.data, this.path) : undefined;
  }

  /**
   * Assignments are the leader's to write, and only within the leadership (term, session) a write was issued under.
   * A call retries through session changes (`call`), so without this a controller that lost its session could still
   * land a write queued before the loss after the next leader's writes, and hand a worker a stale assignment nobody
   * corrects. In a process that runs no campaign (tools, tests writing assignments directly) writes are not bound.
   */
  guard(what: string): SessionGuard | undefined {
    if (this.campaigns.size === 0) return undefined;
    const c = [...this.campaigns].find((x) => x.leader);
    const term = c?.term;
    const session = this.session.current;
    return (s) => {
      if (c && c.leader && c.term === term && s === session) return;
      throw new StraitError(
        'STRAIT_NOT_LEADER',
        `cannot ${what}: this process no longer leads in the term the write was issued in (its ZooKeeper session ${session?.id ?? '(none)'} was lost, or leadership moved)`,
        { retriable: false },
      );
    };
  }

  /** The session is lost: a leading campaign stops leading at once. */
  stepDown(): void {
    for (const c of this.campaigns) {
      if (!c.leader) continue;
      c.leader = false;
      this.session.safely(() => c.cb.lost(), 'leader lost callback');
    }
  }

  /** On a new session: every campaign contests again. */
  rearm(): void {
    for (const c of this.campaigns) c.watch.rearm();
  }

  close(): void {
    for (const c of this.campaigns) c.watch.active = false;
    this.campaigns.clear();
  }
}
