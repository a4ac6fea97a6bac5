/**
 * fast-check settings for every property spec, loaded before the specs (`mocha.require` in
 * package.json).
 *
 * An arbitrary that names a `maxLength` (or `maxKeys`, `maxDepth`) draws from its whole
 * range. fast-check's default otherwise caps generated lengths at twice the minimum plus ten,
 * whatever the maximum says: `fc.array(op, { maxLength: 80 })` produced sequences of at most
 * ten operations, so properties over operation sequences (the Merkle segments') never met the
 * long runs they were written for, and byte strings "up to 300 bytes" never reached 24 bytes,
 * where CBOR's length header grows a byte.
 */

import fc from 'fast-check';

fc.configureGlobal({ ...fc.readConfigureGlobal(), defaultSizeToMaxWhenMaxSpecified: true });
