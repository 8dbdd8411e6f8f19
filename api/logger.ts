import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs to stdout; tokens and passwords are redacted wherever they appear. */
export function createLogger(level: string, name = 'api'): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'headers.authorization',
        'connectionParams.authorization',
        '*.password',
        '*.token',
        'password',
        'token',
      ],
      censor: '[redacted]',
    },
  });
}
