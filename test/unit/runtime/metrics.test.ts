import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FakeClock, flushMicrotasks } from '../../../src/runtime/clock.ts';
import { RuntimeMetrics } from '../../../src/runtime/metrics.ts';
import { ItemExponentialFailureRateLimiter } from '../../../src/runtime/ratelimiter.ts';
import { Outcome } from '../../../src/runtime/reconcile.ts';
import { runWorkers } from '../../../src/runtime/worker.ts';
import { WorkQueue } from '../../../src/runtime/workqueue.ts';

function line(text: string, prefix: string): string | undefined {
  return text.split('\n').find((l) => l.startsWith(prefix));
}

describe('prom-client runtime metrics', () => {
  it('exposes controller-runtime metric names with the counts the queue reports', async () => {
    const registry = new Registry();
    const metrics = RuntimeMetrics.for(registry);
    expect(RuntimeMetrics.for(registry)).toBe(metrics); // memoised per registry
    const clock = new FakeClock();
    const q = new WorkQueue<string>({ name: 'eventlog', clock, rateLimiter: new ItemExponentialFailureRateLimiter<string>(), metrics: metrics.forQueue('eventlog') });
    let fail = true;
    const run = runWorkers(q, 
      1,
      (key) => {
        clock.advance(100);
        if (key === 'a' && fail) {
          fail = false;
          return Outcome.error(new Error('transient'));
        }
        return Outcome.done();
      },
      { controllerMetrics: metrics.forController('eventlog') },
    );
    q.add('a');
    q.add('b');
    q.add('b'); // deduped
    await flushMicrotasks();
    await clock.advanceAsync(5); // a retried after 5 ms
    q.shutdown();
    await run;

    const text = await registry.metrics();
    expect(line(text, 'workqueue_adds_total{name="eventlog"}')).toBe('workqueue_adds_total{name="eventlog"} 3');
    expect(line(text, 'workqueue_retries_total{name="eventlog"}')).toBe('workqueue_retries_total{name="eventlog"} 1');
    expect(line(text, 'workqueue_depth{name="eventlog"}')).toBe('workqueue_depth{name="eventlog"} 0');
    expect(line(text, 'workqueue_queue_duration_seconds_count{name="eventlog"}')).toBe('workqueue_queue_duration_seconds_count{name="eventlog"} 3');
    expect(line(text, 'workqueue_work_duration_seconds_count{name="eventlog"}')).toBe('workqueue_work_duration_seconds_count{name="eventlog"} 3');
    expect(line(text, 'workqueue_work_duration_seconds_sum{name="eventlog"}')).toMatch(/ 0\.30*\d*$/);
    expect(line(text, 'workqueue_unfinished_work_seconds{name="eventlog"}')).toBe('workqueue_unfinished_work_seconds{name="eventlog"} 0');
    expect(line(text, 'controller_runtime_reconcile_total{controller="eventlog",result="success"}')).toMatch(/ 2$/);
    expect(line(text, 'controller_runtime_reconcile_total{controller="eventlog",result="error"}')).toMatch(/ 1$/);
    expect(line(text, 'controller_runtime_reconcile_total{controller="eventlog",result="requeue_after"}')).toMatch(/ 0$/);
    expect(line(text, 'controller_runtime_reconcile_errors_total{controller="eventlog"}')).toMatch(/ 1$/);
    expect(line(text, 'controller_runtime_terminal_reconcile_errors_total{controller="eventlog"}')).toMatch(/ 0$/);
    expect(line(text, 'controller_runtime_reconcile_time_seconds_count{controller="eventlog"}')).toMatch(/ 3$/);
    expect(line(text, 'controller_runtime_max_concurrent_reconciles{controller="eventlog"}')).toMatch(/ 1$/);
    expect(line(text, 'controller_runtime_active_workers{controller="eventlog"}')).toMatch(/ 0$/);
  });

  it('computes unfinished work at scrape time', async () => {
    const registry = new Registry();
    const clock = new FakeClock();
    const q = new WorkQueue<string>({ name: 'slow', clock, metrics: RuntimeMetrics.for(registry).forQueue('slow') });
    q.add('x');
    q.tryGet();
    clock.advance(4000);
    const text = await registry.metrics();
    expect(line(text, 'workqueue_unfinished_work_seconds{name="slow"}')).toBe('workqueue_unfinished_work_seconds{name="slow"} 4');
    expect(line(text, 'workqueue_longest_running_processor_seconds{name="slow"}')).toBe('workqueue_longest_running_processor_seconds{name="slow"} 4');
  });
});
