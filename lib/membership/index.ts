export * from './broadcasts.js';
export * from './member.js';
export * from './membership.js';
export * from './metadata.js';
export * from './profile.js';
export * from './suspicion.js';
