import fc from 'fast-check';
import { limiterFor } from '../../src/jobs/worker';

/** Jobs a second that a limiter lets start, at most. */
const rateOf = ({ max, duration }: { max: number; duration: number }) => (1000 * max) / duration;

describe('limiterFor: a rate as BullMQ limiter windows', () => {
  it.each([
    [80, { max: 8, duration: 100 }],
    [500, { max: 50, duration: 100 }],
    [15, { max: 2, duration: 134 }],
    [4, { max: 1, duration: 250 }],
    [0.5, { max: 1, duration: 2000 }],
  ])('%s a second: %o', (perSecond, limiter) => {
    expect(limiterFor(perSecond)).toEqual(limiter);
  });

  it('never lets more than the rate start, and loses at most 2% of it', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.01, max: 100_000, noNaN: true }), (perSecond) => {
        const rate = rateOf(limiterFor(perSecond));
        expect(rate).toBeLessThanOrEqual(perSecond);
        expect(rate).toBeGreaterThanOrEqual(0.98 * perSecond);
      }),
    );
  });

  it('spreads a second over windows of at most 0.15 s from 10 a second up: no second-long burst', () => {
    fc.assert(
      fc.property(fc.double({ min: 10, max: 100_000, noNaN: true }), (perSecond) => {
        const { max, duration } = limiterFor(perSecond);
        expect(duration).toBeLessThanOrEqual(150);
        expect(max).toBeGreaterThanOrEqual(1);
      }),
    );
  });
});
