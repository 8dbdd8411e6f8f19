import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TypingNotifier } from '../web/src/typing/typing-notifier.ts';

describe('TypingNotifier (client-side typing debounce)', () => {
  let sent: [number, boolean][];
  let notifier: TypingNotifier;
  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    notifier = new TypingNotifier({ send: (on) => void sent.push([Date.now(), on]) });
  });
  afterEach(() => vi.useRealTimers());

  const typeFor = (ms: number, every: number) => {
    for (let t = 0; t < ms; t += every) {
      notifier.keystroke();
      vi.advanceTimersByTime(every);
    }
  };

  it('sends true at once, renews at most every 300 ms while typing, and false after 300 ms idle', () => {
    const start = Date.now();
    typeFor(2000, 50); // a keystroke every 50 ms for 2 s
    const trues = sent.filter(([, on]) => on);
    expect(trues[0]![0]).toBe(start);
    for (let i = 1; i < trues.length; i++) expect(trues[i]![0] - trues[i - 1]![0]).toBeGreaterThanOrEqual(300);
    expect(trues.length).toBeLessThanOrEqual(Math.ceil(2000 / 300) + 1);
    expect(sent.some(([, on]) => !on)).toBe(false); // never idle long enough while typing
    // The last keystroke was at +1950 ms; false follows 300 ms later.
    vi.advanceTimersByTime(249);
    expect(sent.at(-1)![1]).toBe(true);
    vi.advanceTimersByTime(1);
    expect(sent.at(-1)).toEqual([start + 1950 + 300, false]);
  });

  it('sends false on send, once', () => {
    notifier.keystroke();
    notifier.stop();
    vi.advanceTimersByTime(1000);
    expect(sent.map(([, on]) => on)).toEqual([true, false]);
  });

  it('sends nothing when no key was pressed', () => {
    notifier.stop();
    vi.advanceTimersByTime(1000);
    expect(sent).toEqual([]);
  });

  it('a pause longer than 300 ms ends one typing burst and the next keystroke starts another', () => {
    typeFor(200, 100);
    vi.advanceTimersByTime(500);
    typeFor(100, 100);
    expect(sent.map(([, on]) => on)).toEqual([true, false, true]);
  });
});
