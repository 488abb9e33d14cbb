import { describe, expect, it } from 'vitest';
import { addFinalizerPatch, removeFinalizerPatch } from '../../../src/runtime/finalizer.ts';

const F = 'eventlog.dev/finalizer';

describe('finalizer patches touch only our entry and fail on concurrent change', () => {
  it('adds to an existing list guarded by the list we saw', () => {
    expect(addFinalizerPatch(['other.io/x'], F, '7')).toEqual([
      { op: 'test', path: '/metadata/finalizers', value: ['other.io/x'] },
      { op: 'add', path: '/metadata/finalizers/-', value: F },
    ]);
  });

  it('creates the list guarded by the resourceVersion (JSON patch cannot test absence)', () => {
    for (const current of [undefined, []]) {
      expect(addFinalizerPatch(current, F, '7')).toEqual([
        { op: 'test', path: '/metadata/resourceVersion', value: '7' },
        { op: 'add', path: '/metadata/finalizers', value: [F] },
      ]);
    }
  });

  it('writes nothing when there is nothing to do', () => {
    expect(addFinalizerPatch(['a', F], F, '7')).toBeUndefined();
    expect(removeFinalizerPatch(['a'], F)).toBeUndefined();
    expect(removeFinalizerPatch(undefined, F)).toBeUndefined();
  });

  it('removes by index only if that index still holds our finalizer', () => {
    expect(removeFinalizerPatch(['a', F, 'b'], F)).toEqual([
      { op: 'test', path: '/metadata/finalizers/1', value: F },
      { op: 'remove', path: '/metadata/finalizers/1' },
    ]);
  });
});
