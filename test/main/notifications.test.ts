/** main/notifications.ts: failures become notifications, at most one per forward per minute (injected clock). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { failureNotice, FailureNotifier, RateLimiter, type Notice } from '../../main/notifications.js';
import { forwardStatus } from '../support/index.js';

const forward = forwardStatus;
const failed = (id: string) =>
  forward(id, {
    state: 'error',
    error: { code: 'EADDRINUSE', message: 'Port 8000 is in use by another program.' },
  });
const backendFailed = (id: string) =>
  forward(id, {
    backend: { state: 'failed', pid: null, restarts: 5, exitCode: 3, signal: null, fdCheck: 'clean' },
  });

test('the rate limiter allows one per key per interval', () => {
  let now = 0;
  const limiter = new RateLimiter(60_000, () => now);
  assert.equal(limiter.allow('a'), true);
  assert.equal(limiter.allow('a'), false);
  assert.equal(limiter.allow('b'), true, 'keys are independent');
  now = 59_999;
  assert.equal(limiter.allow('a'), false);
  now = 60_000;
  assert.equal(limiter.allow('a'), true);
  assert.equal(limiter.allow('a'), false, 'the window restarts');
  limiter.forget('a');
  assert.equal(limiter.allow('a'), true);
});

test('a notice is due when a forward enters error or its backend enters failed, not while it stays there', () => {
  assert.deepEqual(failureNotice(forward('web'), failed('web')), {
    title: 'web failed',
    body: 'Port 8000 is in use by another program.',
  });
  assert.deepEqual(failureNotice(undefined, failed('web'))?.title, 'web failed', 'failing at launch');
  assert.equal(failureNotice(failed('web'), failed('web')), undefined);
  assert.deepEqual(failureNotice(forward('api', { name: 'API' }), { ...backendFailed('api'), name: 'API' }), {
    title: 'API: backend failed',
    body: 'Its backend process failed (exit code 3).',
  });
  assert.equal(failureNotice(backendFailed('api'), backendFailed('api')), undefined);
  assert.equal(failureNotice(failed('web'), forward('web')), undefined, 'recovering is not news');
  assert.equal(failureNotice(undefined, forward('web', { state: 'stopped', enabled: false })), undefined);
});

test('a forward whose target stops answering is notified, and again when it answers', () => {
  const health = (state: 'healthy' | 'unhealthy' | 'unknown', message: string | null = null) =>
    forward('web', { health: { state, checkedAt: null, failures: state === 'unhealthy' ? 3 : 0, message } });
  const sick = health('unhealthy', 'nothing is listening on 127.0.0.1:3000');
  assert.deepEqual(failureNotice(health('healthy'), sick), {
    title: 'web is unhealthy',
    body: 'Its target does not answer: nothing is listening on 127.0.0.1:3000.',
  });
  assert.deepEqual(
    failureNotice(health('unknown'), sick)?.title,
    'web is unhealthy',
    'unhealthy from the start',
  );
  assert.equal(failureNotice(sick, sick), undefined, 'not while it stays so');
  assert.deepEqual(failureNotice(sick, health('healthy')), {
    title: 'web is healthy again',
    body: 'Its target answers its health check.',
  });
  assert.equal(
    failureNotice(health('unknown'), health('healthy')),
    undefined,
    'a first good check is not news',
  );
});

test('a flapping forward notifies at most once a minute; other forwards are not held back', () => {
  let now = 1_000_000;
  const shown: Notice[] = [];
  const notifier = new FailureNotifier((n) => shown.push(n), new RateLimiter(60_000, () => now));
  notifier.handle({ type: 'snapshot', forwards: [forward('web'), forward('db')] });
  for (let i = 0; i < 10; i += 1) {
    notifier.handle({ type: 'forward', forward: failed('web') });
    notifier.handle({ type: 'forward', forward: forward('web') });
    now += 5_000;
  }
  assert.equal(shown.length, 1, '10 failures in 50 s: one notification');
  notifier.handle({ type: 'forward', forward: failed('db') });
  assert.equal(shown.length, 2);
  now += 10_001;
  notifier.handle({ type: 'forward', forward: failed('web') });
  assert.equal(shown.length, 3, 'a minute after the first, web may notify again');
  notifier.handle({ type: 'stats', stats: [] });
  assert.equal(shown.length, 3);
});

test('a removed forward starts afresh; warnings are notified, rate-limited too', () => {
  const now = 0;
  const shown: Notice[] = [];
  const notifier = new FailureNotifier((n) => shown.push(n), new RateLimiter(60_000, () => now));
  notifier.handle({ type: 'forward', forward: failed('web') });
  notifier.handle({ type: 'removed', id: 'web' });
  notifier.handle({ type: 'forward', forward: failed('web') });
  assert.equal(shown.length, 2);
  notifier.handle({ type: 'notice', level: 'warning', message: 'config.json was kept aside' });
  notifier.handle({ type: 'notice', level: 'error', message: 'again' });
  notifier.handle({ type: 'notice', level: 'info', message: 'fyi' });
  assert.deepEqual(shown.at(-1), { title: 'Berth', body: 'config.json was kept aside' });
  assert.equal(shown.length, 3);
});
