/** The token ring: where keys and virtual nodes sit. Public surface of `lib/ring`. */

export { keyToken, keyTokenBytes, tokenOf, vnodeToken } from './token.js';
