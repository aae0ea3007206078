// The Proxmox VE API simulator: HTTP(S) server, token auth, routing, both error formats, fault injection and
// a JSONL request log. The cluster has one or more nodes; every `/nodes/{node}/…` call is answered as that node.
import { X509Certificate } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { DRIVE_FORMAT, parsePropertyString } from '../../common/property-string';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { Envelope, type Route } from './access';
import { flockTimeout, SimHttpError, unknownNode } from './errors';
import { GuestRunners, type GuestRunnerOptions } from './guests';
import { decodeBody, decodeUrlencoded, selfSignedCertificate } from './http';
import { DRIVE_KEY } from './drives';
import { createRoutes } from './routes';
import { validateParams, type ParamValue } from './schema';
import type { Upload } from './storage-routes';
import { SimState, type ConfigValue, type Faults, type LatencyOverrides, type SimVm } from './state';
import { volumes } from './storage';

export interface StartEvent {
  vmid: number;
  /** The node the VM started on. */
  node: string;
  /** The JSON cloud-init writes to /etc/agentlab/bootstrap.json, when the VM has such a snippet. */
  bootstrap?: unknown;
}

export interface PveSimOptions {
  /** The cluster's node names (default one node, `pve`); `node` names a single one. */
  nodes?: string[];
  node?: string;
  tokenId?: string;
  tokenSecret?: string;
  /** `legacy`: text only in the status line (pve-http-server < 5.2); `modern`: also `message` in the body. */
  errorFormat?: 'legacy' | 'modern';
  tls?: boolean;
  /** Directory backing `local:snippets/` (where the backend writes its cloud-init files). */
  snippetsDir?: string;
  latency?: LatencyOverrides;
  faults?: Partial<Faults>;
  /** PVE delays every 401 by ~3 s. */
  authFailureDelayMs?: number;
  onStart?: (event: StartEvent) => void;
  /** Run the real guest runner for every started VM whose cloud-init snippet carries a bootstrap. */
  launchGuestRunner?: GuestRunnerOptions;
  /**
   * Gives volumes contents: one folder per volume under this directory, moved with move_disk and removed when
   * the volume is freed. A launched guest whose bootstrap names a workspace gets its workspace disk's folder.
   */
  volumeDataDir?: string;
  /** Append one JSON line per request (time, method, path, status, duration, user) to this file. */
  requestLog?: string;
}

export interface RequestRecord {
  time: string;
  method: string;
  path: string;
  query?: string;
  status: number;
  ms: number;
  user?: string;
}

export class PveSim {
  readonly state: SimState;
  readonly tokenId: string;
  readonly tokenSecret: string;
  errorFormat: 'legacy' | 'modern';
  fingerprint?: string;
  /** PEM of the self-signed certificate (with `tls`), for clients that trust it as their CA. */
  certificate?: string;
  readonly guests?: GuestRunners;
  /** The last requests answered, oldest first (all of them in `requestLog`). */
  readonly requests: RequestRecord[] = [];
  private readonly routes: Route[];
  private readonly uploads = new Map<string, Upload>();
  private server?: Server;
  private port = 0;
  private host = '127.0.0.1';

  constructor(private readonly options: PveSimOptions = {}) {
    this.state = new SimState(options.nodes ?? [options.node ?? 'pve'], options.latency);
    Object.assign(this.state.faults, options.faults);
    this.tokenId = options.tokenId ?? 'agentlab@pve!ci';
    this.tokenSecret = options.tokenSecret ?? '5e3c51e4-1a2b-4c3d-8e9f-0a1b2c3d4e5f';
    this.errorFormat = options.errorFormat ?? 'modern';
    this.state.volumeDataRoot = options.volumeDataDir;
    if (options.launchGuestRunner) {
      this.guests = new GuestRunners(options.launchGuestRunner);
      this.state.guestNet = 'loopback';
    }
    this.routes = createRoutes(this.state, {
      hooks: {
        onStart: (vmid, vm) => this.handleStart(vmid, vm),
        onStop: (vmid) => this.guests?.kill(vmid),
        onDestroy: (vmid) => this.guests?.remove(vmid),
      },
      fingerprint: () => this.fingerprint,
      snippetsDir: options.snippetsDir,
      uploads: this.uploads,
    });
  }

  /** The first node: a single-node simulator's only one. */
  get node(): string {
    return this.state.node;
  }
  get nodes(): string[] {
    return this.state.nodes;
  }
  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://${this.host}:${this.port}`;
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
    // Listening everywhere, it is reachable at loopback, which its certificate names.
    this.host = host === '0.0.0.0' ? '127.0.0.1' : host;
  }

  async close(): Promise<void> {
    this.guests?.killAll();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /**
   * A template: its disk a base volume on `storage` (default local-lvm, LVM-thin), so linked clones work;
   * `linkedClone: false` leaves a plain raw disk on the `local` directory storage, which only full clones copy.
   */
  addTemplate(
    vmid: number,
    options: {
      name?: string;
      agent?: boolean;
      cloudInit?: boolean;
      template?: boolean;
      linkedClone?: boolean;
      node?: string;
      storage?: string;
    } = {},
  ): void {
    const storage = this.state.storage(options.linkedClone === false ? 'local' : (options.storage ?? 'local-lvm'));
    if (!storage) throw new Error(`no storage ${options.storage}`);
    const disk =
      options.linkedClone === false
        ? `local:${vmid}/vm-${vmid}-disk-0.raw`
        : `${storage.id}:${volumes.base(storage, vmid, 0)}`;
    const config: Record<string, ConfigValue> = {
      name: options.name ?? 'agent-template',
      cores: 2,
      memory: '2048',
      net0: `virtio=${this.state.newMac()},bridge=vmbr1`,
      scsi0: `${disk},size=8G`,
      scsihw: 'virtio-scsi-single',
      ostype: 'l26',
      boot: 'order=scsi0',
      smbios1: 'uuid=2b1a4c39-8f37-4f5e-9a26-0d4b2c7a1e11',
    };
    if (options.template !== false) config.template = 1;
    if (options.agent !== false) config.agent = '1';
    if (options.cloudInit !== false) config.ide2 = `${storage.id}:${volumes.cloudinit(storage, vmid)},media=cdrom`;
    this.state.vms.set(vmid, { vmid, node: options.node ?? this.node, config, status: 'stopped' });
  }

  /** A VM somebody else made (no tags unless given): the backend must never touch it. */
  addVm(vmid: number, config: Record<string, ConfigValue> = {}, running = false, node = this.node): void {
    this.state.vms.set(vmid, {
      vmid,
      node,
      config: { name: `foreign-${vmid}`, cores: 1, memory: '1024', ...config },
      status: running ? 'running' : 'stopped',
      ...(running ? { qmpstatus: 'running', startedAt: Date.now() - 3_600_000 } : {}),
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
      this.guests.launch(
        vmid,
        this.withWorkspaceDisk(vm, bootstrap as Record<string, unknown>),
        this.state.latency.bootMs,
      );
    }
    this.options.onStart?.({ vmid, node: vm.node, bootstrap });
  }

  /**
   * The guest mounts its workspace disk (found by its serial) where the bootstrap says; a guest that is a host
   * process sees the folder of that volume instead, so what one job writes is there for the next.
   */
  private withWorkspaceDisk(vm: SimVm, bootstrap: Record<string, unknown>): Record<string, unknown> {
    if (typeof bootstrap.workspace !== 'string') return bootstrap;
    const disk = Object.entries(vm.config)
      .filter(([key]) => DRIVE_KEY.test(key))
      .map(([, value]) => parsePropertyString(String(value), DRIVE_FORMAT, { lenient: true }))
      .find((drive) => drive.serial === 'agentlab-workspace' && drive.file);
    const dir = disk && this.state.volumeDir(disk.file!);
    if (!dir) return bootstrap; // no disk, or volumes without contents: the runner finds no mount and says so
    mkdirSync(dir, { recursive: true });
    return { ...bootstrap, workspace: dir };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://sim');
    const path = url.pathname.replace(/^\/api2\/json/, '');
    const method = (req.method ?? 'GET') as Route['method'];
    let user: string | undefined;
    const reply = (status: number, reason: string, body?: unknown) => {
      this.reply(res, status, reason, body);
      this.record({ method, path, query: url.search.slice(1) || undefined, status, user, started });
    };
    try {
      if (this.state.faults.extraLatencyMs) await sleep(this.state.faults.extraLatencyMs);
      user = await this.authenticate(req);
      if (!user)
        return reply(401, req.headers.authorization?.includes('PVEAPIToken') ? 'Authentication failed!' : 'No ticket');
      const { params, uploads } = await decodeBody(req, method);
      for (const upload of uploads) this.uploads.set(upload.tmpfilename, upload);
      if (method === 'DELETE' && params === undefined)
        throw new SimHttpError(501, "Unexpected content for method 'DELETE'");
      this.state.stats.requests++;
      if (Math.random() < this.state.faults.errorRate) {
        this.state.stats.injectedFaults++;
        return reply(596, 'Connection timed out');
      }
      const vmid = /^\/nodes\/[^/]+\/qemu\/(\d+)/.exec(path)?.[1];
      if (vmid && method !== 'GET' && Math.random() < (this.state.faults.configLockContention ?? 0)) {
        this.state.stats.injectedFaults++;
        throw new SimHttpError(500, flockTimeout(Number(vmid)));
      }

      const match = this.match(method, path);
      if (!match) throw new SimHttpError(501, `Method '${method} ${path}' not implemented`);
      // Query parameters are merged over the body's (pve-http-server extract_params).
      const merged: Record<string, ParamValue> = { ...params, ...decodeUrlencoded(url.search.slice(1)) };
      const invalid = validateParams(match.route.path, method, { ...merged, ...match.pathParams });
      if (Object.keys(invalid).length > 0) throw new SimHttpError(400, 'Parameter verification failed.', invalid);
      const node = match.pathParams.node;
      if (node !== undefined && !this.state.nodes.includes(node)) throw new SimHttpError(500, unknownNode(node));
      const data = await match.route.handler({
        params: { ...(merged as Record<string, string>), ...match.pathParams },
        node: node ?? this.node,
        vmid: Number(match.pathParams.vmid),
        user,
      });
      if (data instanceof Envelope) reply(200, 'OK', { data: data.data ?? null, ...data.extra });
      else reply(200, 'OK', { data: data ?? null });
    } catch (err) {
      if (err instanceof SimHttpError) {
        const body: Record<string, unknown> = { data: null };
        if (err.errors) body.errors = err.errors;
        if (this.errorFormat === 'modern') body.message = err.message + '\n';
        return reply(err.status, err.message, body);
      }
      reply(500, (err as Error).message, { data: null, message: (err as Error).message + '\n' });
    }
  }

  /** The UPID user (`user@realm!token`), or undefined after PVE's deliberate delay for a refused one. */
  private async authenticate(req: IncomingMessage): Promise<string | undefined> {
    const header = req.headers.authorization ?? '';
    const match = /(?:^|\s)PVEAPIToken(?:=| )([^;]*)/.exec(header);
    const value = match ? decodeURIComponent(match[1]!) : undefined;
    const split = value?.lastIndexOf('=') ?? -1;
    if (value && split > 0 && value.slice(0, split) === this.tokenId && value.slice(split + 1) === this.tokenSecret) {
      return this.tokenId;
    }
    await sleep(this.options.authFailureDelayMs ?? 3000);
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

  private record(entry: Omit<RequestRecord, 'time' | 'ms'> & { started: number }): void {
    const { started, ...rest } = entry;
    const record: RequestRecord = {
      time: new Date().toISOString(),
      ...rest,
      ms: Math.round(performance.now() - started),
    };
    this.requests.push(record);
    if (this.requests.length > 10_000) this.requests.splice(0, this.requests.length - 10_000);
    // Written at once, so a reader sees a request as soon as its answer is out.
    if (this.options.requestLog) appendFileSync(this.options.requestLog, JSON.stringify(record) + '\n');
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
