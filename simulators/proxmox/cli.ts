// The standalone simulator's command line: a flag for every latency, volume step and fault, the node count,
// TLS with the certificate written where a client's CA file can point, and the JSONL request log.
import { Command, InvalidArgumentError } from 'commander';
import { FAST_LATENCIES, REALISTIC_LATENCIES, type Faults, type Latencies, type LatencyOverrides } from './state';
import type { StorageType } from './storage';

export interface SimCli {
  port: number;
  host: string;
  nodes: string[];
  tls: boolean;
  caFile: string;
  legacyErrors: boolean;
  fast: boolean;
  latency: LatencyOverrides;
  faults: Partial<Faults>;
  requestLog?: string;
  snippetsDir: string;
  template: number;
  templateStorage: string;
  launchGuestRunner: boolean;
  guestWorkRoot: string;
  allowLocalRepos: boolean;
}

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
type ScalarLatency = Exclude<keyof Latencies, 'storageSteps'>;
const SCALAR_LATENCIES = Object.keys(REALISTIC_LATENCIES).filter((k) => k !== 'storageSteps') as ScalarLatency[];
const STEP_KEYS = ['cloneImageMs', 'allocImageMs', 'freeImageMs'] as const;

function number(flag: string, min: number, max = Number.POSITIVE_INFINITY, integer = true) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      const range = max === Number.POSITIVE_INFINITY ? `${min} or more` : `from ${min} to ${max}`;
      throw new InvalidArgumentError(
        `--${flag}: expected ${integer ? 'an integer' : 'a number'} ${range}, got '${value}'`,
      );
    }
    return n;
  };
}

/** Node names: `pve` alone, else pve1…pveN, as a fresh cluster's nodes might be called. */
const nodeNames = (count: number) => (count === 1 ? ['pve'] : Array.from({ length: count }, (_, i) => `pve${i + 1}`));

export function simCommand(): Command {
  const program = new Command('pve-sim')
    .description('A Proxmox VE 8.4 API simulator (see simulators/proxmox/README.md)')
    .option('--port <port>', 'listen port (0: any free one)', number('port', 0, 65535), 8006)
    .option('--host <address>', 'listen address', '127.0.0.1')
    .option('--nodes <count>', 'nodes in the cluster (pve, or pve1…pveN)', number('nodes', 1, 32), 1)
    .option('--node-names <names>', 'the nodes by name, comma-separated (instead of --nodes)')
    .option('--tls', 'HTTPS with a fresh self-signed certificate, as a new node has')
    .option('--ca-file <file>', 'with --tls: where the certificate PEM is written for clients', '/tmp/pve-sim-ca.pem')
    .option('--legacy-errors', 'error text only in the status line (pve-http-server before 5.2)')
    .option('--fast', "the tests' latencies instead of realistic ones, and no delay on a refused token")
    .option('--request-log <file>', 'append one JSON line per request')
    .option('--snippets-dir <dir>', 'the directory behind local:snippets/', '/tmp/pve-sim-snippets')
    .option('--template <vmid>', 'the template VM to create', number('template', 100), 9000)
    .option(
      '--template-storage <id>',
      "the template's disk: local-lvm (lvmthin), local-zfs (zfspool) or local (dir)",
      'local-lvm',
    )
    .option('--launch-guest-runner', 'run the real guest runner in VMs that boot with a bootstrap snippet')
    .option('--guest-work-root <dir>', "the guest runners' directories", '/tmp/pve-sim-guests')
    .option('--allow-local-repos', 'let guest runners clone repositories by path (tests only)');
  for (const key of SCALAR_LATENCIES) {
    const flag = kebab(key);
    program.option(
      `--${flag} <ms>`,
      `latency ${key} (realistic ${REALISTIC_LATENCIES[key]}, fast ${FAST_LATENCIES[key]})`,
      number(flag, 0),
    );
  }
  for (const type of Object.keys(REALISTIC_LATENCIES.storageSteps) as StorageType[]) {
    for (const step of STEP_KEYS) {
      const flag = `${type}-${kebab(step)}`;
      const real = REALISTIC_LATENCIES.storageSteps[type][step];
      program.option(
        `--${flag} <ms>`,
        `${type} volume step ${step}, under the storage lock (realistic ${real})`,
        number(flag, 0),
      );
    }
  }
  program
    .option(
      '--error-rate <p>',
      'probability of 596 Connection timed out per request',
      number('error-rate', 0, 1, false),
      0,
    )
    .option(
      '--lock-contention <p>',
      'probability a clone fails on the storage lock',
      number('lock-contention', 0, 1, false),
      0,
    )
    .option('--extra-latency-ms <ms>', 'added to every request', number('extra-latency-ms', 0), 0)
    .option(
      '--steal-clone-targets <n>',
      'the next n clones find their VMID just taken',
      number('steal-clone-targets', 0),
      0,
    );
  return program;
}

/** Parses argv (without node and script); throws commander's errors, each naming its flag. */
export function parseSimArgs(argv: string[], command = simCommand()): SimCli {
  command.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: (s) => process.stdout.write(s) });
  const o = command.parse(argv, { from: 'user' }).opts<Record<string, unknown>>();
  const latency: LatencyOverrides = {};
  for (const key of SCALAR_LATENCIES) {
    const value = o[key];
    if (typeof value === 'number') latency[key] = value;
  }
  const steps: NonNullable<LatencyOverrides['storageSteps']> = {};
  for (const type of Object.keys(REALISTIC_LATENCIES.storageSteps) as StorageType[]) {
    for (const step of STEP_KEYS) {
      const value = o[`${type}${step[0]!.toUpperCase()}${step.slice(1)}`];
      if (typeof value === 'number') steps[type] = { ...steps[type], [step]: value };
    }
  }
  if (Object.keys(steps).length) latency.storageSteps = steps;
  const names = typeof o.nodeNames === 'string' ? o.nodeNames.split(',').filter(Boolean) : nodeNames(o.nodes as number);
  const bad = names.find((n) => !/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(n));
  if (bad !== undefined) throw new InvalidArgumentError(`--node-names: '${bad}' is not a valid node name`);
  return {
    port: o.port as number,
    host: o.host as string,
    nodes: names,
    tls: o.tls === true,
    caFile: o.caFile as string,
    legacyErrors: o.legacyErrors === true,
    fast: o.fast === true,
    latency,
    faults: {
      errorRate: o.errorRate as number,
      lockContention: o.lockContention as number,
      extraLatencyMs: o.extraLatencyMs as number,
      stealCloneTargets: o.stealCloneTargets as number,
    },
    requestLog: o.requestLog as string | undefined,
    snippetsDir: o.snippetsDir as string,
    template: o.template as number,
    templateStorage: o.templateStorage as string,
    launchGuestRunner: o.launchGuestRunner === true,
    guestWorkRoot: o.guestWorkRoot as string,
    allowLocalRepos: o.allowLocalRepos === true,
  };
}
