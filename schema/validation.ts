import { z } from 'zod';
import { badInput } from './errors.ts';

/**
 * Parses input with a zod schema and turns the first issue into a
 * BAD_USER_INPUT error naming the offending field.
 */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.join('.') || undefined;
  throw badInput(field ? `${field}: ${issue?.message}` : (issue?.message ?? 'Invalid input.'), field);
}
