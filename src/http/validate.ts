import type { z } from 'zod';
import { AppError } from '../errors';

/** Parses with a zod schema, or throws the contract's 400 `invalid request` with one detail per problem. */
export function parseOrThrow<Schema extends z.ZodType>(schema: Schema, value: unknown): z.output<Schema> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw AppError.invalidRequest(
    result.error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message })),
  );
}
