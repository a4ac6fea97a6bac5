export * from './levels.js';
export * from './tally.js';
export * from './replica.js';
export * from './targets.js';
