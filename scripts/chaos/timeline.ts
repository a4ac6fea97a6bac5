/**
 * The run as a picture: throughput and latency over time, with the fault windows shaded.
 *
 * Hand-written SVG, so that the report needs no plotting dependency and opens in any browser.
 * Time runs left to right in buckets (about 120 across the run). The upper panel shows
 * operations completed per second: acknowledged, and failed or unknown. The lower panel
 * shows the latency of acknowledged operations per bucket (median, 99th percentile and
 * maximum) on a logarithmic scale, so that timeouts and sub-millisecond reads fit together.
 * Each fault is a shaded band across both panels, labelled with its kind and its nodes.
 */

import type { Episode } from './nemesis.js';
import { offsetText } from './skew.js';
import type { ChaosOperation } from './workload.js';

const WIDTH = 1000;
const LEFT = 64;
const RIGHT = 20;
const PLOT_WIDTH = WIDTH - LEFT - RIGHT;
const TOP = { y: 56, height: 190 };
const BOTTOM = { y: 300, height: 190 };
const HEIGHT = 560;
const BUCKETS_TARGET = 120;
const FAULT_COLOURS: Record<string, string> = { kill: '#e4572e', pause: '#f3a712', partition: '#4a6fe3', wipe: '#8e44ad', skew: '#00897b' };

interface Bucket {
  ok: number;
  bad: number;
  latencies: number[];
}

export function timelineSvg(history: readonly ChaosOperation[], episodes: readonly Episode[], loadMs: number, title: string): string {
  // Loops, not Math.max(...spread): a long run's history is far more arguments than a call may take.
  let endMs = Math.max(loadMs, 1);
  for (const op of history) endMs = Math.max(endMs, op.completeTick ?? op.invokeTick);
  for (const e of episodes) endMs = Math.max(endMs, e.endMs ?? e.startMs);
  const bucketMs = Math.max(100, niceStep(endMs / BUCKETS_TARGET));
  const buckets: Bucket[] = Array.from({ length: Math.ceil(endMs / bucketMs) }, () => ({ ok: 0, bad: 0, latencies: [] }));
  for (const op of history) {
    if (op.completeTick === undefined) continue;
    const bucket = buckets[Math.min(buckets.length - 1, Math.floor(op.completeTick / bucketMs))] as Bucket;
    if (op.outcome === 'ok') {
      bucket.ok++;
      bucket.latencies.push(op.latencyMs ?? 0);
    } else {
      bucket.bad++;
    }
  }
  const x = (ms: number): number => LEFT + (ms / endMs) * PLOT_WIDTH;
  const perSecond = (count: number): number => (count * 1000) / bucketMs;
  const rateMax = niceCeil(buckets.reduce((max, b) => Math.max(max, perSecond(b.ok + b.bad)), 1));
  const yRate = (rate: number): number => TOP.y + TOP.height - (rate / rateMax) * TOP.height;
  const latencyMax = buckets.reduce((max, b) => b.latencies.reduce((m, l) => Math.max(m, l), max), 1);
  const logMin = -1;
  const logMax = Math.ceil(Math.log10(latencyMax));
  const yLatency = (ms: number): number => {
    const v = Math.log10(Math.max(ms, 10 ** logMin));
    return BOTTOM.y + BOTTOM.height - ((v - logMin) / (logMax - logMin)) * BOTTOM.height;
  };
  const mid = (i: number): number => x((i + 0.5) * bucketMs);

  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  parts.push(`<text x="${LEFT}" y="20" font-size="14" font-weight="bold">${escape(title)}</text>`);

  for (const e of episodes) {
    const x0 = x(e.startMs);
    const x1 = x(e.endMs ?? endMs);
    const colour = FAULT_COLOURS[e.kind] ?? '#888888';
    parts.push(`<rect x="${f(x0)}" y="${TOP.y}" width="${f(Math.max(1, x1 - x0))}" height="${BOTTOM.y + BOTTOM.height - TOP.y}" fill="${colour}" fill-opacity="0.14"/>`);
    parts.push(`<text x="${f(x0 + 2)}" y="${TOP.y - 6}" fill="${colour}" font-size="10">${escape(`${e.kind} ${e.targets.join(',')}${e.kind === 'skew' ? ` ${offsetText(e.skewS ?? 0)}` : ''}`)}</text>`);
  }

  // Throughput panel.
  parts.push(...axes(TOP, 'operations / s', [0, rateMax / 2, rateMax].map((v) => ({ y: yRate(v), label: String(Math.round(v)) }))));
  parts.push(polyline(buckets.map((b, i) => [mid(i), yRate(perSecond(b.ok))]), '#2e7d32', 1.6));
  parts.push(polyline(buckets.map((b, i) => [mid(i), yRate(perSecond(b.bad))]), '#c62828', 1.6));
  parts.push(legend(TOP.y + 12, [['#2e7d32', 'acknowledged'], ['#c62828', 'failed or unknown']]));

  // Latency panel.
  const ticks = [];
  for (let p = logMin; p <= logMax; p++) ticks.push({ y: yLatency(10 ** p), label: p < 0 ? `${10 ** p}` : `${10 ** p}` });
  parts.push(...axes(BOTTOM, 'latency of acknowledged ops (ms, log)', ticks));
  // A bucket without acknowledged operations breaks the line rather than bridging the gap.
  const series = (q: number): [number, number][][] => {
    const runs: [number, number][][] = [[]];
    buckets.forEach((b, i) => {
      if (b.latencies.length > 0) (runs[runs.length - 1] as [number, number][]).push([mid(i), yLatency(quantile(b.latencies, q))]);
      else if ((runs[runs.length - 1] as [number, number][]).length > 0) runs.push([]);
    });
    return runs;
  };
  for (const [q, colour, width] of [[1, '#9e9e9e', 1], [0.99, '#ef6c00', 1.4], [0.5, '#1565c0', 1.6]] as const) {
    for (const run of series(q)) parts.push(run.length === 1 ? dot(run[0] as [number, number], colour) : polyline(run, colour, width));
  }
  parts.push(legend(BOTTOM.y + 12, [['#1565c0', 'p50'], ['#ef6c00', 'p99'], ['#9e9e9e', 'max']]));

  // Time axis.
  const step = niceStep(endMs / 10);
  for (let ms = 0; ms <= endMs; ms += step) {
    parts.push(`<line x1="${f(x(ms))}" y1="${BOTTOM.y + BOTTOM.height}" x2="${f(x(ms))}" y2="${BOTTOM.y + BOTTOM.height + 4}" stroke="#333"/>`);
    parts.push(`<text x="${f(x(ms))}" y="${BOTTOM.y + BOTTOM.height + 16}" text-anchor="middle">${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)}</text>`);
  }
  parts.push(`<text x="${LEFT + PLOT_WIDTH / 2}" y="${BOTTOM.y + BOTTOM.height + 32}" text-anchor="middle">seconds since the start of the load (buckets of ${bucketMs} ms; the load ends at ${(loadMs / 1000).toFixed(1)} s)</text>`);
  parts.push(`<line x1="${f(x(loadMs))}" y1="${TOP.y}" x2="${f(x(loadMs))}" y2="${BOTTOM.y + BOTTOM.height}" stroke="#333" stroke-dasharray="4 3"/>`);
  const kinds = [...new Set(episodes.map((e) => e.kind))];
  if (kinds.length > 0) parts.push(legend(HEIGHT - 14, kinds.map((k) => [FAULT_COLOURS[k] ?? '#888888', `${k} (shaded)`] as [string, string])));
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function axes(panel: { y: number; height: number }, label: string, ticks: readonly { y: number; label: string }[]): string[] {
  const out = [
    `<rect x="${LEFT}" y="${panel.y}" width="${PLOT_WIDTH}" height="${panel.height}" fill="none" stroke="#333"/>`,
    `<text x="14" y="${panel.y + panel.height / 2}" transform="rotate(-90 14 ${panel.y + panel.height / 2})" text-anchor="middle">${escape(label)}</text>`,
  ];
  for (const tick of ticks) {
    out.push(`<line x1="${LEFT}" y1="${f(tick.y)}" x2="${LEFT + PLOT_WIDTH}" y2="${f(tick.y)}" stroke="#dddddd"/>`);
    out.push(`<text x="${LEFT - 4}" y="${f(tick.y + 4)}" text-anchor="end">${escape(tick.label)}</text>`);
  }
  return out;
}

function polyline(points: readonly (readonly [number, number])[], colour: string, width: number): string {
  if (points.length === 0) return '';
  return `<polyline fill="none" stroke="${colour}" stroke-width="${width}" points="${points.map(([px, py]) => `${f(px)},${f(py)}`).join(' ')}"/>`;
}

function dot([px, py]: readonly [number, number], colour: string): string {
  return `<circle cx="${f(px)}" cy="${f(py)}" r="1.8" fill="${colour}"/>`;
}

function legend(y: number, items: readonly (readonly [string, string])[]): string {
  let x = LEFT + 8;
  const out: string[] = [];
  for (const [colour, label] of items) {
    out.push(`<rect x="${x}" y="${y - 8}" width="12" height="8" fill="${colour}"/>`, `<text x="${x + 16}" y="${y}">${escape(label)}</text>`);
    x += 26 + label.length * 6;
  }
  return out.join('');
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/** 1, 2 or 5 times a power of ten, at least `value`. */
function niceStep(value: number): number {
  const power = 10 ** Math.floor(Math.log10(Math.max(value, 1e-9)));
  for (const m of [1, 2, 5, 10]) if (m * power >= value) return m * power;
  return 10 * power;
}

function niceCeil(value: number): number {
  return niceStep(value);
}

function f(n: number): string {
  return n.toFixed(1);
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
