/**
 * Clock skew for the chaos run: a node restarted under libfaketime, whose wall clock is off
 * by a drawn offset while its monotonic clocks stay true.
 *
 * Chorus must not depend on wall-clock time: the core counts ticks from a monotonic clock
 * (`performance.now()`), and version vectors, not timestamps, order writes. Riak's
 * last-write-wins lost acknowledged writes with no fault at all and Aerospike lost data once
 * a clock was skewed by more than ~27 s (TESTING.md); a skewed node here must change nothing
 * the checkers can see.
 *
 * libfaketime is preloaded (`LD_PRELOAD`) with a relative offset (`FAKETIME="+2h"`): every
 * `clock_gettime(CLOCK_REALTIME)`, hence `Date.now()`, pino's `time` and the HTTP `Date`
 * header, runs that far ahead or behind, at the true rate. `FAKETIME_DONT_FAKE_MONOTONIC=1`
 * keeps `CLOCK_MONOTONIC` real, so libuv's timers, `performance.now()` and the node's ticks
 * are untouched: the fault is the wall clock alone, as on a machine whose NTP is wrong.
 *
 * The library is looked up through dpkg (Debian's `libfaketime`), then in the usual install
 * directories, and probed once with a child `node` before the run: a library that loads but
 * shifts nothing, or that shifts the monotonic clock too, is reported as unusable and the
 * fault is skipped, never run half-working.
 */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Where libfaketime lands when dpkg cannot say (other distributions, `make install`). */
const LIBRARY_PATHS = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/arm-linux-gnueabihf/faketime/libfaketime.so.1',
  '/usr/lib/i386-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib64/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
  '/usr/local/lib/faketime/libfaketime.so.1',
  '/usr/local/lib/libfaketime.so.1',
] as const;

/**
 * The offsets (seconds) a skew episode draws from: both directions, from just past the ~27 s
 * at which Aerospike lost data, through TESTING.md's −300 s and +120 s, to days. Every one is
 * far larger than the measurement's uncertainty (about a second), so a skew that took effect
 * can never be mistaken for one that did not.
 */
export const SKEW_OFFSETS_S: readonly number[] = [-3 * 86_400, -2 * 3600, -300, -40, 40, 120, 15 * 60, 2 * 3600, 7 * 86_400];

/** The probe's offset, and how far its measured shift may stray from it (a slow start of `node`). */
const PROBE_OFFSET_S = 86_400;
const PROBE_TOLERANCE_MS = 60_000;
/** How far apart the probe's and this process's monotonic clocks may read (two `hrtime` calls a process start apart). */
const PROBE_MONOTONIC_TOLERANCE_MS = 60_000;

/**
 * How far a measured clock may stray from the intended offset beyond the reading's own
 * uncertainty (the request's time and the `Date` header's whole seconds): a loaded node may
 * take this long between reading its clock for the header and sending it.
 */
export const SKEW_SLACK_MS = 1000;

/** An offset in libfaketime's syntax: a sign, a number, and a unit (d, h, m; seconds when none). */
export function faketimeOffset(offsetS: number): string {
  const sign = offsetS < 0 ? '-' : '+';
  const size = Math.abs(offsetS);
  for (const [unit, seconds] of [['d', 86_400], ['h', 3600], ['m', 60]] as const) {
    if (size >= seconds && size % seconds === 0) return `${sign}${size / seconds}${unit}`;
  }
  return `${sign}${size}`;
}

/** An offset for people: `+2h`, `-40s`. */
export function offsetText(offsetS: number): string {
  const text = faketimeOffset(offsetS);
  return /\d$/.test(text) ? `${text}s` : text;
}

/** A measured skew as text: `+7200.3 s`. */
export function skewText(ms: number): string {
  return `${ms < 0 ? '-' : '+'}${(Math.abs(ms) / 1000).toFixed(1)} s`;
}

/** The environment that runs a process `offsetS` seconds off the true wall clock. */
export function skewEnv(library: string, offsetS: number, inherited: string | undefined = process.env.LD_PRELOAD): Record<string, string> {
  return {
    LD_PRELOAD: inherited === undefined || inherited === '' ? library : `${library}:${inherited}`,
    FAKETIME: faketimeOffset(offsetS),
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  };
}

/** The installed libfaketime, or undefined. */
export function findFaketime(): string | undefined {
  const listed = spawnSync('dpkg', ['-L', 'libfaketime'], { encoding: 'utf8', timeout: 10_000 });
  const fromDpkg = listed.status === 0 ? listed.stdout.split('\n').filter((line) => line.endsWith('/libfaketime.so.1')) : [];
  return [...fromDpkg, ...LIBRARY_PATHS].find((path) => existsSync(path));
}

/**
 * The library to inject skew with, or why the fault cannot run here: not Linux, no
 * libfaketime, or one that does not shift `Date.now()` (or shifts the monotonic clock with it)
 * in a child `node`.
 */
export function faketime(): { readonly library: string } | { readonly reason: string } {
  if (process.platform !== 'linux') return { reason: `clock skew needs libfaketime under LD_PRELOAD, on Linux (this is ${process.platform})` };
  const library = findFaketime();
  if (library === undefined) return { reason: 'clock skew needs libfaketime (apt-get install faketime)' };
  const script = 'process.stdout.write(JSON.stringify({ wallMs: Date.now(), monotonicNs: String(process.hrtime.bigint()) }))';
  const beforeMs = Date.now();
  const probe = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...skewEnv(library, PROBE_OFFSET_S) } });
  const monotonicNs = process.hrtime.bigint();
  if (probe.status !== 0) return { reason: `node does not run under ${library}: ${(probe.stderr ?? probe.error?.message ?? '').trim().slice(0, 200)}` };
  let seen: { wallMs: number; monotonicNs: string };
  try {
    seen = JSON.parse(probe.stdout) as { wallMs: number; monotonicNs: string };
  } catch {
    return { reason: `the libfaketime probe printed ${JSON.stringify(probe.stdout.slice(0, 200))}` };
  }
  const shiftMs = seen.wallMs - beforeMs;
  if (Math.abs(shiftMs - PROBE_OFFSET_S * 1000) > PROBE_TOLERANCE_MS) return { reason: `${library} did not shift Date.now() by ${offsetText(PROBE_OFFSET_S)} (it moved ${skewText(shiftMs)})` };
  const monotonicMs = Number(monotonicNs - BigInt(seen.monotonicNs)) / 1e6;
  if (Math.abs(monotonicMs) > PROBE_MONOTONIC_TOLERANCE_MS) return { reason: `${library} shifted the monotonic clock too (by ${skewText(-monotonicMs)}); FAKETIME_DONT_FAKE_MONOTONIC is not honoured` };
  return { library };
}
