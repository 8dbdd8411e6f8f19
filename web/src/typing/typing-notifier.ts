/**
 * Turns keystrokes into `setTyping` calls without flooding the API.
 *
 * Timing:
 * - the first keystroke sends `isTyping: true` at once;
 * - while keys keep coming, `true` is re-sent at most once per 300 ms
 *   (the server forgets a typist about 5 s after the last renewal);
 * - 300 ms after the last keystroke, `false` is sent;
 * - sending the message sends `false` at once (the server also clears the
 *   typist when the message arrives).
 *
 * Calls are sent one after another, never overlapping: a `true` still in
 * flight when the message is sent cannot overtake the `false` that follows it
 * and leave the indicator on until the server's expiry.
 *
 * It knows nothing of GraphQL: `send` is the call that performs the mutation.
 */
export interface TypingNotifierOptions {
  send(isTyping: boolean): void | Promise<unknown>;
  /** Minimum gap between two `true` sends, and the idle time before `false`. Default 300 ms. */
  intervalMs?: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export class TypingNotifier {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private typing = false;
  private lastTrueAt = -Infinity;
  private idleTimer: unknown;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: TypingNotifierOptions) {
    this.intervalMs = options.intervalMs ?? 300;
    this.now = options.now ?? (() => Date.now());
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  }

  /** Call on every keystroke (input event) in the message box. */
  keystroke(): void {
    const now = this.now();
    if (!this.typing || now - this.lastTrueAt >= this.intervalMs) {
      this.typing = true;
      this.lastTrueAt = now;
      this.enqueue(true);
    }
    this.clearTimer(this.idleTimer);
    this.idleTimer = this.setTimer(() => this.stop(), this.intervalMs);
  }

  /** Call when the message is sent (or the box is cleared or loses focus). */
  stop(): void {
    this.clearTimer(this.idleTimer);
    this.idleTimer = undefined;
    if (!this.typing) return;
    this.typing = false;
    this.lastTrueAt = -Infinity;
    this.enqueue(false);
  }

  /** Resolves once every call made so far has been answered (or failed). */
  settled(): Promise<void> {
    return this.chain.then(() => undefined);
  }

  private enqueue(isTyping: boolean) {
    // A failed call must not block the ones after it.
    this.chain = this.chain.then(() => this.options.send(isTyping)).catch(() => undefined);
  }

  /** Stops timers without sending anything (component unmount). */
  dispose(): void {
    this.clearTimer(this.idleTimer);
    this.idleTimer = undefined;
  }
}
