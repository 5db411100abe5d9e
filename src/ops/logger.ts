import pino, { type Logger } from 'pino';
import { maskPhonesIn } from '../shared/phone';

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

/** An error as pino writes it, with the numbers its message and stack may quote (a partner's answer, say) masked. */
function maskedError(error: Error): pino.SerializedError {
  const serialized = pino.stdSerializers.err(error);
  serialized.message = maskPhonesIn(serialized.message);
  if (serialized.stack) serialized.stack = maskPhonesIn(serialized.stack);
  return serialized;
}

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
      serializers: { err: maskedError },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
