// k6 provides `console` (documented under "JavaScript API > console") but
// @types/k6 does not declare it, and DOM/node types stay out of this project.
declare global {
  const console: {
    log(...args: unknown[]): void;
    info(...args: unknown[]): void;
    warn(...args: unknown[]): void;
    error(...args: unknown[]): void;
    debug(...args: unknown[]): void;
  };
}
export {};
