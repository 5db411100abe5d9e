import { fieldDate } from '../../src/shared/field-values';

describe('a contact field read as a date', () => {
  it.each([
    ['2026-11-20T08:00:05+02:00', '2026-11-20T06:00:05.000Z'],
    ['2026-11-20T08:00:05', '2026-11-20T08:00:05.000Z'],
    ['2028-02-29', '2028-02-29T00:00:00.000Z'],
  ])('reads %s', (written, iso) => {
    expect(fieldDate(written)?.toISOString()).toBe(iso);
  });

  // JavaScript would roll these over into the next month rather than refuse them.
  it.each(['2026-02-30', '2026-02-29T10:00:00', '2026-04-31T08:00:00+02:00', '2026-13-01', 'tomorrow', ''])('takes %p for no date', (written) => {
    expect(fieldDate(written)).toBeUndefined();
  });
});
