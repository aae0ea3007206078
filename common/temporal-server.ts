// Finds the pinned `temporal` CLI and builds the dev-server command line with our search attributes.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SearchAttributeType } from '@temporalio/common';
import { ALL_SEARCH_ATTRIBUTES } from './contract';
import { packageRoot } from './paths';

const TYPE_NAMES: Record<string, string> = {
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.TEXT]: 'Text',
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.DOUBLE]: 'Double',
  [SearchAttributeType.BOOL]: 'Bool',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
};

/** `TEMPORAL_CLI_PATH` wins; else the project-local install from scripts/install-temporal.sh. */
export function temporalCliPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TEMPORAL_CLI_PATH) {
    if (!existsSync(env.TEMPORAL_CLI_PATH))
      throw new Error(`TEMPORAL_CLI_PATH ${env.TEMPORAL_CLI_PATH} does not exist`);
    return env.TEMPORAL_CLI_PATH;
  }
  const local = join(packageRoot(), '.tools', 'bin', 'temporal');
  if (!existsSync(local))
    throw new Error(`the temporal CLI is not installed at ${local}: run \`npm run setup:temporal\``);
  return local;
}

/** Our search attributes as Temporal's tools name them: `AgentlabVmid` and `Int`. */
export function searchAttributeDefinitions(): { name: string; type: string }[] {
  return ALL_SEARCH_ATTRIBUTES.map((key) => ({ name: key.name, type: TYPE_NAMES[key.type]! }));
}

export function searchAttributeArgs(): string[] {
  return searchAttributeDefinitions().flatMap(({ name, type }) => ['--search-attribute', `${name}=${type}`]);
}

export function devServerArgs(options: {
  ip: string;
  port: number;
  uiPort?: number;
  namespace: string;
  dbFilename?: string;
  /** The worker's codec endpoint, so the Web UI shows decrypted payloads. */
  uiCodecEndpoint?: string;
}): string[] {
  return [
    'server',
    'start-dev',
    '--ip',
    options.ip,
    '--port',
    String(options.port),
    ...(options.uiPort ? ['--ui-port', String(options.uiPort), '--ui-disable-news-fetch'] : ['--headless']),
    '--namespace',
    options.namespace,
    ...(options.dbFilename ? ['--db-filename', options.dbFilename] : []),
    ...(options.uiCodecEndpoint ? ['--ui-codec-endpoint', options.uiCodecEndpoint] : []),
    '--log-level',
    'warn',
    '--dynamic-config-value',
    'frontend.enableServerVersionCheck=false',
    ...searchAttributeArgs(),
  ];
}
