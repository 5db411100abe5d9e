import { bodyReportsError, failureFromRequestError, isTransientStatus, parseRetryAfter } from '../../src/partners/failures';
import { AnswerTooLarge } from '../../src/partners/http-client';
import { retryDelayMs } from '../../src/jobs/retry-policy';

describe('partner failures', () => {
  it.each([
    [408, true],
    [429, true],
    [500, true],
    [503, true],
    [400, false],
    [401, false],
    [404, false],
    [409, false],
    [425, false],
  ])('HTTP %i is transient: %s', (status, transient) => {
    expect(isTransientStatus(status)).toBe(transient);
  });

  it.each([
    [undefined, 'transient'],
    [200, 'transient'],
    [503, 'transient'],
    [429, 'transient'],
    [408, 'transient'],
    [400, 'permanent'],
    [413, 'permanent'],
  ])('counts an answer too large to read with status %s as %s, and keeps the status', (status, kind) => {
    const failure = failureFromRequestError('openhim', new AnswerTooLarge(status));
    expect(failure.kind).toBe(kind);
    expect(failure.answer?.status).toBe(status);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-11-27T10:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Fri, 27 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Fri, 27 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('takes a DHIS2 import summary with status ERROR, or an error field, for a failure', () => {
    expect(bodyReportsError({ status: 'ERROR', validationReport: {} })).toBe(true);
    expect(bodyReportsError({ errors: [{ code: 1 }] })).toBe(true);
    expect(bodyReportsError({ error: { code: 132000 } })).toBe(true);
    expect(bodyReportsError({ status: 'OK', errors: [] })).toBe(false);
    expect(bodyReportsError({ messages: [{ id: 'wamid.1' }], error: null })).toBe(false);
    expect(bodyReportsError({ error: '' })).toBe(true);
    expect(bodyReportsError('accepted')).toBe(false);
  });
});

describe('retry delays', () => {
  const policy = { backoffMs: 30_000, maxBackoffMs: 6 * 3600_000 };

  it('doubles with each attempt, with half of each delay random', () => {
    expect(retryDelayMs(1, policy, undefined, () => 0)).toBe(15_000);
    expect(retryDelayMs(1, policy, undefined, () => 1)).toBe(30_000);
    expect(retryDelayMs(3, policy, undefined, () => 0)).toBe(60_000);
    expect(retryDelayMs(3, policy, undefined, () => 1)).toBe(120_000);
  });

  it('never waits less than Retry-After, nor more than the cap', () => {
    expect(retryDelayMs(1, policy, 90_000, () => 0)).toBe(90_000);
    expect(retryDelayMs(30, policy, undefined, () => 1)).toBe(6 * 3600_000);
    expect(retryDelayMs(1, policy, 48 * 3600_000, () => 0)).toBe(6 * 3600_000);
  });
});
