import { z } from 'zod';
import { DEFAULT_RATE_LIMITS, rateLimitEnv } from './ratelimit/limits.ts';

const duration = z
  .string()
  .regex(/^\d+\s*(s|m|h|d)$/, 'a duration such as 90s, 15m, 24h or 7d');

const ConfigSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    HOST: z.string().default('0.0.0.0'),
    PORT: z.coerce.number().int().min(0).max(65535).default(4000),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
      .optional()
      .or(z.literal('').transform(() => undefined)),
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, 'a redis:// URL')
      .optional()
      .or(z.literal('').transform(() => undefined)),
    /** Prefix of every Redis key and channel, so several deployments can share one Redis. */
    REDIS_PREFIX: z.string().max(64).regex(/^[\w:.-]*$/, 'letters, digits and _ : . - only').default(''),
    JWT_SECRET: z.string().optional().or(z.literal('').transform(() => undefined)),
    JWT_TTL: duration.default('24h'),
    DATA_DIR: z.string().default('./.data'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** How long stop() may take to drain: in-flight requests, then WebSocket clients, are cut at this deadline. */
    SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(5000),
    /** How long a stopping server answers /readyz 503 while still serving, before it closes the listener. */
    SHUTDOWN_DELAY_MS: z.coerce.number().int().min(0).max(60_000).default(0),
    /** When set, GET /metrics requires `Authorization: Bearer <METRICS_TOKEN>`. */
    METRICS_TOKEN: z.string().min(16, 'at least 16 characters').optional().or(z.literal('').transform(() => undefined)),
    /** `on`: a subscription event is executed once per distinct operation and shared; `off`: once per subscriber (for comparison). */
    FANOUT_SHARING: z.enum(['on', 'off']).default('on'),
    /** Events one subscription may have waiting for a slow client before its socket is closed (1013) to resume later. */
    SUBSCRIPTION_QUEUE_LIMIT: z.coerce.number().int().min(10).default(1000),
    /** Unsent bytes one WebSocket may hold for feed subscriptions (messageAdded) before it is closed (1013) to resume later. */
    WS_MAX_BUFFERED_BYTES: z.coerce.number().int().min(64 * 1024).default(4 * 1024 * 1024),
    /** Subscriptions one WebSocket may run at once. */
    WS_MAX_SUBSCRIPTIONS: z.coerce.number().int().min(1).default(100),
    /** WebSocket connections one user may hold on one API process (tabs, devices). */
    WS_MAX_CONNECTIONS_PER_USER: z.coerce.number().int().min(1).default(20),
    /** A user whose last connection closed stays online this long, so reloads do not flap. */
    PRESENCE_GRACE_MS: z.coerce.number().int().min(0).default(5000),
    /** Browser origins (comma-separated, or `*`) allowed to call the API cross-origin; unset: see corsPolicy(). */
    CORS_ORIGINS: z
      .string()
      .optional()
      .transform((v) => v?.split(',').map((o) => o.trim()).filter(Boolean))
      .refine((list) => !list || list.every((o) => o === '*' || /^https?:\/\/[^/\s]+$/.test(o)), 'origins such as https://chat.example.com, or *'),
    /** `false` refuses introspection queries (the SDL stays published in schema/schema.graphql). */
    INTROSPECTION: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
    /** Largest request body POST /graphql accepts, in bytes (413 above). */
    GRAPHQL_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
    /** Proxies in front of the API whose X-Forwarded-For entries are trusted for the client address (0: none). */
    TRUST_PROXY: z.coerce.number().int().min(0).max(10).default(0),
    /** `off` turns every rate limit off (load tests); each RATE_LIMIT_* also takes `off`. */
    RATE_LIMITS: z.enum(['on', 'off']).default('on'),
    RATE_LIMIT_SIGN_IN_IP: rateLimitEnv.prefault(DEFAULT_RATE_LIMITS.signInIp),
    RATE_LIMIT_SIGN_IN_EMAIL: rateLimitEnv.prefault(DEFAULT_RATE_LIMITS.signInEmail),
    RATE_LIMIT_SIGN_UP_IP: rateLimitEnv.prefault(DEFAULT_RATE_LIMITS.signUpIp),
    RATE_LIMIT_SEND_MESSAGE: rateLimitEnv.prefault(DEFAULT_RATE_LIMITS.sendMessage),
    RATE_LIMIT_SET_TYPING: rateLimitEnv.prefault(DEFAULT_RATE_LIMITS.setTyping),
    RATE_LIMIT_PUBLISH_METRICS: rateLimitEnv.prefault(DEFAULT_RATE_LIMITS.publishMetrics),
    RATE_LIMIT_UPLOAD: rateLimitEnv.prefault(DEFAULT_RATE_LIMITS.upload),
    RATE_LIMIT_DOC_UPDATE: rateLimitEnv.prefault(DEFAULT_RATE_LIMITS.docUpdate),
    RATE_LIMIT_DOC_AWARENESS: rateLimitEnv.prefault(DEFAULT_RATE_LIMITS.docAwareness),
    /** With Redis: connections of a process that stopped renewing them (it died) lapse after this long. */
    PRESENCE_TTL_MS: z.coerce.number().int().min(1000).default(30_000),
    /** A typist who does not renew setTyping(true) disappears after this long. */
    TYPING_TTL_MS: z.coerce.number().int().min(500).default(5000),
    /** Largest Yjs update applyDocUpdate accepts, in decoded bytes. */
    DOC_UPDATE_MAX_BYTES: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(256 * 1024),
    /** Largest awareness update applyDocAwareness accepts, in decoded bytes. */
    DOC_AWARENESS_MAX_BYTES: z.coerce.number().int().min(256).max(1024 * 1024).default(8 * 1024),
    /** Largest shared document (snapshot plus pending updates); further updates are refused. */
    DOC_MAX_BYTES: z.coerce.number().int().min(1024).max(2 ** 31 - 1).default(5 * 1024 * 1024),
    /** Updates stored beside a document's snapshot before they are merged into it. */
    DOC_COMPACT_EVERY: z.coerce.number().int().min(1).default(200),
    /** A document awareness state (cursor) not renewed for this long is dropped; clients renew every 15 s. */
    DOC_AWARENESS_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
    /** Largest file `POST /uploads` accepts, in bytes; capped by the 32-bit size column. */
    UPLOAD_MAX_BYTES: z.coerce.number().int().min(1).max(2 ** 31 - 1).default(10 * 1024 * 1024),
    /** How long a signed attachment url (`Attachment.signedUrl`) stays valid. */
    UPLOAD_URL_TTL: duration.default('1h'),
    /** Emails (comma-separated) whose users may call publishMetrics, besides users with the 'publisher' role. */
    METRICS_PUBLISHER_EMAILS: z
      .string()
      .default('')
      .transform((v) => v.split(',').map((e) => e.trim().toLowerCase()).filter(Boolean)),
    /** Dashboard subscribers receive at most one batch per this interval. */
    DASHBOARD_INTERVAL_MS: z.coerce.number().int().min(50).max(60_000).default(250),
    /** How much per-key history metrics(keys) keeps for sparklines. */
    METRICS_HISTORY: duration.default('5m'),
    /** Web Push (VAPID) keys, URL-safe base64; generated into DATA_DIR outside production when unset. */
    VAPID_PUBLIC_KEY: z.string().optional().or(z.literal('').transform(() => undefined)),
    VAPID_PRIVATE_KEY: z.string().optional().or(z.literal('').transform(() => undefined)),
    /** Contact for push services: a mailto: or https: URL. */
    VAPID_SUBJECT: z
      .string()
      .regex(/^(mailto:|https:\/\/)/, 'a mailto: or https:// URL')
      .default('mailto:notifications@example.com'),
    /** SMTP server for email digests, e.g. smtp://user:pass@host:587; unset: no email. */
    SMTP_URL: z
      .string()
      .regex(/^smtps?:\/\//, 'an smtp:// or smtps:// URL')
      .optional()
      .or(z.literal('').transform(() => undefined)),
    /** Sender of email digests. */
    EMAIL_FROM: z.string().default('Realtime Chat <no-reply@localhost>'),
    /** How long an important notification stays unread before it goes into an email digest. */
    EMAIL_DIGEST_DELAY: duration.default('10m'),
  })
  .superRefine((env, ctx) => {
    if (Boolean(env.VAPID_PUBLIC_KEY) !== Boolean(env.VAPID_PRIVATE_KEY)) {
      ctx.addIssue({ code: 'custom', path: ['VAPID_PRIVATE_KEY'], message: 'VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY go together' });
    }
    if (env.NODE_ENV === 'production') {
      if (!env.JWT_SECRET) ctx.addIssue({ code: 'custom', path: ['JWT_SECRET'], message: 'is required in production' });
      else if (env.JWT_SECRET.length < 32)
        ctx.addIssue({ code: 'custom', path: ['JWT_SECRET'], message: 'must be at least 32 characters' });
    }
  });

export type Config = z.infer<typeof ConfigSchema>;

/**
 * Reads configuration from environment variables. Throws one error listing
 * every invalid variable, so a misconfigured deployment fails at start-up.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const result = ConfigSchema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** Milliseconds in a duration such as "15m". */
export function durationMs(value: string): number {
  const match = /^(\d+)\s*(s|m|h|d)$/.exec(value);
  if (!match) throw new Error(`Not a duration: ${value}`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
