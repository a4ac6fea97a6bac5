export * from './coordinator.js';
export * from './core.js';
export * from './io.js';
export * from './placement.js';
export * from './ports.js';
