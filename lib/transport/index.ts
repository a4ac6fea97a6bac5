export * from './accept.js';
export * from './connection.js';
export * from './dial.js';
