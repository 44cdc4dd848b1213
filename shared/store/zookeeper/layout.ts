/**
 * Where the ZooKeeper store keeps what (DESIGN.md, "Coordination store"). Layout under `<root>/<deployment>/`:
 *
 *   workers/<id>                          ephemeral, a WorkerInfo
 *   assignments/<worker>                  an Assignment; its version is a counter kept in the record
 *   offsets/<route>/<topic>/<partition>   {offset, epoch}; read-check-write with the znode version, fenced by epoch
 *   managed/<route>/<topic>               target topics the route created
 *   clusters/<route>                      {source, target, at}: the cluster ids the route's offsets belong to
 *   reports/<worker>                      ephemeral, the worker's last LoadReport (rates and lag per partition)
 *   controller/leader                     ephemeral, the leading controller's id
 *   control/drained/<worker>, control/paused/<route>   operator flags (presence is the state)
 *   routes/<name>                         a route created over REST: {route, revision, updatedAt}
 *
 * Path segments are URI-encoded (Kafka topic names come through unchanged; '/', '%', control characters, '.' and '..'
 * cannot break the tree).
 */
import { StraitError } from '../../errors';

/** A znode name for any string: URI-encoded, with '.' and '..' (not allowed as znode names) spelled out. */
export function segment(name: string, what: string): string {
  if (name.length === 0) throw new StraitError('STRAIT_STORE', `${what} must not be empty`, { field: what });
  if (name === '.') return '%2E';
  if (name === '..') return '%2E%2E';
  try {
    return encodeURIComponent(name);
  } catch (e) {
    throw new StraitError('STRAIT_STORE', `${what} '${name}' is not valid Unicode`, { field: what, cause: e });
  }
}

export function unsegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}

/** The paths of one deployment's tree. */
export class Layout {
  /** `<root>/<deployment>` */
  readonly base: string;

  constructor(root: string, deployment: string) {
    this.base = `${root}/${segment(deployment, 'deployment')}`;
  }

  /** the folders made when a store connects */
  get folders(): string[] {
    return ['workers', 'assignments', 'offsets', 'managed', 'clusters', 'controller', 'reports', 'routes'].map((dir) => `${this.base}/${dir}`);
  }

  get workers(): string {
    return `${this.base}/workers`;
  }

  worker(id: string): string {
    return `${this.workers}/${segment(id, 'worker id')}`;
  }

  assignment(worker: string): string {
    return `${this.base}/assignments/${segment(worker, 'worker id')}`;
  }

  offsetsRoute(route: string): string {
    return `${this.base}/offsets/${segment(route, 'route')}`;
  }

  offset(route: string, topic: string, partition: number): string {
    if (!Number.isInteger(partition) || partition < 0)
      throw new StraitError('STRAIT_STORE', `partition ${partition} of ${topic} is not a partition number`, { field: 'partition' });
    return `${this.offsetsRoute(route)}/${segment(topic, 'topic')}/${partition}`;
  }

  clusters(route: string): string {
    return `${this.base}/clusters/${segment(route, 'route')}`;
  }

  managedRoute(route: string): string {
    return `${this.base}/managed/${segment(route, 'route')}`;
  }

  managedTopic(route: string, topic: string): string {
    return `${this.managedRoute(route)}/${segment(topic, 'topic')}`;
  }

  get drained(): string {
    return `${this.base}/control/drained`;
  }

  drainedWorker(worker: string): string {
    return `${this.drained}/${segment(worker, 'worker')}`;
  }

  get paused(): string {
    return `${this.base}/control/paused`;
  }

  pausedRoute(route: string): string {
    return `${this.paused}/${segment(route, 'route')}`;
  }

  get reports(): string {
    return `${this.base}/reports`;
  }

  report(worker: string): string {
    return `${this.reports}/${segment(worker, 'worker id')}`;
  }

  get leader(): string {
    return `${this.base}/controller/leader`;
  }

  get routes(): string {
    return `${this.base}/routes`;
  }

  route(name: string): string {
    return `${this.routes}/${segment(name, 'route')}`;
  }
}
