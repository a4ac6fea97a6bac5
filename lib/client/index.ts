export { connect, Client } from './client.js';
export type { AdminOptions, ConnectOptions, DeleteOptions, GetOptions, GetResult, PutOptions, PutResult, RequestOptions } from './client.js';
export type { Context } from './context.js';
export type { BucketTopology, Topology, TopologyMember } from './topology.js';
export { CounterHandle, DocHandle, FlagHandle, MapHandle, MapUpdate, RegisterHandle, SetHandle } from './typed.js';
export type { FetchOptions, FetchResult, TypedType, UpdateOptions, UpdateResult } from './typed.js';
