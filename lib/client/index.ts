export { connect, Client } from './client.js';
export type { ConnectOptions, DeleteOptions, GetOptions, GetResult, PutOptions, PutResult, RequestOptions } from './client.js';
export type { Context } from './context.js';
