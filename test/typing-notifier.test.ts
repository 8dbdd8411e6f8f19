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

  // Calls go out on a promise chain: the async timer helpers let it run.
  const typeFor = async (ms: number, every: number) => {
    for (let t = 0; t < ms; t += every) {
      notifier.keystroke();
      await vi.advanceTimersByTimeAsync(every);
    }
  };

  it('sends true at once, renews at most every 300 ms while typing, and false after 300 ms idle', async () => {
    const start = Date.now();
    await typeFor(2000, 50); // a keystroke every 50 ms for 2 s
    const trues = sent.filter(([, on]) => on);
    expect(trues[0]![0]).toBe(start);
    for (let i = 1; i < trues.length; i++) expect(trues[i]![0] - trues[i - 1]![0]).toBeGreaterThanOrEqual(300);
    expect(trues.length).toBeLessThanOrEqual(Math.ceil(2000 / 300) + 1);
    expect(sent.some(([, on]) => !on)).toBe(false); // never idle long enough while typing
    // The last keystroke was at +1950 ms; false follows 300 ms later.
    await vi.advanceTimersByTimeAsync(249);
    expect(sent.at(-1)![1]).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent.at(-1)).toEqual([start + 1950 + 300, false]);
  });

  it('sends false on send, once', async () => {
    notifier.keystroke();
    notifier.stop();
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent.map(([, on]) => on)).toEqual([true, false]);
  });

  it('sends nothing when no key was pressed', async () => {
    notifier.stop();
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual([]);
  });

  it('a pause longer than 300 ms ends one typing burst and the next keystroke starts another', async () => {
    await typeFor(200, 100);
    await vi.advanceTimersByTimeAsync(500);
    await typeFor(100, 100);
    await notifier.settled();
    expect(sent.map(([, on]) => on)).toEqual([true, false, true]);
  });
});

describe('TypingNotifier ordering', () => {
  it('sends one call at a time, so a slow true cannot land after the false that follows it', async () => {
    const arrived: boolean[] = [];
    const inFlight: boolean[] = [];
    const notifier = new TypingNotifier({
      send: async (on) => {
        inFlight.push(on);
        expect(inFlight).toHaveLength(1); // never two at once
        // The true is slow (a congested request), the false fast.
        await new Promise((r) => setTimeout(r, on ? 50 : 1));
        arrived.push(on);
        inFlight.pop();
      },
    });
    notifier.keystroke();
    notifier.stop(); // the message is sent right away
    await notifier.settled();
    expect(arrived).toEqual([true, false]);
  });

  it('keeps going after a failed call', async () => {
    const sent: boolean[] = [];
    const notifier = new TypingNotifier({
      send: async (on) => {
        sent.push(on);
        if (on) throw new Error('network');
      },
    });
    notifier.keystroke();
    notifier.stop();
    await notifier.settled();
    expect(sent).toEqual([true, false]);
  });
});
