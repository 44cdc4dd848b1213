/**
 * The one way the ZooKeeper store watches: a watch is a job that reads the state and leaves ZooKeeper watches whose
 * events (`rearm`) run it again; runs never overlap and none is lost (Rerun), a failed run is logged and waits for
 * the next event or session change, and what was delivered last is remembered so a read that found nothing new
 * delivers nothing. A new session re-arms every watch of the set, and each delivers the current state once.
 */
import type { Logger } from '../../logger';

/** Runs `fn`; a trigger while it runs makes it run once more afterwards, so runs never overlap and none is lost. */
export class Rerun {
  private running: Promise<void> | undefined;
  private dirty = false;
  /** the error that ended the last run, if it failed */
  lastError: unknown;

  constructor(
    private readonly fn: () => Promise<void>,
    private readonly onError: (e: unknown) => void,
  ) {}

  trigger(): Promise<void> {
    if (this.running) {
      this.dirty = true;
      return this.running;
    }
    this.running = (async () => {
      this.lastError = undefined;
      try {
        do {
          this.dirty = false;
          await this.fn();
        } while (this.dirty);
      } catch (e) {
        this.lastError = e;
        this.onError(e);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** resolves when no run is in progress */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}

export const RESET = Symbol('reset');

export class Watch {
  active = true;
  /** what was last delivered; RESET forces the next read to be delivered */
  last: string | symbol = RESET;
  readonly job: Rerun;
  /** the event handler of every ZooKeeper watch a run leaves: run again */
  readonly rearm = (): void => void this.job.trigger();

  constructor(
    private readonly open: () => boolean,
    run: (w: Watch) => Promise<void>,
    onError: (e: unknown) => void,
  ) {
    this.job = new Rerun(async () => {
      if (this.live()) await run(this);
    }, onError);
  }

  /** still wanted: not stopped, and the store not closed */
  live(): boolean {
    return this.active && this.open();
  }

  /** Whether what a run read (by its key) is to be delivered: the watch is live and the key is not the last one's. */
  fresh(key: string): boolean {
    if (!this.live() || key === this.last) return false;
    this.last = key;
    return true;
  }
}

/** The watches a store keeps across sessions. */
export class WatchSet {
  private readonly all = new Set<Watch>();

  constructor(
    private readonly open: () => boolean,
    private readonly log: Logger | undefined,
  ) {}

  /** A watch of `path` that no session change re-arms (its owner does); `path` names it when a run fails. */
  make(path: string, run: (w: Watch) => Promise<void>): Watch {
    return new Watch(this.open, run, (e) => this.failed(e, path));
  }

  /** A watch kept in the set, not armed yet (`w.job.trigger()` arms it). */
  add(path: string, run: (w: Watch) => Promise<void>): Watch {
    const w = this.make(path, run);
    this.all.add(w);
    return w;
  }

  /** A watch kept in the set and armed; returns its stop. */
  start(path: string, run: (w: Watch) => Promise<void>): () => void {
    const w = this.add(path, run);
    void w.job.trigger();
    return () => this.stop(w);
  }

  stop(w: Watch): void {
    w.active = false;
    this.all.delete(w);
  }

  /** On a new session: every watch re-armed, each delivering once; resolves when all have run. */
  async rearmAll(): Promise<void> {
    const rearms: Promise<void>[] = [];
    for (const w of this.all) {
      w.last = RESET;
      rearms.push(w.job.trigger());
    }
    await Promise.all(rearms);
  }

  close(): void {
    for (const w of this.all) w.active = false;
    this.all.clear();
  }

  private failed(e: unknown, path: string): void {
    if (!this.open()) return;
    // a failed re-arm is retried on the next session change; until then this watch is quiet
    this.log?.error({ err: (e as Error).message, path }, 're-arming a ZooKeeper watch failed');
  }
}
