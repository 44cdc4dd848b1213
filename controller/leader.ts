/**
 * The leadership life cycle of `strait controller`: while this process is the elected leader it runs a Controller;
 * when leadership is lost it stops it at once. Transitions run one at a time, in the order elections report them.
 */
import type { StraitConfig } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { StraitMetrics } from '../shared/metrics';
import type { CoordinationStore } from '../shared/store/store';
import { Controller } from './controller';

export class Leadership {
  private controller: Controller | undefined;
  private transition: Promise<void> = Promise.resolve();
  private leading = false;

  constructor(
    readonly id: string,
    private readonly config: StraitConfig,
    private readonly store: CoordinationStore,
    private readonly log: Logger,
    private readonly metrics: StraitMetrics,
  ) {}

  /** The controller this process runs while it leads (undefined while standing by, starting or stopping). */
  get current(): Controller | undefined {
    return this.controller;
  }

  /** Campaigns until `resign` is called; the elected campaigner runs the controller. */
  campaign(): Promise<() => Promise<void>> {
    return this.store.campaign(this.id, { elected: () => this.lead(true), lost: () => this.lead(false) });
  }

  /** Stops leading (if it did) and resolves once the controller has stopped. */
  async stop(): Promise<void> {
    this.lead(false);
    await this.transition;
  }

  private lead(on: boolean): void {
    this.leading = on;
    this.transition = this.transition
      .then(async () => {
        if (on && !this.controller) {
          this.log.info({ controller: this.id }, 'elected leader: assigning');
          const c = new Controller(this.config, this.store, this.log, this.metrics);
          this.controller = c;
          try {
            await c.start();
          } catch (e) {
            // never a leader that does nothing: stop what started, and start again while still elected
            this.log.error({ err: (e as Error).message }, 'controller failed to start; retrying in 2 s');
            this.controller = undefined;
            await c.stop().catch(() => undefined);
            setTimeout(() => this.leading && this.lead(true), 2000).unref();
          }
        } else if (!on && this.controller) {
          this.log.warn({ controller: this.id }, 'leadership lost: standing by');
          const c = this.controller;
          this.controller = undefined;
          await c.stop();
        }
      })
      .catch((e: Error) => this.log.error({ err: e.message }, 'leadership change failed'));
  }
}
