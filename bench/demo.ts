/**
 * `strait demo` (npm run demo): local clusters from the harness, then strait replicating between them.
 */
import * as dev from './local-cluster';

export async function runDemo(opts: { dir: string }): Promise<void> {
  const log = (l: string) => process.stdout.write(`${l}\n`);
  const state = dev.readState(opts.dir);
  const running = state ? dev.runningProcesses(state) : [];
  const s = running.length > 0 && state ? state : await dev.up({ clusters: 2, dir: opts.dir, log });
  for (const [alias, c] of Object.entries(s.clusters)) log(`kafka ${alias}: ${c.bootstrap}`);
  log("clusters are up; replication arrives with 'strait run' (Replication core). Stop them with 'strait dev down'.");
}
