// The Proxmox VE API simulator: HTTP(S) server, token auth, routing, both error formats and fault injection.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import YAML from 'yaml';
import { SimHttpError } from './errors';
import { GuestRunners, type GuestRunnerOptions } from './guests';
import { createRoutes, type Route } from './qemu';
import { validateParams } from './schema';
import { SimState, type ConfigValue, type Faults, type Latencies, type SimVm } from './state';

export interface StartEvent {
  vmid: number;
  /** The JSON cloud-init writes to /etc/agentlab/bootstrap.json, when the VM has such a snippet. */
  bootstrap?: unknown;
}

export interface PveSimOptions {
  node?: string;
  tokenId?: string;
  tokenSecret?: string;
  /** `legacy`: text only in the status line (pve-http-server < 5.2); `modern`: also `message` in the body. */
  errorFormat?: 'legacy' | 'modern';
  tls?: boolean;
  /** Directory backing `<snippetStorage>:snippets/` (where the backend writes its cloud-init files). */
  snippetsDir?: string;
  latency?: Partial<Latencies>;
  faults?: Partial<Faults>;
  /** PVE delays every 401 by ~3 s. */
  authFailureDelayMs?: number;
  onStart?: (event: StartEvent) => void;
  /** Run the real guest runner for every started VM whose cloud-init snippet carries a bootstrap. */
  launchGuestRunner?: GuestRunnerOptions;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class PveSim {
  readonly state: SimState;
  readonly tokenId: string;
  readonly tokenSecret: string;
  errorFormat: 'legacy' | 'modern';
  fingerprint?: string;
  /** PEM of the self-signed certificate (with `tls`), for clients that trust it as their CA. */
  certificate?: string;
  private readonly routes: Route[];
  readonly guests?: GuestRunners;
  private server?: Server;
  private port = 0;

  constructor(private readonly options: PveSimOptions = {}) {
    this.state = new SimState(options.node ?? 'pve', options.latency);
    Object.assign(this.state.faults, options.faults);
    this.tokenId = options.tokenId ?? 'agentlab@pve!ci';
    this.tokenSecret = options.tokenSecret ?? '5e3c51e4-1a2b-4c3d-8e9f-0a1b2c3d4e5f';
    this.errorFormat = options.errorFormat ?? 'modern';
    if (options.launchGuestRunner) {
      this.guests = new GuestRunners(options.launchGuestRunner);
      this.state.guestNet = 'loopback';
    }
    this.routes = createRoutes(this.state, {
      onStart: (vmid, vm) => this.handleStart(vmid, vm),
      onStop: (vmid) => this.guests?.kill(vmid),
      onDestroy: (vmid) => this.guests?.remove(vmid),
    });
    this.routes.push({
      method: 'GET',
      path: '/nodes',
      handler: () =>
        [{ node: this.node, status: 'online', type: 'node', id: `node/${this.node}`, level: '', maxcpu: 16 }].map(
          (n) => ({ ...n, ...(this.fingerprint ? { ssl_fingerprint: this.fingerprint } : {}) }),
        ),
    });
  }

  /** Every endpoint it serves, spelled as in the schema (what data/'s schema subset is cut to). */
  get endpoints(): Pick<Route, 'method' | 'path'>[] {
    return this.routes.map(({ method, path }) => ({ method, path }));
  }

  get node(): string {
    return this.state.node;
  }
  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    if (this.options.tls) {
      const { key, cert } = selfSignedCertificate();
      this.fingerprint = new X509Certificate(cert).fingerprint256;
      this.certificate = cert;
      this.server = createHttpsServer({ key, cert }, handler);
    } else {
      this.server = createHttpServer(handler);
    }
    await new Promise<void>((resolve) => this.server!.listen(port, host, resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.guests?.killAll();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** A template: linked-clonable on local-lvm unless `linkedClone: false` (a raw disk on dir storage). */
  addTemplate(
    vmid: number,
    options: { name?: string; agent?: boolean; cloudInit?: boolean; template?: boolean; linkedClone?: boolean } = {},
  ): void {
    const disk =
      options.linkedClone === false
        ? `local:${vmid}/vm-${vmid}-disk-0.raw,size=8G`
        : `local-lvm:base-${vmid}-disk-0,size=8G`;
    const config: Record<string, ConfigValue> = {
      name: options.name ?? 'agent-template',
      cores: 2,
      memory: '2048',
      net0: 'virtio=BC:24:11:00:00:01,bridge=vmbr1',
      scsi0: disk,
      scsihw: 'virtio-scsi-single',
      ostype: 'l26',
    };
    if (options.template !== false) config.template = 1;
    if (options.agent !== false) config.agent = '1';
    if (options.cloudInit !== false) config.ide2 = `local-lvm:vm-${vmid}-cloudinit,media=cdrom`;
    this.state.vms.set(vmid, { vmid, config, status: 'stopped' });
  }

  /** A VM somebody else made (no tags unless given): the backend must never touch it. */
  addVm(vmid: number, config: Record<string, ConfigValue> = {}, running = false): void {
    this.state.vms.set(vmid, {
      vmid,
      config: { name: `foreign-${vmid}`, cores: 1, memory: '1024', ...config },
      status: running ? 'running' : 'stopped',
      startedAt: running ? Date.now() - 3_600_000 : undefined,
    });
  }

  vm(vmid: number): SimVm | undefined {
    return this.state.vms.get(vmid);
  }

  private handleStart(vmid: number, vm: SimVm): void {
    if (!this.options.onStart && !this.guests) return;
    const user = /(?:^|,)user=[^:]+:snippets\/([^,]+)/.exec(String(vm.config.cicustom ?? ''))?.[1];
    let bootstrap: unknown;
    if (user && this.options.snippetsDir) {
      try {
        const doc = YAML.parse(readFileSync(join(this.options.snippetsDir, user), 'utf8')) as {
          write_files?: { path: string; content: string }[];
        };
        const file = doc.write_files?.find((f) => f.path === '/etc/agentlab/bootstrap.json');
        if (file) bootstrap = JSON.parse(file.content);
      } catch {
        bootstrap = undefined; // a missing snippet boots a VM without bootstrap, as cloud-init would
      }
    }
    if (this.guests && bootstrap && typeof bootstrap === 'object') {
      this.guests.launch(vmid, bootstrap as Record<string, unknown>, this.state.latency.bootMs);
    }
    this.options.onStart?.({ vmid, bootstrap });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (this.state.faults.extraLatencyMs) await sleep(this.state.faults.extraLatencyMs);
      const user = await this.authenticate(req, res);
      if (!user) return;
      const url = new URL(req.url ?? '/', 'http://sim');
      const path = url.pathname.replace(/^\/api2\/json/, '');
      const method = (req.method ?? 'GET') as Route['method'];
      const body = await readBody(req);
      if (method === 'DELETE' && body.length > 0) throw new SimHttpError(501, "Unexpected content for method 'DELETE'");
      if (Math.random() < this.state.faults.errorRate) return this.reply(res, 596, 'Connection timed out');

      const match = this.match(method, path);
      if (!match) throw new SimHttpError(501, `Method '${method} ${path}' not implemented`);
      const params = parseBody(req, body);
      for (const [key, value] of url.searchParams) params[key] = value; // query wins over the body
      const pathParams = match.pathParams;
      const invalid = validateParams(match.route.path, method, { ...params, ...pathParams });
      if (Object.keys(invalid).length > 0) throw new SimHttpError(400, 'Parameter verification failed.', invalid);
      if (pathParams.node !== undefined && pathParams.node !== this.node) {
        const n = pathParams.node;
        throw new SimHttpError(
          500,
          `hostname lookup '${n}' failed - failed to get address info for: ${n}: Name or service not known`,
        );
      }
      const data = await match.route.handler({
        params: { ...params, ...pathParams },
        vmid: Number(pathParams.vmid),
        user,
      });
      const extra = path.endsWith('/log') && Array.isArray(data) ? { total: data.length } : {};
      this.reply(res, 200, 'OK', { data: data ?? null, ...extra });
    } catch (err) {
      if (err instanceof SimHttpError) {
        const body: Record<string, unknown> = { data: null };
        if (err.errors) body.errors = err.errors;
        if (this.errorFormat === 'modern') body.message = err.message + '\n';
        return this.reply(res, err.status, err.message, body);
      }
      this.reply(res, 500, (err as Error).message, { data: null, message: (err as Error).message + '\n' });
    }
  }

  /** Returns the UPID user (`user@realm!token`), or answers 401 after PVE's deliberate delay. */
  private async authenticate(req: IncomingMessage, res: ServerResponse): Promise<string | undefined> {
    const header = req.headers.authorization ?? '';
    const match = /(?:^|\s)PVEAPIToken(?:=| )([^;]*)/.exec(header);
    const value = match ? decodeURIComponent(match[1]!) : undefined;
    const split = value?.lastIndexOf('=') ?? -1;
    if (value && split > 0 && value.slice(0, split) === this.tokenId && value.slice(split + 1) === this.tokenSecret) {
      return this.tokenId;
    }
    await sleep(this.options.authFailureDelayMs ?? 3000);
    this.reply(res, 401, value ? 'Authentication failed!' : 'No ticket');
    return undefined;
  }

  private match(method: string, path: string): { route: Route; pathParams: Record<string, string> } | undefined {
    const parts = path.split('/').filter(Boolean);
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const template = route.path.split('/').filter(Boolean);
      if (template.length !== parts.length) continue;
      const pathParams: Record<string, string> = {};
      const ok = template.every((t, i) => {
        const m = /^\{(\w+)\}$/.exec(t);
        if (m) pathParams[m[1]!] = decodeURIComponent(parts[i]!);
        return m !== null || t === parts[i];
      });
      if (ok) return { route, pathParams };
    }
    return undefined;
  }

  private reply(res: ServerResponse, status: number, reason: string, body?: unknown): void {
    const headers: Record<string, string> = {
      Server: 'pve-api-daemon/3.0',
      'Cache-Control': 'max-age=0',
      Pragma: 'no-cache',
      Expires: new Date().toUTCString(),
      Connection: status >= 400 ? 'close' : 'Keep-Alive',
    };
    if (body !== undefined) headers['Content-Type'] = 'application/json;charset=UTF-8';
    // The status line carries the first line of the message: it is all an old client ever sees.
    res.writeHead(status, reason.split('\n')[0]!.replace(/\r/g, ''), headers);
    res.end(body === undefined ? '' : JSON.stringify(body));
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseBody(req: IncomingMessage, body: string): Record<string, string> {
  if (!body) return {};
  if ((req.headers['content-type'] ?? '').includes('application/json')) {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    return Object.fromEntries(
      Object.entries(parsed).map(([k, v]) => [k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v)]),
    );
  }
  return Object.fromEntries(new URLSearchParams(body));
}

/** A throwaway self-signed certificate for 127.0.0.1, like a fresh node's pve-ssl.pem. */
function selfSignedCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pve-sim-tls-'));
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=pve-sim']
        .concat(['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'])
        .concat(['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]),
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
