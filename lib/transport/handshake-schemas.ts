/** The frames each side may send during the handshake, before any other message. */

import { authSchema, helloSchema, readySchema, welcomeSchema } from '../codec/messages.js';
import { z } from 'zod';

export const acceptorExpects = z.discriminatedUnion('t', [helloSchema, authSchema]);
export const connectorExpects = z.discriminatedUnion('t', [welcomeSchema, readySchema]);
