import pino, { type Logger } from 'pino';

export type { Logger };

/** Paths whose values never reach a log line, wherever they appear. */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.token',
  '*.password',
  '*.secret',
  '*.authorization',
  '*.msisdn',
  '*.phone',
  '*.urn',
];

/**
 * JSON lines on stdout. Written asynchronously: lines logged while a write is under way go out
 * together in the next one, instead of one blocking write each (pino flushes what is left at exit).
 */
export function createLogger(options: { level: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'companion' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** `+27820001001` → `+2782*****01`: enough for staff to tell numbers apart in logs, not enough to call. */
export function maskPhone(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const digits = value.replace(/[^\d+]/g, '');
  if (digits.length <= 6) return '*'.repeat(digits.length);
  return digits.slice(0, 5) + '*'.repeat(digits.length - 7) + digits.slice(-2);
}

/** Phone numbers within free text (a partner's error message quoting the recipient, say), masked as by maskPhone. */
export function maskPhonesIn(text: string): string {
  return text.replace(/(?<![\w.-])\+?\d{9,15}(?!\w)/g, (number) => maskPhone(number) ?? '');
}
