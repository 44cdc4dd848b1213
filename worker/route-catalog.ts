/**
 * The routes a worker knows: its config file's, and those an assignment carries (created over REST), with the client
 * settings each pool thread was last sent — so a changed route is told from an unchanged one, and reaches the threads
 * only once none of its partitions runs here (a thread replaces a route's forwarder only while it is idle).
 */
import type { Logger } from '../shared/logger';
import type { RouteConfig, StraitConfig } from '../shared/config';
import { forwarderSettings, transactionSettings } from '../shared/kafka/client-settings';
import type { RouteClients } from '../shared/wire';

export class RouteCatalog {
  /** routes created over REST, as the last assignment carried them */
  private readonly carried = new Map<string, RouteConfig>();
  /** route -> the client settings the pool threads have (JSON) */
  private readonly sent = new Map<string, string>();

  constructor(
    private readonly config: StraitConfig,
    private readonly workerId: string,
    private readonly log: Logger,
    /** hands a route's client settings to every pool thread */
    private readonly broadcast: (clients: RouteClients) => void,
  ) {}

  /** a route's definition: one carried by an assignment, else the config file's */
  route(name: string): RouteConfig | undefined {
    return this.carried.get(name) ?? this.config.routes.find((r) => r.name === name);
  }

  /** every route known here */
  list(): RouteConfig[] {
    return [...this.config.routes.filter((r) => !this.carried.has(r.name)), ...this.carried.values()];
  }

  /** the config file's routes' client settings, as the pool threads start with them (recorded as sent) */
  initial(): RouteClients[] {
    const routes = this.config.routes.map((r) => this.clientsOf(r));
    for (const r of routes) this.sent.set(r.route, JSON.stringify(r));
    return routes;
  }

  private clientsOf(r: RouteConfig): RouteClients {
    return {
      route: r.name,
      options: forwarderSettings(this.config, r, this.workerId),
      ...(r.delivery === 'exactly-once' ? { transaction: transactionSettings(r) } : {}),
    };
  }

  /**
   * Takes the route definitions an assignment carries. New routes go to the pool threads at once; the names of
   * routes whose client settings changed are returned, and reach the threads only through `send` once none of their
   * partitions runs here.
   */
  learn(defs: RouteConfig[]): Set<string> {
    const changed = new Set<string>();
    for (const def of defs) {
      const missing = [def.source, def.target].filter((a) => this.config.clusters[a] === undefined);
      if (missing.length > 0) {
        this.log.error(
          { route: def.name, clusters: missing },
          `route '${def.name}' uses cluster aliases this worker's config file does not define (${missing.join(', ')}); its partitions cannot run here`,
        );
        continue;
      }
      this.carried.set(def.name, def);
      const json = JSON.stringify(this.clientsOf(def));
      const sent = this.sent.get(def.name);
      if (sent === json) continue;
      if (sent === undefined) this.send(def.name);
      else changed.add(def.name);
    }
    return changed;
  }

  /** Sends a route's current client settings to every pool thread. */
  send(name: string): void {
    const def = this.route(name);
    if (!def) return;
    const clients = this.clientsOf(def);
    this.sent.set(name, JSON.stringify(clients));
    this.broadcast(clients);
  }
}
