// `agentlab doctor`: checks the host's prerequisites for the configured backends, each with its fix.
import { constants as fsConstants, promises as fs } from 'node:fs';
import type { Command } from 'commander';
import execa from 'execa';
import type { ProxmoxBackend } from '../../backends/proxmox/backend';
import { createProxmoxBackend } from '../../backends/proxmox/create';
import { AGENTS_INSTALL_COMMAND, listAgents } from '../../common/agent-tools';
import type { AgentlabConfig, Profile } from '../../common/config';
import { bootDisk, GIB, type VmConfig } from '../../backends/proxmox/drives';
import { loadCodecKey } from '../../common/codec';
import { hostPackageFor } from '../../common/host-packages';
import { loadOperatorToken } from '../../common/operator-api';
import { checkKey, loadBundle, SecretsError, secretsPaths } from '../../common/secrets';
import { ExitCode } from '../errors';
import { printJson, printTable } from '../output';
import { runAction } from '../run-action';
import { qemuChecks } from './doctor-qemu';
import { temporalConnectionCheck, temporalTlsCheck } from './doctor-temporal';

type Status = 'ok' | 'warn' | 'fail' | 'skip';
interface Check {
  name: string;
  status: Status;
  detail: string;
  fix?: string;
}

const run = (command: string, args: string[]) => execa(command, args, { reject: false, timeout: 10_000 });

async function onPath(tool: string): Promise<boolean> {
  return (await run('sh', ['-c', `command -v ${tool}`])).exitCode === 0;
}

/** The age key that encrypts the secrets bundles: present and private, or not set up (a warning). */
function secretsKeyCheck(): Check {
  const paths = secretsPaths();
  try {
    checkKey(paths);
    return { name: 'secrets key', status: 'ok', detail: `${paths.keyFile} exists and is private` };
  } catch (err) {
    if (err instanceof SecretsError && err.kind === 'not_found') {
      return { name: 'secrets key', status: 'warn', detail: (err as Error).message, fix: 'agentlab secrets init' };
    }
    return {
      name: 'secrets key',
      status: 'fail',
      detail: (err as Error).message,
      fix: 'chmod 600 the key file, 700 its directory',
    };
  }
}

async function writableCheck(name: string, path: string, fix: string): Promise<Check> {
  const writable = await fs.access(path, fsConstants.W_OK).then(
    () => true,
    () => false,
  );
  return writable
    ? { name, status: 'ok', detail: `${path} is writable` }
    : { name, status: 'fail', detail: `${path} is not writable`, fix };
}

async function localChecks(config: AgentlabConfig): Promise<Check[]> {
  const { local } = config;
  if (local.isolation === 'none') {
    return [
      {
        name: 'isolation',
        status: 'warn',
        detail: 'local.isolation is none: sandboxes are plain processes',
        fix: 'set local.isolation: namespaces (needs root)',
      },
    ];
  }
  const checks: Check[] = [];
  const uid = process.getuid?.();
  checks.push(
    uid === 0
      ? { name: 'root', status: 'ok', detail: 'running as root' }
      : {
          name: 'root',
          status: 'fail',
          detail: `running as uid ${uid}; namespaces and nftables need root`,
          fix: 'run the worker (and doctor) as root, e.g. with sudo',
        },
  );
  const unshare = await run('unshare', ['--net', '--mount', '--pid', '--uts', '--ipc', '--fork', 'true']);
  checks.push(
    unshare.exitCode === 0
      ? { name: 'namespaces', status: 'ok', detail: 'net, mount, pid, uts and ipc namespaces can be created' }
      : {
          name: 'namespaces',
          status: 'fail',
          detail: `unshare failed: ${unshare.stderr.trim()}`,
          fix: 'enable user/kernel namespaces; run as root',
        },
  );
  for (const tool of ['bwrap', 'ip', 'nft']) {
    checks.push(
      (await onPath(tool))
        ? { name: tool, status: 'ok', detail: `${tool} is installed` }
        : {
            name: tool,
            status: 'fail',
            detail: `${tool} is not installed`,
            fix: `apt-get install -y ${hostPackageFor(tool)}`,
          },
    );
  }
  const controllers = await fs.readFile('/sys/fs/cgroup/cgroup.controllers', 'utf8').catch(() => '');
  checks.push(
    /\bmemory\b/.test(controllers) && /\bcpu\b/.test(controllers)
      ? { name: 'cgroup v2', status: 'ok', detail: 'memory and cpu controllers available: profile limits are enforced' }
      : {
          name: 'cgroup v2',
          status: 'warn',
          detail: 'no cgroup v2 memory/cpu controllers: profile cores and memory are not enforced',
          fix: 'boot with systemd.unified_cgroup_hierarchy=1',
        },
  );
  const netScripts = 'scripts/net';
  const table = await run('nft', ['list', 'table', 'inet', 'agentlab']);
  checks.push(
    table.exitCode === 0 && table.stdout.includes(`"${local.bridge}"`)
      ? { name: 'nftables', status: 'ok', detail: `table inet agentlab is loaded for ${local.bridge}` }
      : {
          name: 'nftables',
          status: 'fail',
          detail:
            table.exitCode === 0
              ? `table inet agentlab does not cover ${local.bridge}`
              : 'table inet agentlab is not loaded',
          fix: `${netScripts}/apply.sh --apply --bridge ${local.bridge} --subnet ${local.subnet} --port-prefix alv (or start the worker: agentlab up)`,
        },
  );
  const link = await run('ip', ['-o', 'link', 'show', local.bridge]);
  checks.push(
    link.exitCode === 0 && /[<,]UP[,>]/.test(link.stdout)
      ? { name: 'bridge', status: 'ok', detail: `${local.bridge} is up` }
      : {
          name: 'bridge',
          status: 'fail',
          detail: link.exitCode === 0 ? `${local.bridge} is down` : `${local.bridge} does not exist`,
          fix: `${netScripts}/setup_vmbr1.sh --apply --bridge ${local.bridge} --address ${local.gateway}/${local.subnet.split('/')[1]}`,
        },
  );
  return checks;
}

/** The agent CLIs in the tools directory; missing is a failure only where a local profile runs that agent. */
async function agentChecks(config: AgentlabConfig): Promise<Check[]> {
  const needed = new Set(
    [...config.profiles.values()].filter((p) => p.backend === 'local' && !p.agent.command).map((p) => p.agent.kind),
  );
  return (await listAgents(config.agents.dir)).map((agent): Check => {
    const name = `agent ${agent.kind}`;
    if (agent.installed === agent.pinned) {
      return { name, status: 'ok', detail: `${agent.package} ${agent.installed} in ${config.agents.dir}` };
    }
    const users = [...config.profiles.values()].filter((p) => p.backend === 'local' && p.agent.kind === agent.kind);
    return {
      name,
      status: needed.has(agent.kind) ? 'fail' : 'warn',
      detail:
        `${agent.package} ${agent.pinned} is ${agent.installed ? `not installed (found ${agent.installed})` : 'not installed'} in ${config.agents.dir}` +
        (needed.has(agent.kind) ? ` (profiles ${users.map((p) => p.name).join(', ')} run it)` : ''),
      fix: AGENTS_INSTALL_COMMAND,
    };
  });
}

async function commonChecks(config: AgentlabConfig): Promise<Check[]> {
  const checks: Check[] = [];
  checks.push(await temporalConnectionCheck(config), ...temporalTlsCheck(config));
  const worker = await fetch(`${config.guestApi.url}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
    (r) => r.ok,
    () => false,
  );
  checks.push(
    worker
      ? { name: 'worker', status: 'ok', detail: `guest API answers at ${config.guestApi.url}` }
      : {
          name: 'worker',
          status: 'fail',
          detail: `no guest API at ${config.guestApi.url}`,
          fix: 'agentlab up (or start node dist/worker/main.js)',
        },
  );
  await fs.mkdir(config.dataDir, { recursive: true }).catch(() => undefined);
  checks.push(
    await writableCheck('data dir', config.dataDir, `chown the directory or set dataDir in ${config.source}`),
  );

  if (!config.worker.backends.includes('proxmox')) {
    checks.push({ name: 'proxmox', status: 'skip', detail: 'the proxmox backend is not enabled (worker.backends)' });
  }
  checks.push(secretsKeyCheck());
  checks.push(...(await bundleChecks(config)));
  checks.push(codecCheck(config));
  checks.push(...operatorApiChecks(config));
  return checks;
}

/** Each profile's bundle must decrypt here, or its jobs fail before they start. */
async function bundleChecks(config: AgentlabConfig): Promise<Check[]> {
  const checks: Check[] = [];
  for (const profile of config.profiles.values()) {
    if (!profile.secretsBundle) continue;
    const name = `bundle ${profile.secretsBundle} (profile ${profile.name})`;
    try {
      const bundle = await loadBundle(secretsPaths(), profile.secretsBundle);
      const env = Object.keys(bundle.env).length;
      checks.push({ name, status: 'ok', detail: `${env} env value(s)${bundle.git ? ', git credentials' : ''}` });
    } catch (err) {
      const fix = `agentlab secrets set-env --bundle ${profile.secretsBundle} …, or fix the profile's secretsBundle`;
      checks.push({ name, status: 'fail', detail: (err as Error).message, fix });
    }
  }
  return checks;
}

function codecCheck(config: AgentlabConfig): Check {
  const codec = config.temporal.codec;
  if (!codec) {
    const detail = 'payloads are not encrypted (temporal.codec.keyFile unset; fine for the embedded stack)';
    return { name: 'payload codec', status: 'skip', detail };
  }
  try {
    loadCodecKey(codec.keyFile);
    codec.previousKeyFiles.forEach(loadCodecKey);
    const previous = codec.previousKeyFiles.length ? ` (+${codec.previousKeyFiles.length} previous, read only)` : '';
    return {
      name: 'payload codec',
      status: 'ok',
      detail: `key ${codec.keyFile}${previous}, endpoint ${codec.endpointListen}`,
    };
  } catch (err) {
    return { name: 'payload codec', status: 'fail', detail: (err as Error).message, fix: 'see the message' };
  }
}

/** Only when configured: a worker that serves it, or a CLI that reads through it, needs the token file. */
function operatorApiChecks(config: AgentlabConfig): Check[] {
  const api = config.operatorApi;
  if (!api) return [];
  try {
    loadOperatorToken(api.tokenFile);
    const serves = api.listen ? `serves on ${api.listen}` : 'not served by this host';
    const nodes = Object.keys(api.urls);
    const reads = nodes.length ? `, reads jobs of ${nodes.join(', ')} through it` : '';
    return [{ name: 'operator API', status: 'ok', detail: `token ${api.tokenFile}; ${serves}${reads}` }];
  } catch (err) {
    return [{ name: 'operator API', status: 'fail', detail: (err as Error).message, fix: 'see the message' }];
  }
}

async function proxmoxChecks(config: AgentlabConfig): Promise<Check[]> {
  let backend: ProxmoxBackend;
  try {
    backend = createProxmoxBackend(config);
  } catch (err) {
    return [
      {
        name: 'proxmox',
        status: 'fail',
        detail: (err as Error).message,
        fix: `add a proxmox: section with url, tokenId and a token secret to ${config.source}`,
      },
    ];
  }
  const pve = config.proxmox!;
  const checks: Check[] = [];
  try {
    const { version } = await backend.version();
    checks.push({
      name: 'proxmox',
      status: 'ok',
      detail: `Proxmox VE ${version} at ${pve.url}, token ${pve.tokenId} accepted`,
    });
  } catch (err) {
    checks.push({
      name: 'proxmox',
      status: 'fail',
      detail: `${pve.url}: ${(err as Error).message}`,
      fix: 'check proxmox.url, the TLS settings (caFile or fingerprint) and that the API token exists with its secret',
    });
    return checks;
  }
  try {
    await backend.checkNode();
    checks.push({ name: 'proxmox node', status: 'ok', detail: `${backend.node} is a node of the cluster` });
  } catch (err) {
    checks.push({
      name: 'proxmox node',
      status: 'fail',
      detail: (err as Error).message,
      fix: `set proxmox.node in ${config.source} to this host's name in the cluster (pvecm nodes), or node: when agentlab's name for this host is not it`,
    });
    return checks; // every template check would fail on a node that does not exist
  }
  for (const profile of config.profiles.values()) {
    if (profile.backend !== 'proxmox' || profile.templateVmid === undefined) continue;
    try {
      const template = await backend.validateTemplate(profile.templateVmid);
      checks.push({
        name: `template ${profile.templateVmid}`,
        status: 'ok',
        detail: `usable by profile ${profile.name}`,
      });
      if (profile.resources.diskGb !== undefined) checks.push(diskSizeCheck(profile, template));
    } catch (err) {
      checks.push({
        name: `template ${profile.templateVmid}`,
        status: 'fail',
        detail: `profile ${profile.name}: ${(err as Error).message}`,
        fix: 'build the template with the guest agent (qm set <id> --agent 1), a cloud-init drive (qm set <id> --ide2 <storage>:cloudinit), then qm template <id>',
      });
    }
  }
  checks.push(
    await writableCheck(
      'snippets dir',
      pve.snippetsDir,
      `create it (storage ${pve.snippetStorage} with content type snippets) and run the worker as root`,
    ),
  );

  return checks;
}

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description("check this host's prerequisites for the configured backends, each with its fix")
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx) => {
        const { config } = ctx;
        const checks = [
          ...(config.worker.backends.includes('local') ? await localChecks(config) : []),
          ...(config.worker.backends.includes('local') ? await agentChecks(config) : []),
          ...(config.worker.backends.includes('proxmox') ? await proxmoxChecks(config) : []),
          ...(config.worker.backends.includes('qemu') ? await qemuChecks(config) : []),
          ...(await commonChecks(config)),
        ];
        const failed = checks.some((c) => c.status === 'fail');
        if (ctx.json) printJson(ctx.io, { ok: !failed, checks });
        else
          printTable(
            ctx.io,
            ['CHECK', 'STATUS', 'DETAIL', 'FIX'],
            checks.map((c) => [c.name, c.status.toUpperCase(), c.detail, c.fix]),
          );
        return failed ? ExitCode.failed : ExitCode.ok;
      }),
    );
}

/** A profile's diskGb against its template's boot disk: Proxmox grows a disk, never shrinks one. */
function diskSizeCheck(profile: Profile, template: VmConfig): Check {
  const diskGb = profile.resources.diskGb!;
  const name = `disk of profile ${profile.name}`;
  const disk = bootDisk(template);
  if (!disk) {
    return {
      name,
      status: 'fail',
      detail: `template ${profile.templateVmid} has no boot disk to grow`,
      fix: 'remove resources.diskGb',
    };
  }
  if (disk.sizeBytes > diskGb * GIB) {
    return {
      name,
      status: 'fail',
      detail: `resources.diskGb is ${diskGb}G, but template ${profile.templateVmid}'s boot disk (${disk.key}) is ${disk.size}: Proxmox cannot shrink a disk`,
      fix: `set resources.diskGb to at least the template's size, or remove it`,
    };
  }
  return { name, status: 'ok', detail: `${disk.key} grown from ${disk.size} to ${diskGb}G before each VM boots` };
}
