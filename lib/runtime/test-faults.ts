/**
 * Deliberately broken behaviour, for proving that the chaos harness's checkers can fail.
 *
 * A checker that has never reported a violation proves nothing: TESTING.md's canary runs the
 * harness against a node that is unsafe on purpose and expects it to be caught. The switch is
 * the environment variable `CHORUS_TEST_FAULT`, read only here in the shell (the config loader
 * ignores `CHORUS_TEST_*`), never a setting an operator could find in `default.yaml`. An
 * unknown value stops start-up with a ConfigError, so a misspelt fault cannot silently run a
 * correct node and make a canary pass for the wrong reason.
 *
 * Faults:
 * - `ack-before-durable`: the store reports every batch as applied at once and writes it only
 *   `ACK_BEFORE_DURABLE_HELD_MS` later, as a write-back cache would. A replica then
 *   acknowledges writes that a kill -9 within that time takes back, and merges into the key
 *   meanwhile build on the older version it still reads, so concurrent writes overwrite each
 *   other. Both lose acknowledged writes.
 */

import { ConfigError } from '../base/errors.js';
import type { StoreWrite } from '../node/ports.js';
import type { Store } from '../storage/index.js';

export const TEST_FAULT_VARIABLE = 'CHORUS_TEST_FAULT';
export const TEST_FAULTS = ['ack-before-durable'] as const;
export type TestFault = (typeof TEST_FAULTS)[number];

/** How long `ack-before-durable` keeps a batch before the store has it: long enough for a kill to land inside. */
export const ACK_BEFORE_DURABLE_HELD_MS = 1000;

/** The test fault the environment asks for; undefined when none. Throws ConfigError for an unknown one. */
export function readTestFault(env: Readonly<Record<string, string | undefined>>): TestFault | undefined {
  const value = env[TEST_FAULT_VARIABLE];
  if (value === undefined || value === '') return undefined;
  if ((TEST_FAULTS as readonly string[]).includes(value)) return value as TestFault;
  throw new ConfigError(`${TEST_FAULT_VARIABLE}: unknown test fault ${JSON.stringify(value)}; known: ${TEST_FAULTS.join(', ')}`, {
    key: TEST_FAULT_VARIABLE,
    source: `env ${TEST_FAULT_VARIABLE}`,
  });
}

/** The store as the fault breaks it; the store itself when there is no fault. */
export function withTestFault(store: Store, fault: TestFault | undefined): Store {
  if (fault === undefined) return store;
  const held = new Set<Promise<void>>();
  const apply = (writes: readonly StoreWrite[]): Promise<void> => {
    // Batches are written in the order they came: timers of equal delay fire in order.
    const later = new Promise<void>((resolve) => setTimeout(resolve, ACK_BEFORE_DURABLE_HELD_MS)).then(() => store.apply(writes));
    const tracked = later.catch(() => undefined);
    held.add(tracked);
    void tracked.finally(() => held.delete(tracked));
    return Promise.resolve();
  };
  const close = async (): Promise<void> => {
    await Promise.all([...held]);
    await store.close();
  };
  // A proxy rather than a class, so that methods the Store port gains later pass through untouched.
  return new Proxy(store, {
    get(target, property) {
      if (property === 'apply') return apply;
      if (property === 'close') return close;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
