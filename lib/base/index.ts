export * from './assert.js';
export * from './errors.js';
export * from './id-table.js';
export * from './limits.js';
export * from './prng.js';
export * from './utf8.js';
