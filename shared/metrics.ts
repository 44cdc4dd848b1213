/**
 * Prometheus metrics (prom-client) for controller and worker, and the small HTTP server that exposes them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { LATENCY_BUCKETS_MS } from '../native';
import { hostHeaderAllowed, isLoopbackHost } from './http-guard';
import type { HttpErrorBody } from './errors';

/** A histogram fed with bucket counts the native forwarder already aggregated (prom-client has no bulk observe). */
class BucketHistogram {
  private readonly counts = new Map<string, { labels: Record<string, string>; buckets: number[]; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly boundsSeconds: number[],
  ) {}

  add(labels: Record<string, string>, counts: number[], sumSeconds: number): void {
    const key = JSON.stringify(labels);
    let e = this.counts.get(key);
    if (!e) this.counts.set(key, (e = { labels, buckets: new Array<number>(counts.length).fill(0), sum: 0, count: 0 }));
    counts.forEach((c, i) => (e.buckets[i] = (e.buckets[i] ?? 0) + c));
    e.sum += sumSeconds;
    e.count += counts.reduce((a, b) => a + b, 0);
  }

  /** the shape prom-client's registry serialises */
  get(): Promise<unknown> {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const e of this.counts.values()) {
      let cumulative = 0;
      this.boundsSeconds.forEach((le, i) => {
        cumulative += e.buckets[i] ?? 0;
        values.push({ labels: { ...e.labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...e.labels, le: '+Inf' }, value: e.count, metricName: `${this.name}_bucket` });
      values.push({ labels: e.labels, value: e.sum, metricName: `${this.name}_sum` });
      values.push({ labels: e.labels, value: e.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' });
  }

  /** percentile estimate (upper bucket bound) over every label set, in ms */
  quantileMs(q: number): number | undefined {
    const total = new Array<number>(this.boundsSeconds.length + 1).fill(0);
    let n = 0;
    for (const e of this.counts.values()) {
      e.buckets.forEach((c, i) => (total[i] = (total[i] ?? 0) + c));
      n += e.count;
    }
    if (n === 0) return undefined;
    let acc = 0;
    for (let i = 0; i < total.length; i++) {
      acc += total[i] ?? 0;
      if (acc >= q * n) return i < this.boundsSeconds.length ? (this.boundsSeconds[i] ?? 0) * 1000 : Infinity;
    }
    return Infinity;
  }

  reset(): void {
    this.counts.clear();
  }
}

export class StraitMetrics {
  readonly registry = new Registry();
  readonly records: Counter<'route' | 'topic' | 'partition'>;
  readonly bytes: Counter<'route' | 'topic' | 'partition'>;
  readonly dropped: Counter<'route' | 'topic'>;
  readonly latency: BucketHistogram;
  readonly recordAge: Gauge<'route' | 'topic' | 'partition'>;
  readonly lag: Gauge<'route' | 'topic' | 'partition'>;
  readonly paused: Gauge<'route' | 'topic' | 'partition'>;
  readonly assigned: Gauge<'route'>;
  readonly errors: Counter<'route' | 'topic' | 'code'>;
  readonly topicErrors: Gauge<'route' | 'topic' | 'code'>;
  readonly committedLag: Gauge<'route' | 'topic' | 'partition'>;
  readonly clientErrors: Counter<'route' | 'client' | 'code'>;
  readonly resent: Counter<'route' | 'topic'>;
  readonly partitionErrored: Gauge<'route' | 'topic' | 'partition' | 'code'>;
  readonly skipped: Counter<'route' | 'topic' | 'reason'>;
  readonly commits: Counter<'route'>;
  readonly fenced: Counter<'route'>;
  readonly commitFailures: Counter<'route'>;
  readonly producerRestarts: Counter<'route'>;
  readonly inflightBytes: Gauge;
  readonly checkpointAge: Gauge<'route' | 'group'>;
  readonly groupsTranslated: Gauge<'route'>;
  readonly translationMisses: Gauge<'route'>;
  readonly checkpointsWritten: Counter<'route'>;
  readonly groupOffsetsSynced: Counter<'route'>;
  /** when each route/group's checkpoint was last confirmed current (ms since the epoch), for checkpointAge */
  readonly checkpointTimes = new Map<string, { route: string; group: string; at: number }>();
  readonly routeLag: Gauge<'route'>;
  readonly moved: Counter;
  readonly assignmentRepairs: Counter;
  readonly routeUnverified: Gauge<'route'>;
  /**
   * Set by a controller process (`strait controller`, `strait run`): its id, and while it leads the number of workers
   * registered in the store. A worker process leaves it unset, so it exports neither controller gauge.
   */
  controllerProcess: { id: string; leading: () => { workers: number } | undefined } | undefined = undefined;
  readonly controllerLeader: Gauge<'controller'>;
  readonly controllerWorkers: Gauge<'controller'>;

  constructor(processMetrics = true) {
    if (processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'strait_process_' });
    const r = [this.registry];
    this.records = new Counter({
      name: 'strait_records_total',
      help: 'records replicated (acknowledged by the target)',
      labelNames: ['route', 'topic', 'partition'],
      registers: r,
    });
    this.bytes = new Counter({
      name: 'strait_bytes_total',
      help: 'bytes replicated: key + value + header names and values',
      labelNames: ['route', 'topic', 'partition'],
      registers: r,
    });
    this.dropped = new Counter({
      name: 'strait_records_dropped_total',
      help: 'records not forwarded because they came from the target (loop guard)',
      labelNames: ['route', 'topic'],
      registers: r,
    });
    this.latency = new BucketHistogram(
      'strait_replication_latency_seconds',
      'source record timestamp to target acknowledgement',
      LATENCY_BUCKETS_MS.map((b) => b / 1000),
    );
    this.registry.registerMetric(this.latency as unknown as Metric);
    this.recordAge = new Gauge({
      name: 'strait_record_age_seconds',
      help: 'age of the newest replicated record at acknowledgement',
      labelNames: ['route', 'topic', 'partition'],
      registers: r,
    });
    this.lag = new Gauge({
      name: 'strait_lag_records',
      help: 'source high watermark minus committable offset',
      labelNames: ['route', 'topic', 'partition'],
      registers: r,
    });
    this.resent = new Counter({
      name: 'strait_records_resent_total',
      help: 'records the target had already acknowledged, read and sent again: after a restart inside a worker (a retried refusal, a fatal producer error), or when a partition starts at its committed offset while the target holds records past it (a process restart, a move): duplicates on the target',
      labelNames: ['route', 'topic'],
      registers: r,
    });
    this.clientErrors = new Counter({
      name: 'strait_client_errors_total',
      help: 'errors a client reports for itself, not for a partition (e.g. the source consumer: _TRANSPORT, _ALL_BROKERS_DOWN), by librdkafka name',
      labelNames: ['route', 'client', 'code'],
      registers: r,
    });
    this.committedLag = new Gauge({
      name: 'strait_committed_lag_records',
      help: 'source high watermark minus the committed offset: what a restart would read again or still has to copy; grows while commits fail',
      labelNames: ['route', 'topic', 'partition'],
      registers: r,
    });
    this.paused = new Gauge({
      name: 'strait_partition_paused',
      help: '1 while a partition is paused (in-flight budget spent, or error)',
      labelNames: ['route', 'topic', 'partition'],
      registers: r,
    });
    this.assigned = new Gauge({ name: 'strait_partitions_assigned', help: 'partitions this worker replicates', labelNames: ['route'], registers: r });
    this.errors = new Counter({ name: 'strait_errors_total', help: 'errors by code', labelNames: ['route', 'topic', 'code'], registers: r });
    this.topicErrors = new Gauge({
      name: 'strait_topic_error',
      help: '1 while a topic is held because of an error (code label)',
      labelNames: ['route', 'topic', 'code'],
      registers: r,
    });
    this.partitionErrored = new Gauge({
      name: 'strait_partition_errored',
      help: '1 while a partition makes no progress because of an error (code label: a STRAIT_* partition code); the series goes away when it clears',
      labelNames: ['route', 'topic', 'partition', 'code'],
      registers: r,
    });
    this.skipped = new Counter({
      name: 'strait_records_skipped_total',
      help: 'source offsets never read because they left the log first (reason: retention = below the log start when strait got there; truncation and recreated count 0, see the README)',
      labelNames: ['route', 'topic', 'reason'],
      registers: r,
    });
    this.commits = new Counter({ name: 'strait_offset_commits_total', help: 'offset commits written to the store', labelNames: ['route'], registers: r });
    this.fenced = new Counter({
      name: 'strait_offset_commits_fenced_total',
      help: 'commits refused because a newer epoch owns the partition',
      labelNames: ['route'],
      registers: r,
    });
    this.commitFailures = new Counter({
      name: 'strait_commit_failures_total',
      help: "commit intervals in which a route's offsets could not be committed (the attempt failed, or an earlier one had not finished)",
      labelNames: ['route'],
      registers: r,
    });
    this.producerRestarts = new Counter({
      name: 'strait_producer_restarts_total',
      help: 'forwarders started again after their target producer failed fatally (one per pool thread and restart); the partitions are errored with STRAIT_PRODUCER_FATAL until then',
      labelNames: ['route'],
      registers: r,
    });
    this.inflightBytes = new Gauge({ name: 'strait_inflight_bytes', help: 'bytes consumed and not yet acknowledged by the target', registers: r });
    const times = this.checkpointTimes;
    this.checkpointAge = new Gauge({
      name: 'strait_checkpoint_age_seconds',
      help: "seconds since a consumer group's translated offsets were last checkpointed on the target",
      labelNames: ['route', 'group'],
      registers: r,
      collect() {
        const now = Date.now();
        // a group no longer checkpointed (gone from the source, or this controller stopped leading) has no age here
        this.reset();
        for (const t of times.values()) this.set({ route: t.route, group: t.group }, (now - t.at) / 1000);
      },
    });
    this.groupsTranslated = new Gauge({
      name: 'strait_groups_translated',
      help: 'consumer groups whose offsets the last checkpoint pass translated',
      labelNames: ['route'],
      registers: r,
    });
    this.translationMisses = new Gauge({
      name: 'strait_translation_misses',
      help: 'group partitions whose committed offset is older than the retained offset map (resumed at the oldest mapped record)',
      labelNames: ['route'],
      registers: r,
    });
    this.checkpointsWritten = new Counter({
      name: 'strait_checkpoints_written_total',
      help: 'checkpoint records written to __strait-checkpoints',
      labelNames: ['route'],
      registers: r,
    });
    this.groupOffsetsSynced = new Counter({
      name: 'strait_group_offsets_synced_total',
      help: 'partition offsets written into target consumer groups (sync.group.offsets)',
      labelNames: ['route'],
      registers: r,
    });
    this.routeLag = new Gauge({
      name: 'strait_route_lag_records',
      help: 'controller: sum of the lag workers reported for a route (high watermark minus committed)',
      labelNames: ['route'],
      registers: r,
    });
    this.moved = new Counter({
      name: 'strait_assignment_moved_total',
      help: 'controller: partitions that changed owner (a steadily growing count means flapping)',
      registers: r,
    });
    this.assignmentRepairs = new Counter({
      name: 'strait_assignment_repairs_total',
      help: 'controller: assignments written again because a worker reported other partitions than it was assigned (should stay 0)',
      registers: r,
    });
    // prom-client calls collect() with the gauge as `this`
    const controllerProcess = () => this.controllerProcess;
    this.controllerLeader = new Gauge({
      name: 'strait_controller_leader',
      help: 'controller: 1 while this controller is the elected leader (it assigns partitions), 0 while it stands by',
      labelNames: ['controller'],
      registers: r,
      collect() {
        this.reset();
        const p = controllerProcess();
        if (p) this.set({ controller: p.id }, p.leading() ? 1 : 0);
      },
    });
    this.controllerWorkers = new Gauge({
      name: 'strait_controller_workers',
      help: 'controller: workers registered in the store (drained ones included), exported by the leader only',
      labelNames: ['controller'],
      registers: r,
      collect() {
        this.reset();
        const p = controllerProcess();
        const lead = p?.leading();
        if (p && lead) this.set({ controller: p.id }, lead.workers);
      },
    });
    this.routeUnverified = new Gauge({
      name: 'strait_route_unverified',
      help: "worker: 1 while an assignment carries a definition of this route that matches neither the controller's stored route nor the worker's config file (its partitions are not started)",
      labelNames: ['route'],
      registers: r,
    });
  }
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | boolean;

/**
 * Serves `/metrics` plus whatever `extra` handles; binds to the given host (127.0.0.1 by default). Read-only: it
 * answers GET alone and changes nothing. Bound to loopback it answers only loopback `Host` names, so a web page cannot
 * read it through DNS rebinding (shared/http-guard.ts). Errors are JSON `{code, message, field?}` like the REST API's.
 */
export async function serveMetrics(metrics: StraitMetrics, host: string, port: number, extra?: Handler): Promise<Server> {
  const loopback = isLoopbackHost(host);
  const fail = (res: ServerResponse, status: number, body: HttpErrorBody) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = createServer({ requireHostHeader: false }, (req, res) => {
    void (async () => {
      try {
        if (loopback && !hostHeaderAllowed(req.headers.host, host)) {
          return fail(res, 403, {
            code: 'STRAIT_FORBIDDEN_HOST',
            message: `this endpoint is bound to a loopback address (metrics.host ${host}) and answers only the Host names 127.0.0.1, localhost, [::1] and ${host}`,
            field: 'host',
          });
        }
        if (req.method === 'GET' && req.url === '/metrics') {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(await metrics.registry.metrics());
          return;
        }
        if (extra && (await extra(req, res))) return;
        const path = (req.url ?? '').split('?')[0]!;
        fail(res, 404, {
          code: 'STRAIT_NOT_FOUND',
          message: `no endpoint ${req.method} ${JSON.stringify(path.length > 100 ? `${path.slice(0, 97)}...` : path)} (this endpoint answers GET /metrics, /v1/health, /v1/status)`,
        });
      } catch (e) {
        fail(res, 500, { code: 'STRAIT_INTERNAL', message: (e as Error).message });
      }
    })();
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(port, host, () => res());
  });
  return server;
}
