/** `chorus start`: load the configuration, run a node, stop it cleanly on SIGTERM or SIGINT. */

import { ChorusError } from '../base/errors.js';
import { loadConfig, type ChorusConfig } from '../config/index.js';
import { tuneHeap } from '../runtime/heap-tuning.js';
import { createLogger, startNode } from '../runtime/node-runtime.js';

export interface StartFlags {
  readonly config?: string;
  readonly id?: string;
  readonly host?: string;
  readonly port?: string;
  readonly data?: string;
  readonly seeds?: string;
  readonly zone?: string;
  readonly cluster?: string;
}

export async function runStart(flags: StartFlags): Promise<number> {
  tuneHeap();
  let config: ChorusConfig;
  try {
    config = loadConfig({
      ...(flags.config !== undefined ? { file: flags.config } : {}),
      flags: {
        'node.id': flags.id,
        'node.host': flags.host,
        'node.port': flags.port,
        'node.dataDir': flags.data,
        'node.seeds': flags.seeds,
        'node.zone': flags.zone,
        'cluster.name': flags.cluster,
      },
    });
  } catch (error) {
    process.stderr.write(`chorus: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }

  const logger = createLogger(config.log.level);
  let node;
  try {
    node = await startNode(config, { logger });
  } catch (error) {
    const code = error instanceof ChorusError && error.code === 'CONFIG' ? 2 : 1;
    logger.fatal({ err: error instanceof Error ? { message: error.message, code: (error as { code?: unknown }).code } : String(error) }, 'start failed');
    process.stderr.write(`chorus: ${error instanceof Error ? error.message : String(error)}\n`);
    return code;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      node.logger.info({ signal }, 'stopping');
      node.stop().then(
        () => resolve(0),
        (error: unknown) => {
          node.logger.error({ err: String(error) }, 'stop failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
