import { describe, expect, it, vi } from 'vitest';
import { forwardStatus } from '../test/fake-transport.js';
import { ForwardStore, HISTORY_LENGTH } from './store.js';

describe('ForwardStore', () => {
  it('applies the snapshot, then forward, stats and removed events, notifying subscribers', () => {
    const store = new ForwardStore();
    const listener = vi.fn();
    store.subscribe(listener);
    expect(store.getSnapshot().loaded).toBe(false);
    store.apply({ type: 'snapshot', forwards: [forwardStatus()] });
    expect(store.getSnapshot()).toMatchObject({ loaded: true, forwards: [{ id: 'web' }] });
    store.apply({ type: 'forward', forward: forwardStatus({ id: 'db', state: 'starting' }) });
    store.apply({ type: 'forward', forward: forwardStatus({ state: 'stopped', enabled: false }) });
    expect(store.getSnapshot().forwards.map((f) => [f.id, f.state])).toEqual([
      ['web', 'stopped'],
      ['db', 'starting'],
    ]);
    store.apply({
      type: 'stats',
      stats: [
        {
          id: 'db',
          connections: { active: 2, total: 5 },
          bytes: { toTarget: 10, fromTarget: 20 },
          errors: 1,
          lastError: { code: 'ECONNREFUSED', message: 'The target refused.' },
        },
      ],
    });
    expect(store.getSnapshot().forwards[1]).toMatchObject({ connections: { active: 2 }, errors: 1 });
    store.apply({ type: 'removed', id: 'web' });
    expect(store.getSnapshot().forwards.map((f) => f.id)).toEqual(['db']);
    expect(listener).toHaveBeenCalledTimes(5);
  });

  it('keeps the same state object until something changes (useSyncExternalStore needs that)', () => {
    const store = new ForwardStore();
    store.apply({ type: 'snapshot', forwards: [forwardStatus()] });
    const before = store.getSnapshot();
    expect(store.getSnapshot()).toBe(before);
    store.sample(1000);
    const sampled = store.getSnapshot();
    store.sample(2000);
    expect(store.getSnapshot()).toBe(sampled);
  });

  it('turns byte totals into one throughput sample a second', () => {
    const store = new ForwardStore();
    store.apply({ type: 'snapshot', forwards: [forwardStatus({ bytes: { toTarget: 100, fromTarget: 0 } })] });
    store.sample(1000);
    store.apply({
      type: 'stats',
      stats: [
        {
          id: 'web',
          connections: { active: 1, total: 1 },
          bytes: { toTarget: 2148, fromTarget: 1000 },
          errors: 0,
          lastError: null,
        },
      ],
    });
    store.sample(2000);
    const history = store.getSnapshot().throughput.web ?? [];
    expect(history).toHaveLength(HISTORY_LENGTH);
    expect(history.at(-1)).toBe(3048);
    store.sample(3000);
    expect(store.getSnapshot().throughput.web?.slice(-2)).toEqual([3048, 0]);
  });

  it('keeps the last few notices and lets them be dismissed', () => {
    const store = new ForwardStore();
    for (let i = 0; i < 7; i++) store.notify('error', `problem ${i}`);
    const { notices } = store.getSnapshot();
    expect(notices.map((n) => n.message)).toEqual([
      'problem 2',
      'problem 3',
      'problem 4',
      'problem 5',
      'problem 6',
    ]);
    store.dismiss(notices[0]?.id ?? -1);
    expect(store.getSnapshot().notices).toHaveLength(4);
  });
});
