// A real multi-service Temporal cluster for `npm run test:cluster`: Debian's PostgreSQL on a private port and
// data directory, the schema set up by Temporal's own SQL tool, then frontend, history, matching and worker as
// four processes of the server built by scripts/build-temporal-server.sh, our namespace and search attributes
// registered with the Temporal CLI. Everything binds to one address given by the caller (a bridge the test's
// network-namespace "hosts" reach), and everything lives under one directory, removed by stop().
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import execa from 'execa';
import YAML from 'yaml';
import { searchAttributeDefinitions } from '../../common/temporal-server';

const SERVICES = ['frontend', 'history', 'matching', 'worker'] as const;
type Service = (typeof SERVICES)[number];

export interface ClusterOptions {
  /** Where the database, configs and logs go. */
  dir: string;
  /** The directory holding temporal-server and temporal-sql-tool. */
  serverDir: string;
  temporalCli: string;
  /** The address every service binds to and advertises. */
  ip: string;
  namespace: string;
}

export interface ClusterFigures {
  postgresStartSeconds: number;
  schemaSeconds: number;
  servicesReadySeconds: number;
}

export class TemporalCluster {
  private readonly processes: { name: string; child: ChildProcess }[] = [];
  readonly figures: ClusterFigures = { postgresStartSeconds: 0, schemaSeconds: 0, servicesReadySeconds: 0 };
  address = '';
  private postgresPort = 0;

  constructor(private readonly options: ClusterOptions) {}

  async start(ports: { postgres: number; services: Record<Service, { grpc: number; membership: number }> }) {
    this.postgresPort = ports.postgres;
    this.address = `${this.options.ip}:${ports.services.frontend.grpc}`;
    let started = Date.now();
    await this.startPostgres();
    this.figures.postgresStartSeconds = seconds(started);
    started = Date.now();
    await this.setUpSchema();
    this.figures.schemaSeconds = seconds(started);
    started = Date.now();
    const configFile = this.writeServerConfig(ports.services);
    const startService = (service: Service) =>
      this.spawnLogged(`temporal-${service}`, join(this.options.serverDir, 'temporal-server'), [
        ...['--config-file', configFile, '--allow-no-auth', 'start', '--service', service],
      ]);
    // Each service writes the cluster's metadata on its first start; four at once race on that insert and the
    // losers exit ("Failed to apply cluster metadata"). The frontend first, then the others once it listens.
    startService('frontend');
    await retry('the frontend to listen', 60_000, () => {
      this.failIfAnyExited();
      return tcpConnect(this.options.ip, ports.services.frontend.grpc);
    });
    for (const service of SERVICES.filter((s) => s !== 'frontend')) startService(service);
    await this.registerNamespace();
    this.figures.servicesReadySeconds = seconds(started);
  }

  /** SIGTERM to every process (services first, PostgreSQL last), then SIGKILL to whatever is left after 10 s. */
  async stop(): Promise<void> {
    for (const { child } of [...this.processes].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  }

  private async startPostgres(): Promise<void> {
    const bin = postgresBinDir();
    const data = join(this.options.dir, 'postgres');
    mkdirSync(data, { recursive: true, mode: 0o700 });
    // PostgreSQL refuses to run as root: as root, its files belong to Debian's postgres user.
    const asPostgres = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
    if (asPostgres.length > 0) chownPostgres(this.options.dir, data);
    const run = (command: string, args: string[]) =>
      execa(asPostgres[0] ?? command, [...asPostgres.slice(1), ...(asPostgres.length ? [command] : []), ...args]);
    await run(join(bin, 'initdb'), ['-D', data, '-U', 'temporal', '--auth=trust', '--no-sync', '-E', 'UTF8']);
    const postgres = join(bin, 'postgres');
    this.spawnLogged('postgres', asPostgres[0] ?? postgres, [
      ...(asPostgres.length ? [...asPostgres.slice(1), postgres] : []),
      ...['-D', data, '-p', String(this.postgresPort), '-k', data, '-c', `listen_addresses=127.0.0.1`],
      ...['-c', 'max_connections=300'],
    ]);
    await retry('PostgreSQL to accept connections', 30_000, () =>
      execa(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(this.postgresPort)]),
    );
  }

  /** What the compose file's temporal-schema service does, with the schemas the tool embeds. */
  private async setUpSchema(): Promise<void> {
    const tool = join(this.options.serverDir, 'temporal-sql-tool');
    for (const [database, schema] of [
      ['temporal', 'postgresql/v12/temporal'],
      ['temporal_visibility', 'postgresql/v12/visibility'],
    ] as const) {
      const sql = (...args: string[]) =>
        execa(tool, [
          ...['--plugin', 'postgres12', '--endpoint', '127.0.0.1', '--port', String(this.postgresPort)],
          ...['--user', 'temporal', '--password', 'temporal', '--database', database, ...args],
        ]);
      await sql('create-database');
      await sql('setup-schema', '-v', '0.0');
      await sql('update-schema', '--schema-name', schema);
    }
  }

  private writeServerConfig(services: Record<Service, { grpc: number; membership: number }>): string {
    const { ip } = this.options;
    const datastore = (databaseName: string, maxConns: number) => ({
      sql: {
        pluginName: 'postgres12',
        databaseName,
        connectAddr: `127.0.0.1:${this.postgresPort}`,
        connectProtocol: 'tcp',
        user: 'temporal',
        password: 'temporal',
        maxConns,
        maxIdleConns: maxConns,
        maxConnLifetime: '1h',
      },
    });
    const dynamicConfig = join(this.options.dir, 'dynamic-config.yaml');
    writeFileSync(
      dynamicConfig,
      YAML.stringify({
        // A search attribute registered a moment ago is usable at once, as on the dev server.
        'system.forceSearchAttributesCacheRefreshOnRead': [{ value: true }],
        'frontend.enableServerVersionCheck': [{ value: false }],
      }),
    );
    const config = {
      log: { stdout: true, level: 'warn' },
      persistence: {
        defaultStore: 'default',
        visibilityStore: 'visibility',
        numHistoryShards: 4,
        datastores: { default: datastore('temporal', 40), visibility: datastore('temporal_visibility', 10) },
      },
      global: {
        membership: { maxJoinDuration: '30s', broadcastAddress: ip },
      },
      services: Object.fromEntries(
        SERVICES.map((service) => [
          service,
          { rpc: { grpcPort: services[service].grpc, membershipPort: services[service].membership, bindOnIP: ip } },
        ]),
      ),
      clusterMetadata: {
        enableGlobalNamespace: false,
        failoverVersionIncrement: 10,
        masterClusterName: 'active',
        currentClusterName: 'active',
        clusterInformation: {
          active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: this.address },
        },
      },
      dcRedirectionPolicy: { policy: 'noop' },
      dynamicConfigClient: { filepath: dynamicConfig, pollInterval: '10s' },
    };
    const path = join(this.options.dir, 'temporal-server.yaml');
    writeFileSync(path, YAML.stringify(config));
    return path;
  }

  /** The compose file's temporal-setup service: the namespace, then our search attributes. */
  private async registerNamespace(): Promise<void> {
    const cli = (...args: string[]) =>
      execa(this.options.temporalCli, [...args, '--address', this.address, '--command-timeout', '10s']);
    await retry('the cluster to report SERVING', 90_000, async () => {
      this.failIfAnyExited();
      const { stdout } = await cli('operator', 'cluster', 'health');
      if (!stdout.includes('SERVING')) throw new Error(stdout);
    });
    const { namespace } = this.options;
    await retry('the namespace to be created', 60_000, () =>
      cli('operator', 'namespace', 'create', '--namespace', namespace, '--retention', '1d'),
    );
    await retry('the namespace to be served', 60_000, () =>
      cli('operator', 'namespace', 'describe', '--namespace', namespace),
    );
    // One call per attribute: the CLI takes one --type per call. A retry may find it made already.
    for (const { name, type } of searchAttributeDefinitions()) {
      await retry(`search attribute ${name} to be registered`, 60_000, () =>
        cli('operator', 'search-attribute', 'create', '--namespace', namespace, '--name', name, '--type', type).catch(
          (err: execa.ExecaError) => {
            if (!/already exists/i.test(err.stderr)) throw err;
          },
        ),
      );
    }
    // `cluster health` asks the frontend alone: a workflow started (and terminated) proves history and matching.
    await retry('the history service to take a workflow', 60_000, async () => {
      const workflowId = `agentlab-cluster-probe-${Date.now()}`;
      await cli(
        ...['workflow', 'start', '--namespace', namespace, '--type', 'agentlab-cluster-probe'],
        ...['--task-queue', 'agentlab-cluster-probe', '--workflow-id', workflowId],
      );
      await cli('workflow', 'terminate', '--namespace', namespace, '--workflow-id', workflowId, '--reason', 'probe');
    });
  }

  /** A service that died at start will not come back: say which and where its log is, rather than wait. */
  private failIfAnyExited(): void {
    const dead = this.processes.find(({ child }) => child.exitCode !== null || child.signalCode !== null);
    if (dead) throw new GiveUp(`${dead.name} exited (${dead.child.signalCode ?? dead.child.exitCode}): see its log`);
  }

  private spawnLogged(name: string, command: string, args: string[]): void {
    const logFile = join(this.options.dir, `${name}.log`);
    const log = openSync(logFile, 'a');
    const child = spawn(command, args, { stdio: ['ignore', log, log] });
    closeSync(log); // the child holds its own copy
    child.once('exit', (code, signal) => {
      // Only a death stop() did not ask for is news.
      if (!child.killed) console.error(`${name} exited (${signal ?? code}); its log: ${logFile}`);
    });
    this.processes.push({ name, child });
  }
}

/** Debian installs each PostgreSQL major under /usr/lib/postgresql/<major>/bin: the newest. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((entry) => existsSync(join(root, entry, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (majors.length === 0)
    throw new Error(
      `no PostgreSQL server under ${root}: install Debian's postgresql package (apt-get install postgresql)`,
    );
  return join(root, majors[0]!, 'bin');
}

function chownPostgres(...paths: string[]): void {
  const { stdout } = execa.sync('id', ['-u', 'postgres']);
  const uid = Number(stdout);
  const gid = Number(execa.sync('id', ['-g', 'postgres']).stdout);
  for (const path of paths) chownSync(path, uid, gid);
}

class GiveUp extends Error {}

function tcpConnect(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => {
      socket.end();
      resolve();
    });
    socket.once('error', reject);
  });
}

async function retry<T>(what: string, timeoutMs: number, attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${(err as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

function seconds(since: number): number {
  return Math.round((Date.now() - since) / 100) / 10;
}
