import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../api/config.ts';
import { clientAddress } from '../api/http/client-address.ts';
import { createLogger } from '../api/logger.ts';
import { createRateLimiter, rateLimitSettings } from '../api/ratelimit/index.ts';

const log = createLogger('silent');

describe('rate limit configuration', () => {
  it('has generous defaults, one variable per action, and RATE_LIMITS=off', () => {
    const defaults = rateLimitSettings(loadConfig({}));
    expect(defaults).toEqual({
      signInIp: { points: 30, durationSeconds: 60 },
      signInEmail: { points: 10, durationSeconds: 900 },
      signUpIp: { points: 20, durationSeconds: 3600 },
      sendMessage: { points: 120, durationSeconds: 30 },
      setTyping: { points: 60, durationSeconds: 10 },
      publishMetrics: { points: 1200, durationSeconds: 60 },
      upload: { points: 30, durationSeconds: 60 },
      docUpdate: { points: 1200, durationSeconds: 60 },
      docAwareness: { points: 600, durationSeconds: 60 },
    });
    // A fast typist (2 messages/s) and typing renewals every 300 ms stay below the defaults.
    expect(2 * 30).toBeLessThan(defaults.sendMessage!.points);
    expect(10_000 / 300).toBeLessThan(defaults.setTyping!.points);
    // An editor sending an update per keystroke at 10 keys/s, and a cursor update every 200 ms.
    expect(10 * 60).toBeLessThan(defaults.docUpdate!.points);
    expect(5 * 60).toBeLessThan(defaults.docAwareness!.points);

    const tuned = rateLimitSettings(loadConfig({ RATE_LIMIT_SEND_MESSAGE: '5 / 2s', RATE_LIMIT_UPLOAD: 'off' }));
    expect(tuned.sendMessage).toEqual({ points: 5, durationSeconds: 2 });
    expect(tuned.upload).toBeNull();
    expect(Object.values(rateLimitSettings(loadConfig({ RATE_LIMITS: 'off' })))).toEqual(Array(9).fill(null));
  });

  it('rejects a malformed limit at start-up, naming the variable', () => {
    expect(() => loadConfig({ RATE_LIMIT_SET_TYPING: 'fast' })).toThrow(/RATE_LIMIT_SET_TYPING: a limit such as 120\/30s/);
    expect(() => loadConfig({ RATE_LIMIT_SET_TYPING: '0/10s' })).toThrow(/RATE_LIMIT_SET_TYPING/);
    expect(() => loadConfig({ CORS_ORIGINS: 'chat.example.com' })).toThrow(/CORS_ORIGINS/);
    expect(loadConfig({ CORS_ORIGINS: 'https://a.example, http://localhost:5173' }).CORS_ORIGINS).toEqual(['https://a.example', 'http://localhost:5173']);
  });
});

describe('in-memory rate limiter', () => {
  it('refuses past the limit with the time left in the window, per key', async () => {
    const limiter = createRateLimiter({ ...rateLimitSettings(loadConfig({ RATE_LIMITS: 'off' })), sendMessage: { points: 2, durationSeconds: 30 } }, { log });
    expect(await limiter.consume('sendMessage', 'ana')).toBeNull();
    expect(await limiter.consume('sendMessage', 'ana')).toBeNull();
    const refused = await limiter.consume('sendMessage', 'ana');
    expect(refused?.retryAfterSeconds).toBeGreaterThanOrEqual(29);
    expect(refused?.retryAfterSeconds).toBeLessThanOrEqual(30);
    expect(await limiter.consume('sendMessage', 'ben')).toBeNull();
    // Unlimited actions are never refused.
    for (let i = 0; i < 100; i++) expect(await limiter.consume('setTyping', 'ana')).toBeNull();
  });

  it('does not limit loopback clients per address, only per user and per email', async () => {
    const one = { points: 1, durationSeconds: 60 };
    const limiter = createRateLimiter({ ...rateLimitSettings(loadConfig({ RATE_LIMITS: 'off' })), signUpIp: one, signInIp: one, signInEmail: one }, { log });
    for (const address of ['127.0.0.1', '::1', '127.8.9.10']) {
      expect(await limiter.consume('signUpIp', address)).toBeNull();
      expect(await limiter.consume('signUpIp', address)).toBeNull();
      expect(await limiter.consume('signInIp', address)).toBeNull();
      expect(await limiter.consume('signInIp', address)).toBeNull();
    }
    expect(await limiter.consume('signUpIp', '203.0.113.1')).toBeNull();
    expect(await limiter.consume('signUpIp', '203.0.113.1')).not.toBeNull();
    await limiter.consume('signInEmail', '127.0.0.1');
    expect(await limiter.consume('signInEmail', '127.0.0.1')).not.toBeNull();
  });

  it('peeks without counting and forgets on reset', async () => {
    const limiter = createRateLimiter({ ...rateLimitSettings(loadConfig({ RATE_LIMITS: 'off' })), signInEmail: { points: 2, durationSeconds: 60 } }, { log });
    expect(await limiter.peek('signInEmail', 'a@x')).toBeNull();
    await limiter.consume('signInEmail', 'a@x');
    expect(await limiter.peek('signInEmail', 'a@x')).toBeNull();
    await limiter.consume('signInEmail', 'a@x');
    expect(await limiter.peek('signInEmail', 'a@x')).toMatchObject({ retryAfterSeconds: expect.any(Number) });
    await limiter.reset('signInEmail', 'a@x');
    expect(await limiter.peek('signInEmail', 'a@x')).toBeNull();
  });
});

describe('client address', () => {
  const req = (remoteAddress: string, forwarded?: string) =>
    ({ socket: { remoteAddress }, headers: forwarded ? { 'x-forwarded-for': forwarded } : {} }) as unknown as IncomingMessage;

  it('is the socket address unless proxies are trusted', () => {
    expect(clientAddress(req('::ffff:10.0.0.5', '1.2.3.4'), 0)).toBe('10.0.0.5');
    expect(clientAddress(undefined, 0)).toBeNull();
  });

  it('takes the entry the nearest trusted proxy appended, never a forged one further left', () => {
    expect(clientAddress(req('10.0.0.1', 'forged, 198.51.100.7'), 1)).toBe('198.51.100.7');
    expect(clientAddress(req('10.0.0.1', 'forged, 198.51.100.7, 10.0.0.2'), 2)).toBe('198.51.100.7');
    expect(clientAddress(req('10.0.0.1'), 1)).toBe('10.0.0.1');
  });
});
