/**
 * Named simulation scenarios, and the runner that replays one from its seed.
 *
 * A scenario drives a cluster through one story (bootstrap, then a join, a crash, a
 * partition, …), checks what must hold along the way, and returns what it measured; times
 * are in protocol periods (probe intervals). The runner builds the cluster from the seed,
 * runs the scenario, lets the cluster settle, runs the invariant checkers, and turns any
 * failure into a `SimFailure` that names the seed, the scenario and the replay command
 * (`npm run sim -- --seed N --scenario NAME`) with the tail of the trace.
 *
 * Scenarios check correctness (a left node is `left` everywhere, a restarted node is back
 * with a higher incarnation, 1% loss declares nobody dead); the specs assert the timing
 * figures over many seeds, since a bound on a percentile is a property of a distribution.
 */

import { Prng } from '../base/prng.js';
import { pushPullTicks, suspicionMinTicks } from '../membership/profile.js';
import { check, checkCluster, failure, SimCheckError, SimFailure, type RunContext } from './checkers.js';
import { nodeAddress, SimCluster, type ClusterOptions, type LogOutput, type SimNode } from './cluster.js';
import { FAULT_DEFAULTS } from './faults.js';
import { runReplication, type ReplicationStory } from './replication.js';
import { runTyped, type TypedStory } from './typed.js';
import { round } from './stats.js';

export type Measurements = Record<string, number | string | boolean>;

export interface Scenario {
  readonly name: string;
  readonly summary: string;
  /** Cluster size unless `--nodes` says otherwise. */
  readonly nodes: number;
  /** Cluster options beyond the seed and size. */
  readonly cluster?: (nodes: number) => Partial<ClusterOptions>;
  run(cluster: SimCluster, prng: Prng): Measurements;
}

export interface ScenarioResult {
  readonly context: RunContext;
  readonly measurements: Measurements;
  readonly cluster: SimCluster;
}

// ---- helpers ----

/**
 * Ticks to wait for a convergence the protocol promises: three push-pull intervals, since a
 * push-pull repairs whatever gossip missed, plus the longest suspicion, so a slow verdict
 * still lands.
 */
export function settleTicks(cluster: SimCluster): number {
  const n = Math.max(1, cluster.nodes.length);
  return 3 * pushPullTicks(cluster.profile, n) + suspicionMinTicks(cluster.profile, n) * cluster.profile.suspicionMaxTimeoutMult;
}

/** Runs until `condition` holds and returns the ticks it took; fails the run after `maxTicks`. */
export function waitFor(cluster: SimCluster, what: string, condition: () => boolean, maxTicks: number = settleTicks(cluster)): number {
  const ticks = cluster.runUntil(condition, maxTicks);
  check(ticks !== undefined, () => `${what}: not within ${round(cluster.periods(maxTicks))} periods (${maxTicks} ticks), at t=${cluster.now}`);
  return ticks;
}

/** Starts what is down, then waits until every node holds the same table. */
export function bootstrap(cluster: SimCluster): number {
  for (const node of cluster.nodes) if (node.state === 'down' && node.starts === 0) cluster.start(node.id);
  return waitFor(cluster, 'the initial nodes to converge on one member table', () => cluster.converged());
}

/** A quiet spell of about `periods` periods with a random phase, so faults do not land on a period boundary. */
export function quiet(cluster: SimCluster, prng: Prng, periods: number): void {
  cluster.run(periods * cluster.profile.probeIntervalTicks + prng.int(cluster.profile.probeIntervalTicks));
}

/** A random node other than the first (the usual seed). */
export function pickNode(cluster: SimCluster, prng: Prng, filter: (node: SimNode) => boolean = () => true): SimNode {
  const candidates = cluster.nodes.filter((node) => node.index !== 1 && node.active && filter(node));
  check(candidates.length > 0, 'no node to pick: the cluster is too small for this scenario');
  return prng.pick(candidates);
}

/** Two distinct nodes, chosen by the run's PRNG. */
function pickTwo(cluster: SimCluster, prng: Prng): [SimNode, SimNode] {
  const a = pickNode(cluster, prng);
  return [a, pickNode(cluster, prng, (node) => node.id !== a.id)];
}

/** Counts log events about members by message ("member suspect", "member dead", "refuting", …). */
export class LogCounter {
  private readonly counts = new Map<string, number>();
  private readonly firsts = new Map<string, number>();
  private readonly stop: () => void;

  constructor(cluster: SimCluster, key: (node: SimNode, log: LogOutput) => string | undefined) {
    this.stop = cluster.onLog((node, tick, log) => {
      const name = key(node, log);
      if (name === undefined) return;
      this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
      if (!this.firsts.has(name)) this.firsts.set(name, tick);
    });
  }

  count(name: string): number {
    return this.counts.get(name) ?? 0;
  }

  /** The tick of the first event of this name. */
  first(name: string): number | undefined {
    return this.firsts.get(name);
  }

  close(): void {
    this.stop();
  }
}

/** Classifies member events as about `victim` or about someone else. */
function aboutVictim(victim: string): (node: SimNode, log: LogOutput) => string | undefined {
  return (_node, log) => {
    if (log.msg === 'refuting') return 'refuting';
    if (!log.msg.startsWith('member ') || log.msg === 'member discovered') return undefined;
    return `${log.fields.member === victim ? 'victim' : 'other'} ${log.msg.slice('member '.length)}`;
  };
}

function periods(cluster: SimCluster, ticks: number): number {
  return round(cluster.periods(ticks), 2);
}

function metadataKey(node: SimNode): string {
  return JSON.stringify(node.core?.metadata.listBuckets() ?? null);
}

// ---- scenarios ----

const converge: Scenario = {
  name: 'converge',
  summary: 'bootstrap from one seed, then a join and a leave; each time until every active node holds the same table',
  nodes: 5,
  run(cluster, prng) {
    const bootstrapTicks = bootstrap(cluster);
    quiet(cluster, prng, 10);
    const joiner = cluster.addNode();
    cluster.start(joiner.id);
    const joinTicks = waitFor(cluster, `${joiner.id}'s join to converge`, () => cluster.converged());
    quiet(cluster, prng, 10);
    const leaver = pickNode(cluster, prng, (node) => node.id !== joiner.id);
    cluster.leave(leaver.id);
    const changeTicks = waitFor(cluster, `${leaver.id}'s departure (leaving) to converge`, () => cluster.converged());
    waitFor(cluster, `${leaver.id} to be left everywhere`, () => cluster.allSee(leaver.id, (s) => s.status === 'left'));
    return {
      nodes: cluster.nodes.length - 1,
      bootstrapPeriods: periods(cluster, bootstrapTicks),
      joinPeriods: periods(cluster, joinTicks),
      changePeriods: periods(cluster, changeTicks),
      boundPeriods: Math.ceil(Math.log2(cluster.nodes.length - 1)) + 2,
    };
  },
};

/**
 * A crash: with `silent`, the host vanishes without a word (power, cable); otherwise the
 * process is killed and its connections reset, which connected peers notice at once.
 */
function crashScenario(name: string, silent: boolean): Scenario {
  return {
    name,
    summary: `a node ${silent ? 'vanishes silently' : 'is killed (its connections reset)'}: time until someone suspects it and until everyone holds it dead`,
    nodes: 5,
    run(cluster, prng) {
      bootstrap(cluster);
      quiet(cluster, prng, 10);
      const victim = pickNode(cluster, prng);
      const events = new LogCounter(cluster, aboutVictim(victim.id));
      const crashTick = cluster.now;
      cluster.crash(victim.id, { silent });
      const deadTicks = waitFor(cluster, `${victim.id} to be dead everywhere`, () => cluster.allSee(victim.id, (s) => s.live === 'dead'));
      const suspectTick = events.first('victim suspect') ?? events.first('victim dead');
      check(suspectTick !== undefined, `${victim.id} was declared dead without ever being suspected`);
      const suspicionTicks = suspicionMinTicks(cluster.profile, cluster.nodes.length);
      waitFor(cluster, 'the views to converge after the crash', () => cluster.converged());
      events.close();
      return {
        victim: victim.id,
        suspectPeriods: periods(cluster, suspectTick - crashTick),
        deadEverywherePeriods: periods(cluster, deadTicks),
        suspicionTimeoutPeriods: periods(cluster, suspicionTicks),
        deadBoundPeriods: periods(cluster, suspicionTicks + 4 * cluster.profile.probeIntervalTicks),
        falseSuspicions: events.count('other suspect'),
        falseDeaths: events.count('other dead'),
        refutations: events.count('refuting'),
      };
    },
  };
}

const crash = crashScenario('crash', false);
const crashSilent = crashScenario('crash-silent', true);

const LOSS = 0.01;
const LOSS_PERIODS = 100;

const loss: Scenario = {
  name: 'loss',
  summary: `${LOSS * 100}% message loss from the start and no crash for ${LOSS_PERIODS} periods: nobody may be declared dead`,
  nodes: 20,
  cluster: () => ({ network: { loss: LOSS } }),
  run(cluster) {
    const events = new LogCounter(cluster, (_node, log) => (log.msg === 'member dead' || log.msg === 'member suspect' || log.msg === 'refuting' ? log.msg : undefined));
    const bootstrapTicks = bootstrap(cluster);
    cluster.run(LOSS_PERIODS * cluster.profile.probeIntervalTicks);
    const lost = cluster.network.drops('loss');
    const deaths = events.count('member dead');
    check(deaths === 0, `with ${LOSS * 100}% loss and no crash, ${deaths} death verdicts were reached`);
    cluster.setLoss(0);
    waitFor(cluster, 'the views to converge once the loss stopped', () => cluster.converged());
    events.close();
    return {
      bootstrapPeriods: periods(cluster, bootstrapTicks),
      lossPeriods: LOSS_PERIODS,
      messagesLost: lost,
      suspicions: events.count('member suspect'),
      refutations: events.count('refuting'),
      deaths,
    };
  },
};

/** A partition long enough that each side declares the other dead, and longer than gossip to the dead lasts. */
const PARTITION_PERIODS_MIN = 30;

const partition: Scenario = {
  name: 'partition',
  summary: 'two halves cannot hear each other until each holds the other dead; after healing the views reconverge',
  nodes: 6,
  run(cluster, prng) {
    bootstrap(cluster);
    quiet(cluster, prng, 10);
    const ids = prng.shuffle(cluster.nodes.map((node) => node.id));
    const half = Math.floor(ids.length / 2);
    const sides = [ids.slice(0, half).sort(), ids.slice(half).sort()] as const;
    cluster.partition(sides);
    const start = cluster.now;
    const split = (): boolean =>
      sides.every((side, i) => side.every((viewer) => (sides[1 - i] ?? []).every((other) => cluster.seenBy(viewer, other)?.live === 'dead')));
    const splitTicks = waitFor(cluster, 'each side to hold the other dead', split);
    const heldTicks = Math.max(0, PARTITION_PERIODS_MIN * cluster.profile.probeIntervalTicks - (cluster.now - start));
    cluster.run(heldTicks);
    check(split(), 'the views did not stay split while the partition lasted');
    cluster.heal();
    const healTicks = waitFor(cluster, `the views (split after ${periods(cluster, splitTicks)} periods, healed after ${periods(cluster, splitTicks + heldTicks)}) to reconverge after healing`, () => cluster.converged());
    return {
      sides: sides.map((side) => side.join(',')).join(' | '),
      splitPeriods: periods(cluster, splitTicks),
      partitionPeriods: periods(cluster, splitTicks + heldTicks),
      healPeriods: periods(cluster, healTicks),
    };
  },
};

const oneWay: Scenario = {
  name: 'one-way',
  summary: 'one node cannot send to another (the other way works): indirect probes keep both alive',
  nodes: 5,
  run(cluster, prng) {
    bootstrap(cluster);
    quiet(cluster, prng, 10);
    const [a, b] = pickTwo(cluster, prng);
    const events = new LogCounter(cluster, (_node, log) => (log.msg === 'member dead' || log.msg === 'member suspect' ? log.msg : undefined));
    cluster.block(a.id, b.id);
    cluster.run(40 * cluster.profile.probeIntervalTicks);
    const deaths = events.count('member dead');
    check(deaths === 0, `a one-way cut ${a.id} -> ${b.id} led to ${deaths} death verdicts`);
    cluster.heal();
    waitFor(cluster, 'the views to converge after healing', () => cluster.converged());
    events.close();
    return { cut: `${a.id} -> ${b.id}`, suspicions: events.count('member suspect'), deaths };
  },
};

const restart: Scenario = {
  name: 'restart',
  summary: 'a crashed node restarts on its disk and comes back alive everywhere with a higher incarnation',
  nodes: 5,
  run(cluster, prng) {
    bootstrap(cluster);
    quiet(cluster, prng, 10);
    const victim = pickNode(cluster, prng);
    const before = victim.incarnation;
    cluster.crash(victim.id);
    // Half the runs restart before the crash is noticed, half once it is dead everywhere.
    const waitDead = prng.chance(0.5);
    if (waitDead) waitFor(cluster, `${victim.id} to be dead everywhere`, () => cluster.allSee(victim.id, (s) => s.live === 'dead'));
    else quiet(cluster, prng, 1);
    const downTicks = cluster.now;
    cluster.start(victim.id);
    const restartedAt = victim.incarnation;
    // Verdicts against the new process: it answers every probe, so any is a false suspicion.
    const suspicions = new LogCounter(cluster, (_node, log) =>
      log.msg === 'member suspect' && log.fields.member === victim.id && (log.fields.inc as number) >= restartedAt ? 'suspect' : undefined,
    );
    const rejoinTicks = waitFor(cluster, `${victim.id} to rejoin`, () => cluster.converged());
    suspicions.close();
    const seen = cluster.activeNodes().map((node) => cluster.seenBy(node.id, victim.id));
    const after = victim.incarnation;
    check(after > before, `${victim.id} came back with incarnation ${after}, not above ${before}`);
    check(
      seen.every((s) => s?.live === 'alive' && s.inc === after),
      () => `${victim.id} is not alive at incarnation ${after} everywhere: ${seen.map((s) => (s ? `${s.live}@${s.inc}` : 'absent')).join(', ')}`,
    );
    return {
      victim: victim.id,
      restartedAfterDead: waitDead,
      downAtTick: downTicks,
      incarnationBefore: before,
      incarnationAfter: after,
      rejoinPeriods: periods(cluster, rejoinTicks),
      suspectedAfterRestart: suspicions.count('suspect'),
    };
  },
};

const restartSeed: Scenario = {
  name: 'restart-seed',
  summary: 'the only seed crashes, is declared dead, and restarts: it must find its way back',
  nodes: 5,
  run(cluster, prng) {
    bootstrap(cluster);
    quiet(cluster, prng, 10);
    const seed = cluster.node('n1');
    const before = seed.incarnation;
    cluster.crash(seed.id);
    waitFor(cluster, 'n1 to be dead everywhere', () => cluster.allSee(seed.id, (s) => s.live === 'dead'));
    quiet(cluster, prng, 5);
    cluster.start(seed.id);
    const rejoinTicks = waitFor(cluster, 'n1 to rejoin', () => cluster.converged());
    check(seed.incarnation > before, `n1 came back with incarnation ${seed.incarnation}, not above ${before}`);
    return { incarnationBefore: before, incarnationAfter: seed.incarnation, rejoinPeriods: periods(cluster, rejoinTicks) };
  },
};

const leave: Scenario = {
  name: 'leave',
  summary: 'a node leaves gracefully (the admin leave request): it is left everywhere, and stays left once stopped',
  nodes: 5,
  run(cluster, prng) {
    bootstrap(cluster);
    quiet(cluster, prng, 10);
    const leaver = pickNode(cluster, prng);
    const start = cluster.now;
    const reply = cluster.leave(leaver.id);
    check(reply?.t === 'admin-ok', `the leave request was answered ${JSON.stringify(reply)}`);
    const leftTicks = waitFor(cluster, `${leaver.id} to be left everywhere`, () => cluster.allSee(leaver.id, (s) => s.status === 'left'));
    check(leaver.core?.membership.status === 'left', `${leaver.id} does not consider itself left`);
    const again = cluster.leave(leaver.id);
    check(again?.t === 'err', 'a second leave was accepted');
    // The operator stops the process: a departed node is not a failure and must stay `left`.
    cluster.crash(leaver.id);
    cluster.run(suspicionMinTicks(cluster.profile, cluster.nodes.length) * cluster.profile.suspicionMaxTimeoutMult + 10 * cluster.profile.probeIntervalTicks);
    check(cluster.allSee(leaver.id, (s) => s.status === 'left'), `${leaver.id} is no longer left everywhere after it stopped`);
    return { leaver: leaver.id, leftPeriods: periods(cluster, leftTicks), requestedAtTick: start };
  },
};

/** Another name for node `index`, by which its own seed list names it. */
function aliasOf(index: number): string {
  return `node${index}.sim:7070`;
}

const joinSelfSeed: Scenario = {
  name: 'join-self-seed',
  summary: 'every node gets the same seed list, which holds its own address and another name for itself',
  nodes: 5,
  cluster: () => ({ start: false, seeds: (index) => [nodeAddress(1), nodeAddress(2), nodeAddress(3), aliasOf(index)] }),
  run(cluster) {
    for (const node of cluster.nodes) cluster.alias(aliasOf(node.index), node.id);
    const bootstrapTicks = bootstrap(cluster);
    const joined = cluster.nodes.filter((node) => node.core?.membership.hasJoined === true);
    check(
      joined.length === cluster.nodes.length,
      () => `not every node has joined: ${cluster.nodes.filter((node) => !joined.includes(node)).map((node) => node.id).join(', ')}`,
    );
    return { bootstrapPeriods: periods(cluster, bootstrapTicks), joined: joined.length };
  },
};

const SEEDS_DOWN_PERIODS = 20;

const seedsDown: Scenario = {
  name: 'seeds-down',
  summary: `both seeds are down for the first ${SEEDS_DOWN_PERIODS} periods; the others keep retrying and join once they are up`,
  nodes: 5,
  cluster: () => ({ start: false, seeds: () => [nodeAddress(1), nodeAddress(2)] }),
  run(cluster) {
    const seeds = cluster.nodes.filter((node) => node.index <= 2);
    for (const node of cluster.nodes) if (node.index > 2) cluster.start(node.id);
    cluster.run(SEEDS_DOWN_PERIODS * cluster.profile.probeIntervalTicks);
    check(
      cluster.nodes.every((node) => node.core === undefined || !node.core.membership.hasJoined),
      'a node joined while every seed was down',
    );
    for (const seed of seeds) cluster.start(seed.id);
    const joinTicks = waitFor(cluster, 'the cluster to form once the seeds are up', () => cluster.converged());
    return { downPeriods: SEEDS_DOWN_PERIODS, joinPeriods: periods(cluster, joinTicks), joinRetryMaxPeriods: periods(cluster, cluster.profile.joinRetryTicksMax) };
  },
};

const PAUSE_PERIODS = 16;

const pause: Scenario = {
  name: 'pause',
  summary: `a node is paused for ${PAUSE_PERIODS} periods (SIGSTOP), then resumed: it must be alive everywhere again`,
  nodes: 5,
  run(cluster, prng) {
    bootstrap(cluster);
    quiet(cluster, prng, 10);
    const victim = pickNode(cluster, prng);
    const events = new LogCounter(cluster, aboutVictim(victim.id));
    cluster.pause(victim.id);
    cluster.run(PAUSE_PERIODS * cluster.profile.probeIntervalTicks);
    cluster.resume(victim.id);
    const rejoinTicks = waitFor(cluster, `${victim.id} to be alive everywhere after resuming`, () => cluster.converged());
    events.close();
    return {
      victim: victim.id,
      pausePeriods: PAUSE_PERIODS,
      declaredDead: events.count('victim dead') > 0,
      rejoinPeriods: periods(cluster, rejoinTicks),
      falseDeaths: events.count('other dead'),
    };
  },
};

const metadata: Scenario = {
  name: 'metadata',
  summary: 'two nodes change bucket properties at once; every node ends with the same merged metadata',
  nodes: 5,
  run(cluster, prng) {
    bootstrap(cluster);
    quiet(cluster, prng, 10);
    const [a, b] = pickTwo(cluster, prng);
    const first = cluster.admin(a.id, 'bucket-set', { bucket: 'users', props: { n: 3, r: 2 } });
    const second = cluster.admin(b.id, 'bucket-set', { bucket: 'users', props: { w: 2, type: 'kv' } });
    const third = cluster.admin(b.id, 'bucket-set', { bucket: 'counters', props: { type: 'counter' } });
    check([first, second, third].every((reply) => reply?.t === 'admin-ok'), 'a bucket-set was refused');
    const same = (): boolean => new Set(cluster.activeNodes().map(metadataKey)).size === 1;
    const spreadTicks = waitFor(cluster, 'every node to hold the same bucket properties', same);
    const buckets = cluster.nodes[0]?.core?.metadata.listBuckets() ?? {};
    check(
      JSON.stringify(buckets) === JSON.stringify({ counters: { type: 'counter' }, users: { n: 3, r: 2, type: 'kv', w: 2 } }),
      () => `the merged metadata is ${JSON.stringify(buckets)}`,
    );
    return { spreadPeriods: periods(cluster, spreadTicks), changedAt: `${a.id},${b.id}` };
  },
};

/** Traffic is measured over this many whole push-pull intervals, so each node's exchanges are counted exactly. */
const TRAFFIC_PUSH_PULLS = 2;

/** Membership traffic of the active nodes at rest, per node per simulated second, over whole push-pull intervals. */
export function measureTraffic(cluster: SimCluster, pushPulls: number = TRAFFIC_PUSH_PULLS): Measurements {
  cluster.network.resetCounters();
  const windowTicks = pushPulls * pushPullTicks(cluster.profile, cluster.activeNodes().length);
  cluster.run(windowTicks);
  const seconds = (windowTicks * cluster.tickMs) / 1000;
  const active = cluster.activeNodes();
  let bytes = 0;
  let messages = 0;
  for (const node of active) {
    const sent = cluster.network.trafficOf(node.id);
    bytes += sent.bytesSent;
    messages += sent.messagesSent;
  }
  return {
    windowSeconds: seconds,
    bytesPerNodePerSecond: round(bytes / active.length / seconds, 1),
    messagesPerNodePerSecond: round(messages / active.length / seconds, 2),
  };
}

const traffic: Scenario = {
  name: 'traffic',
  summary: 'a converged cluster at rest: membership bytes each node sends per second',
  nodes: 20,
  run(cluster, prng) {
    bootstrap(cluster);
    quiet(cluster, prng, 10);
    return measureTraffic(cluster);
  },
};

const gossip: Scenario = {
  name: 'gossip',
  summary: "the convergence benchmark's run: converge (bootstrap, a join, a leave), then traffic at rest",
  nodes: 100,
  run(cluster, prng) {
    const convergence = converge.run(cluster, prng);
    quiet(cluster, prng, 10);
    // One interval past 100 nodes, where they are long and the run costly.
    return { ...convergence, ...measureTraffic(cluster, cluster.nodes.length > 100 ? 1 : TRAFFIC_PUSH_PULLS) };
  },
};

// ---- replication under load ----

/** Ticks of client load in the replication scenarios: 40 s of simulated time, 80 protocol periods. */
const REPLICATION_LOAD_TICKS = 4000;

/**
 * Three seeds for node `index`, none of them itself: after a restart a node waits for a seed
 * to answer before it serves requests. (A node that is its own seed counts itself joined at
 * once, alone, and takes writes for keys it does not own: see the replication spec.)
 */
export function otherSeeds(index: number, nodes: number): string[] {
  const others = Array.from({ length: nodes }, (_, i) => i + 1).filter((i) => i !== index);
  return others.slice(0, 3).map(nodeAddress);
}

/**
 * A replication story (replication.ts) as a scenario: 5 nodes, n=3, clients on 24 keys, and
 * seed lists naming three other nodes, so that any node may crash and rejoin.
 */
function replicationScenario(name: string, summary: string, story: ReplicationStory): Scenario {
  return {
    name,
    summary,
    nodes: 5,
    cluster: (nodes) => ({ seeds: (index) => otherSeeds(index, nodes) }),
    run: (cluster, prng) => runReplication(cluster, prng, story),
  };
}

const replicationCalm = replicationScenario('replication-calm', 'clients write, read and delete with no fault at all; every acknowledged write must be there at r=all', {
  loadTicks: 2000,
  faults: { kinds: [], lossMin: 0, lossMax: 0, duplication: 0, delayTicksMax: 3 },
});

const replicationFaults = replicationScenario(
  'replication',
  'clients write, read and delete while nodes crash, pause and get cut off, with 1-5% loss, duplicates and reordering; then heal and check every acknowledged write',
  { loadTicks: REPLICATION_LOAD_TICKS },
);

const replicationPrimaries = replicationScenario(
  'replication-primaries',
  'the replication scenario with clients that send each request to a primary of its key (a topology-aware client), so fallbacks never coordinate a write',
  { loadTicks: REPLICATION_LOAD_TICKS, workload: { route: 'primary' } },
);

const replicationWipe = replicationScenario(
  'replication-wipe',
  'replication-primaries, opening with a node whose data is wiped (it restarts as a new storage epoch), then the usual faults',
  { loadTicks: REPLICATION_LOAD_TICKS, workload: { route: 'primary' }, faults: { opening: 'wipe', kinds: FAULT_DEFAULTS.kinds } },
);

/** A typed-bucket story (typed.ts) as a scenario: 5 nodes, n=3, counters, sets and docs. */
function typedScenario(name: string, summary: string, story: TypedStory): Scenario {
  return {
    name,
    summary,
    nodes: 5,
    cluster: (nodes) => ({ seeds: (index) => otherSeeds(index, nodes) }),
    run: (cluster, prng) => runTyped(cluster, prng, story),
  };
}

const crdtCalm = typedScenario('crdt-calm', 'clients increment counters, add to and remove from sets and edit Yjs docs with no fault; every acknowledged update must count', {
  loadTicks: 1500,
  faults: { kinds: [], lossMin: 0, lossMax: 0, duplication: 0, delayTicksMax: 3 },
});

const crdtFaults = typedScenario(
  'crdt',
  'counters, sets and Yjs docs updated while nodes crash, pause and get cut off, with loss, duplicates and reordering; then every replica must hold the same state and every counter be exact',
  { loadTicks: REPLICATION_LOAD_TICKS },
);

const crdtWipe = typedScenario('crdt-wipe', 'the crdt scenario opening with a node whose data is wiped (it restarts as a new storage epoch), then the usual faults', {
  loadTicks: REPLICATION_LOAD_TICKS,
  faults: { opening: 'wipe', kinds: FAULT_DEFAULTS.kinds },
});

export const SCENARIOS: ReadonlyMap<string, Scenario> = new Map(
  [
    converge,
    crash,
    crashSilent,
    loss,
    partition,
    oneWay,
    restart,
    restartSeed,
    leave,
    joinSelfSeed,
    seedsDown,
    pause,
    metadata,
    traffic,
    gossip,
    replicationCalm,
    replicationFaults,
    replicationPrimaries,
    replicationWipe,
    crdtCalm,
    crdtFaults,
    crdtWipe,
  ].map((s) => [s.name, s]),
);

// ---- runner ----

export interface RunOptions {
  readonly seed: number;
  readonly nodes?: number;
  /** Overrides of the scenario's cluster options (tick length, network, …, a key to watch). */
  readonly cluster?: Partial<ClusterOptions>;
}

/**
 * Past 100 nodes, conditions over every node's table are checked every n/50 ticks rather than
 * every tick, and messages are not decoded on delivery (their bytes are still counted): the
 * price of exact timing and of decoding grows with n², the resolution lost is small.
 */
export function scaleOptions(nodes: number): Partial<ClusterOptions> {
  if (nodes <= 100) return {};
  return { checkEveryTicks: Math.floor(nodes / 50), network: { wire: false } };
}

/** Runs one scenario from its seed; throws SimFailure, with the replay command, when anything fails. */
export function runScenario(name: string, options: RunOptions): ScenarioResult {
  const scenario = SCENARIOS.get(name);
  if (scenario === undefined) throw new RangeError(`no scenario "${name}"; known: ${[...SCENARIOS.keys()].join(', ')}`);
  const nodes = options.nodes ?? scenario.nodes;
  const context: RunContext = { scenario: name, seed: options.seed >>> 0, nodes, defaultNodes: scenario.nodes };
  const layers = [scaleOptions(nodes), scenario.cluster?.(nodes) ?? {}, options.cluster ?? {}];
  const clusterOptions: Partial<ClusterOptions> = Object.assign({}, ...layers, { network: Object.assign({}, ...layers.map((layer) => layer.network)) });
  const cluster = new SimCluster({ ...clusterOptions, seed: context.seed, nodes });
  try {
    const measurements = scenario.run(cluster, new Prng(context.seed).fork('scenario'));
    // Whatever the scenario left behind must settle into a healthy cluster.
    cluster.runUntil(() => cluster.converged(), settleTicks(cluster));
    const problems = checkCluster(cluster);
    if (problems.length > 0) throw failure(cluster, context, problems);
    return { context, measurements, cluster };
  } catch (error) {
    if (error instanceof SimFailure) throw error;
    if (error instanceof SimCheckError) throw failure(cluster, context, error.problems);
    throw failure(cluster, context, [`the run threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`]);
  }
}
