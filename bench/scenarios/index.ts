/** Every bench scenario. A new one is a module in this folder, its name in SCENARIOS and its place below. */
import { ceiling } from './ceiling';
import { failover } from './failover';
import { latency } from './latency';
import { manyPartitions } from './many-partitions';
import { rest } from './rest';
import type { Scenario, ScenarioName } from './scenario';
import { throughput } from './throughput';
import { wan } from './wan';

/** In the order a run takes them, which results.md keeps (within a record size and codec, then the ones run once). */
const BY_NAME: Record<ScenarioName, Scenario> = { throughput, ceiling, wan, latency, 'many-partitions': manyPartitions, failover, rest };

export const SCENARIO_LIST: readonly Scenario[] = Object.values(BY_NAME);
