import { maskPhone, maskPhonesIn } from '../../src/shared/phone';
import { createLogger } from '../../src/ops/logger';

describe('maskPhone', () => {
  it.each([
    ['+27820001001', '+2782*****01'],
    ['27820001001', '27820****01'],
    ['+27 82 000 1001', '+2782*****01'],
    ['123456', '******'],
  ])('masks %s as %s', (number, masked) => {
    expect(maskPhone(number)).toBe(masked);
  });

  it('gives nothing for nothing', () => {
    expect(maskPhone(null)).toBeUndefined();
    expect(maskPhone('')).toBeUndefined();
  });
});

describe('maskPhonesIn: one masking for pages, stored errors and logs', () => {
  it.each([
    ['no nurse with msisdn +27820001001', 'no nurse with msisdn +2782*****01'],
    ['(registered by 27820001002)', '(registered by 27820****02)'],
    // URL-encoded, as a partner's error quotes the request's query.
    ['GET /contacts?urn=%2B27820001002 failed', 'GET /contacts?urn=+2782*****02 failed'],
    ['%2b27820001002', '+2782*****02'],
    ['to=%2B27%2082%20000%201004', 'to=+2782*****04'],
    // Glued to letters or underscores, as in a field name or an id.
    ['x_27820001003', 'x_27820****03'],
    ['msisdn27820001003', 'msisdn27820****03'],
    ['whatsapp:27820001001', 'whatsapp:27820****01'],
    ['tel:+27820001001', 'tel:+2782*****01'],
    // Written as people write numbers.
    ['call +27 82 000 1004 now', 'call +2782*****04 now'],
    ['+27-82-000-1004', '+2782*****04'],
    ['+27.82.000.1004', '+2782*****04'],
    ['+27 (0)82 000 1004', '+2782*****04'],
    ['{"to":"27820001001","msisdn":"+27820001002"}', '{"to":"27820****01","msisdn":"+2782*****02"}'],
    ['+27820001001,+27820001002', '+2782*****01,+2782*****02'],
    // A Cloud API message id is base64 of the recipient's number: hidden whole.
    ['duplicate of wamid.HBgLMjc4MjAwMDEwMDEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA.', 'duplicate of wamid.….'],
  ])('masks %j', (text, masked) => {
    expect(maskPhonesIn(text)).toBe(masked);
  });

  it.each([
    // UUIDs, even one whose last group is 12 digits.
    ['opt-out 123e4567-e89b-12d3-a456-426614174000 failed'],
    ['contact 00000000-0000-4000-8000-000000000001'],
    // 14-digit timestamps (YYYYMMDDhhmmss), as DHIS2 and OpenHIM write them in ids.
    ['import 20261126101500 done'],
    ['at 19991231235959'],
    // Dates, times and counts.
    ['2026-11-26T10:15:00.000Z'],
    ['2026-11-26 10:15:00 +02:00'],
    ['took 12345678 ms'],
    ['1 000 000 000 rows'],
    // Short codes and numbers too short to be a phone's.
    ['dial *120*1234# or 0800123'],
    ['+2782'],
    ['HTTP 502 after 30000 ms'],
  ])('leaves %j as it is', (text) => {
    expect(maskPhonesIn(text)).toBe(text);
  });

  it('masks a 14-digit number that is no timestamp, and any with a +', () => {
    expect(maskPhonesIn('27820001001234')).toBe('27820*******34');
    expect(maskPhonesIn('+20261126101500')).toBe('+2026********00');
  });
});

describe('logged errors', () => {
  it('have the numbers in their message and stack masked', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => lines.push(line) } });
    logger.error({ err: new Error('OpenHIM answered 400: no nurse with msisdn %2B27820001002') }, 'opt-out try failed');
    const logged = JSON.parse(lines[0]!) as { err: { message: string; stack: string } };
    expect(logged.err.message).toBe('OpenHIM answered 400: no nurse with msisdn +2782*****02');
    expect(logged.err.stack).toMatch(/^Error: OpenHIM answered 400: no nurse with msisdn \+2782\*{5}02\n/);
    expect(lines[0]).not.toContain('0001002');
  });
});
