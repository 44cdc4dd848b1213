/** The jobs behind the ZooKeeper store's watches and campaigns. */

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

export interface Watch {
  active: boolean;
  /** what was last delivered; RESET forces the next read to be delivered */
  last: string | symbol;
  job: Rerun;
}

export const RESET = Symbol('reset');
