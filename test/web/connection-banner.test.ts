// @vitest-environment happy-dom
import { act, cleanup, render, screen } from '@testing-library/react';
import { createElement } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createConnectionStore, type ConnectionState } from '../../web/src/client/connection-state.ts';
import { ConnectionBanner, describeConnection } from '../../web/src/connection/ConnectionBanner.tsx';

describe('connection banner', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
  });
  afterEach(() => {
    cleanup();
    vi.useRealTimers();
  });

  const now = () => Date.now();

  it('walks through connecting, connected, reconnecting with a countdown, offline with a queue, and back', () => {
    const store = createConnectionStore({ status: 'connecting', queued: 0 });
    render(createElement(ConnectionBanner, { connection: store }));
    const banner = screen.getByRole('status');
    expect(banner.textContent).toBe('Connecting…');

    act(() => store.set({ status: 'connected' }));
    expect(banner.textContent).toBe('Connected');
    expect(banner.dataset.status).toBe('connected');

    act(() => store.set({ status: 'reconnecting', retryInMs: 5000, retryAt: now() + 5000 }));
    expect(banner.textContent).toBe('Reconnecting in 5 s');
    act(() => vi.advanceTimersByTime(2000));
    expect(banner.textContent).toBe('Reconnecting in 3 s');

    act(() => store.set({ status: 'offline', retryInMs: 10_000, retryAt: now() + 10_000, queued: 3 }));
    expect(banner.textContent).toBe('Offline (retrying in 10 s), 3 messages queued');
    expect(banner.dataset.queued).toBe('3');
    expect(banner.className).toContain('banner-bad');

    act(() => store.set({ status: 'connected', queued: 1 }));
    expect(banner.textContent).toBe('Connected, sending 1 queued');
    act(() => store.set({ queued: 0 }));
    expect(banner.textContent).toBe('Connected');
    expect(banner.className).toContain('banner-ok');
  });

  it('says when the server refused the credentials', () => {
    const state: ConnectionState = { status: 'closed', queued: 0, closeCode: 4403 };
    expect(describeConnection(state, now())).toEqual({ tone: 'bad', text: 'Signed out: please sign in again' });
    expect(describeConnection({ status: 'offline', queued: 1 }, now()).text).toBe('Offline, 1 message queued');
    expect(describeConnection({ status: 'reconnecting', queued: 0, retryInMs: 0, retryAt: now() }, now()).text).toBe('Reconnecting…');
  });
});
