/**
 * The controller gauges the alert rules read (strait_controller_leader, strait_controller_workers) and the
 * checkpoint age: exported only by the process they describe, and gone when what they describe is gone.
 */
import t from 'tap';
import { StraitMetrics } from '../shared/metrics';

t.test('a worker process exports no controller gauges; a controller exports its leadership and, leading, its workers', async (t) => {
  const m = new StraitMetrics(false);
  t.notMatch(await m.registry.metrics(), /^strait_controller_(leader|workers)\{/m, 'no controller: no samples');
  let lead: { workers: number } | undefined = { workers: 3 };
  m.controllerProcess = { id: 'c1', leading: () => lead };
  let text = await m.registry.metrics();
  t.match(text, /^strait_controller_leader\{controller="c1"\} 1$/m);
  t.match(text, /^strait_controller_workers\{controller="c1"\} 3$/m);
  lead = undefined;
  text = await m.registry.metrics();
  t.match(text, /^strait_controller_leader\{controller="c1"\} 0$/m, 'a standby says 0');
  t.notMatch(text, /^strait_controller_workers\{/m, 'and exports no worker count');
});

t.test('the checkpoint age of a group no longer checkpointed is not exported', async (t) => {
  const m = new StraitMetrics(false);
  m.checkpointTimes.set('r\u0000g', { route: 'r', group: 'g', at: Date.now() - 30_000 });
  m.checkpointTimes.set('r\u0000h', { route: 'r', group: 'h', at: Date.now() });
  const age = /^strait_checkpoint_age_seconds\{route="r",group="g"\} ([0-9.]+)$/m.exec(await m.registry.metrics());
  t.ok(age && Number(age[1]) >= 30 && Number(age[1]) < 60, `age ${age?.[1]} s`);
  m.checkpointTimes.delete('r\u0000g');
  const text = await m.registry.metrics();
  t.notMatch(text, /group="g"/, 'gone with its entry');
  t.match(text, /group="h"/);
});
