export * from './node-runtime.js';
