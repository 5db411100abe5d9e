import { axisMax, dailyChart, lastDays } from '../../src/admin/chart';
import { duration, freeTextFor, phoneOf } from '../../src/admin/format';

describe('formatting', () => {
  it.each([
    [0, '0 s'],
    [59_400, '59 s'],
    [60_000, '1 min'],
    [3_600_000, '1 h'],
    [3_900_000, '1 h 5 min'],
    [47 * 3_600_000, '47 h'],
    [3 * 86_400_000, '3 days'],
  ])('%i ms reads %s', (ms, text) => {
    expect(duration(ms)).toBe(text);
  });

  it('shows a phone number in full to admins only', () => {
    expect(phoneOf('whatsapp:27820001001', { role: 'admin' })).toBe('+27820001001');
    expect(phoneOf('tel:+27820001001', { role: 'operator' })).toBe('+2782*****01');
    expect(phoneOf('mailto:jane@example.org', { role: 'admin' })).toBeUndefined();
    expect(phoneOf(null, { role: 'admin' })).toBeUndefined();
  });

  it("masks every number in a partner's text except to admins", () => {
    const text = 'no nurse with msisdn +27820001001 (registered by 27820001002)';
    expect(freeTextFor(text, { role: 'admin' })).toBe(text);
    expect(freeTextFor(text, { role: 'operator' })).toBe('no nurse with msisdn +2782*****01 (registered by 27820****02)');
    expect(freeTextFor(null, { role: 'viewer' })).toBeUndefined();
  });
});

describe('the daily chart', () => {
  it('rounds the axis up to 1, 2 or 5 times a power of ten', () => {
    expect([0, 1, 2, 3, 7, 10, 11, 49, 51, 999].map(axisMax)).toEqual([1, 1, 2, 5, 10, 10, 20, 50, 100, 1000]);
  });

  it('fills the last days (UTC) with zeros where nothing happened', () => {
    const days = lastDays(3, new Date('2026-03-01T01:00:00Z'), new Map([['2026-02-27', 4]]), new Map([['2026-03-01', 1]]));
    expect(days).toEqual([
      { day: '2026-02-27', received: 4, failed: 0 },
      { day: '2026-02-28', received: 0, failed: 0 },
      { day: '2026-03-01', received: 0, failed: 1 },
    ]);
  });

  it('draws bars to scale, with each day in a title and no inline style', () => {
    const svg = dailyChart([
      { day: '2026-03-01', received: 10, failed: 0 },
      { day: '2026-03-02', received: 5, failed: 5 },
    ]).value;
    const bars = [...svg.matchAll(/<rect class="bar-(\w+)" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)">/g)].map((match) => [
      match[1],
      Number(match[3]),
    ]);
    expect(bars).toEqual([
      ['received', 200],
      ['received', 100],
      ['failed', 100],
    ]);
    expect(svg).toContain('<title>2026-03-02: 5 received, 5 failed</title>');
    expect(svg).toContain('2 days: 15 received, 5 failed');
    expect(svg).not.toMatch(/style=/);
  });
});
