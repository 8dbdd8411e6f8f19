/**
 * Which user a VU plays, and how long it holds its socket. k6 only.
 */
import { sleep } from 'k6';
import exec from 'k6/execution';

/**
 * How long a VU that connects now should stay, so that every socket closes
 * itself when the scenario's hold phase ends (`endsAfterMs` after the
 * scenario started). Closing before k6's ramp-down interrupts the VU keeps
 * interrupted sockets out of the error count.
 */
export function remainingMs(endsAfterMs: number): number {
  return exec.scenario.startTime + endsAfterMs - Date.now();
}

/** Sleeps through the rest of the test without reconnecting (k6 interrupts sleep at the scenario's end). */
export function idle(seconds: number): void {
  sleep(seconds);
}

let ownUser: number | undefined;

/**
 * A user index for this VU, fixed at its first iteration: picked from
 * `pool` by the scenario's iteration counter, so the first `pool.length`
 * iterations of a scenario cover every user once. Fixed per VU so a VU
 * signs in once and reconnects as the same person.
 */
export function stickyUser(pool: readonly number[]): number {
  if (ownUser === undefined) ownUser = pool[exec.scenario.iterationInTest % pool.length] as number;
  return ownUser;
}

let round = 0;

/**
 * The next sender for this VU: each VU cycles through its own slice of the
 * senders (those whose position is congruent to the VU id), so a VU signs
 * in a bounded number of users instead of all of them.
 */
export function nextSender(senders: readonly number[], senderVus: number): number {
  const lane = exec.vu.idInTest % Math.max(1, senderVus);
  const mine: number[] = [];
  for (let i = lane; i < senders.length; i += Math.max(1, senderVus)) mine.push(senders[i] as number);
  const pool = mine.length > 0 ? mine : senders;
  round += 1;
  return pool[round % pool.length] as number;
}
