import { Kind } from 'graphql';
import { builder } from './builder.ts';
import { badInput } from './errors.ts';

function parseDate(value: unknown): Date {
  if (typeof value !== 'string') throw badInput('DateTime must be an ISO-8601 string.');
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw badInput(`"${value.slice(0, 40)}" is not an ISO-8601 date-time.`);
  return date;
}

export const DateTime = builder.scalarType('DateTime', {
  description: 'An instant in time, as an ISO-8601 string in UTC with millisecond precision, e.g. "2026-01-31T12:00:00.000Z".',
  serialize: (value) => (value instanceof Date ? value.toISOString() : new Date(value).toISOString()),
  parseValue: parseDate,
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING) throw badInput('DateTime must be an ISO-8601 string.');
    return parseDate(ast.value);
  },
});
