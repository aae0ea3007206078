// What every command needs: the config, a lazily connected Temporal client, the output mode and where output
// goes (ctx.io), and the jobs layer (cli/jobs.ts) over that client.
import type { Client } from '@temporalio/client';
import { loadConfig, type AgentlabConfig } from '../common/config';
import { connectClient } from '../common/temporal';
import type { CliIo } from './io';
import type { Jobs } from './jobs';

export interface CliContextOptions {
  json: boolean;
  io: CliIo;
  /** The jobs layer over this context; a test may hand in one of its own. */
  jobs: (ctx: CliContext) => Jobs;
  /** By default the config file (AGENTLAB_CONFIG), read on first use. */
  loadConfig?: () => AgentlabConfig;
}

export class CliContext {
  readonly json: boolean;
  readonly io: CliIo;
  private configCache?: AgentlabConfig;
  private clientCache?: Promise<Client>;
  private jobsCache?: Jobs;

  constructor(private readonly options: CliContextOptions) {
    this.json = options.json;
    this.io = options.io;
  }

  get config(): AgentlabConfig {
    this.configCache ??= (this.options.loadConfig ?? loadConfig)();
    return this.configCache;
  }

  client(): Promise<Client> {
    this.clientCache ??= connectClient(this.config);
    return this.clientCache;
  }

  get jobs(): Jobs {
    this.jobsCache ??= this.options.jobs(this);
    return this.jobsCache;
  }

  async close(): Promise<void> {
    const client = await this.clientCache?.catch(() => undefined); // a failed connect has nothing to close
    await client?.connection.close().catch(() => undefined);
  }
}
