// The `qemu` backend: a sandbox is a real VM on this host, QEMU booting the guest image (docs/qemu-guest.md)
// from a qcow2 overlay, its NIC a tap on the agent bridge behind the local backend's egress policy.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import type { Owner, ResolvedProfile } from '../../common/contract';
import { snapshotNameProblem } from '../../common/snapshot-names';
import type { LocalNetwork } from '../local/network';
import { sandboxDir } from '../local/sandbox-dir';
import { GIB } from '../proxmox/drives';
import {
  PermanentBackendError,
  type DestroyOutcome,
  type GuestBoot,
  type OwnedVm,
  type SandboxBackend,
  type VmRef,
} from '../contract';
import { ownership, requireOwner, type FoundVm } from '../ownership';
import { resolveAccelerator } from './accelerator';
import { guestIpv4Addresses } from './guest-agent';
import { ensureGuestImage, readGuestImage, type GuestImage } from './guest-image';
import { staticNetwork, writeNoCloudSeed } from './nocloud-seed';
import { qmpCommand } from './qmp';
import { DISK_ID, qemuArgs, type Accelerator } from './qemu-command';
import { createTap, deleteTap, tapName } from './tap';
import {
  exists,
  macFor,
  ownerRecord,
  qemuRoot,
  readOwner,
  readSettings,
  vmFiles,
  writeFileAtomic,
  type OwnerRecord,
  type VmFiles,
  type VmSettings,
} from './vm-dir';
import { killQemu, qemuProcessesOf, runningQemu } from './vm-process';

export interface QemuBackendOptions {
  dataDir: string;
  vmidRange: { min: number; max: number };
  /** The agent bridge and its addresses, shared with the local backend (one bridge, one ruleset). */
  network: LocalNetwork;
  /** The guest resolves through this address (the gateway's DNS forwarder); absent: no DNS. */
  nameserver?: string;
  /** An image directory (scripts/build-guest-image.sh's output); absent: built or taken from its cache. */
  imageDir?: string;
  accelerator?: 'auto' | Accelerator;
}

const TOOLS: Record<string, string> = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  genisoimage: 'genisoimage',
  ip: 'iproute2',
  bridge: 'iproute2',
  nft: 'nftables',
};
/** How long one guest agent query may take while the guest boots: the workflow polls again. */
const AGENT_QUERY_MS = 3000;

export class QemuBackend implements SandboxBackend {
  readonly kind = 'qemu' as const;
  private readonly root: string;
  private host?: { image: GuestImage; accelerator: Accelerator; reason: string };

  constructor(private readonly options: QemuBackendOptions) {
    this.root = qemuRoot(options.dataDir);
  }

  /** Root, the tools, the guest image, the accelerator, the bridge and ruleset; the worker calls it at start. */
  async prepareHost(): Promise<{ image: GuestImage; accelerator: Accelerator; reason: string }> {
    if (process.getuid?.() !== 0) {
      throw new PermanentBackendError('the qemu backend creates tap devices on the agent bridge, which needs root');
    }
    for (const [tool, pkg] of Object.entries(TOOLS)) {
      if ((await execa('sh', ['-c', `command -v ${tool}`], { reject: false })).exitCode !== 0) {
        throw new PermanentBackendError(`${tool} is not installed: apt-get install ${pkg}`);
      }
    }
    await fs.mkdir(this.root, { recursive: true });
    const image = this.options.imageDir ? readGuestImage(this.options.imageDir) : (await ensureGuestImage()).image;
    const { accelerator, reason } = await resolveAccelerator(
      this.options.accelerator ?? 'auto',
      image.kernel,
      join(this.root, 'accelerator.json'),
    );
    await this.options.network.ensureHost();
    this.host = { image, accelerator, reason };
    return this.host;
  }

  private prepared(): { image: GuestImage; accelerator: Accelerator } {
    if (!this.host) throw new Error('QemuBackend.prepareHost() has not run');
    return this.host;
  }

  private files(vmid: number): VmFiles {
    return vmFiles(this.options.dataDir, vmid);
  }

  /** Append-only record of real creations and destructions, as the local backend keeps: VM counts can be audited. */
  private async journal(op: 'clone' | 'destroy', vmid: number, jobId: string): Promise<void> {
    const line = JSON.stringify({ op, vmid, jobId, at: new Date().toISOString() }) + '\n';
    await fs.appendFile(join(this.root, 'journal.ndjson'), line);
  }

  private async vmids(): Promise<number[]> {
    await fs.mkdir(this.root, { recursive: true });
    return (await fs.readdir(this.root)).filter((e) => /^\d+$/.test(e)).map(Number);
  }

  async allocate(owner: Owner, attempt: number): Promise<number> {
    for (const vmid of await this.vmids()) {
      const record = await readOwner(this.files(vmid));
      if (record?.workflowId === owner.workflowId && record.attempt === attempt) return vmid; // a retry after a crash
    }
    // Reserved by renaming a directory into place: atomic, so two allocations never get one VMID.
    const staging = await fs.mkdtemp(join(this.root, '.allocating-'));
    await fs.writeFile(join(staging, 'owner.json'), JSON.stringify(ownerRecord(owner, attempt)));
    try {
      for (let vmid = this.options.vmidRange.min; vmid <= this.options.vmidRange.max; vmid++) {
        try {
          await fs.rename(staging, this.files(vmid).dir);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOTEMPTY' || code === 'EEXIST') continue;
          throw err;
        }
        // The local backend shares the range and the bridge (its addresses are by VMID): checked after our
        // reservation, as it checks after its own, so of two racing backends at least one sees the other.
        if (!(await exists(sandboxDir(this.options.dataDir, vmid)))) return vmid;
        await fs.rename(this.files(vmid).dir, staging);
      }
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
    throw new Error(`no free VMID in ${this.options.vmidRange.min}-${this.options.vmidRange.max}`);
  }

  /** What ownership.ts judges: the VM's folder and its owner.json. */
  private async found(vmid: number): Promise<FoundVm & { record?: OwnerRecord }> {
    const files = this.files(vmid);
    const record = await readOwner(files);
    return { exists: record !== undefined || (await exists(files.dir)), markedBy: record?.workflowId, record };
  }

  /** The one guard (ownership.ts): only a VM whose owner.json names this owner's workflow is touched. */
  private async requireOwned({ vmid, owner }: VmRef, options?: { absentIsFine?: boolean }): Promise<OwnerRecord> {
    const found = await this.found(vmid);
    requireOwner(`QEMU VM ${vmid}`, found, owner, options);
    return found.record!; // requireOwner refused a VM without one (unless absentIsFine)
  }

  /** The overlay, grown to the profile's diskGb; made under a temporary name, so one that exists is whole. */
  async clone(vm: VmRef, profile: ResolvedProfile): Promise<void> {
    await this.requireOwned(vm);
    const { vmid, owner } = vm;
    const files = this.files(vmid);
    if (await exists(files.disk)) return;
    const { image } = this.prepared();
    const temp = `${files.disk}.tmp-${process.pid}`;
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image.disk, temp]);
    if (profile.diskGb !== undefined) {
      const base = await virtualSize(image.disk);
      if (profile.diskGb * GIB < base) {
        await fs.rm(temp, { force: true });
        throw new PermanentBackendError(
          `profile ${profile.name} asks for a ${profile.diskGb}G disk, but the guest image is ${base / GIB} GiB: ` +
            'a disk cannot shrink',
        );
      }
      // The guest's cloud-init (resize_rootfs) grows the filesystem over it at first boot: it is the whole disk.
      await execa('qemu-img', ['resize', '-q', '-f', 'qcow2', temp, `${profile.diskGb}G`]);
    }
    await fs.rename(temp, files.disk);
    await this.journal('clone', vmid, owner.jobId);
  }

  async configure(vm: VmRef, profile: ResolvedProfile, { bootstrap, localRepo }: GuestBoot): Promise<void> {
    if (localRepo) {
      throw new PermanentBackendError(
        `${localRepo.path} is a repository on a host, which only the local backend can hand to a sandbox`,
      );
    }
    const record = await this.requireOwned(vm);
    const { vmid } = vm;
    const files = this.files(vmid);
    const { network } = this.options;
    const settings: VmSettings = {
      cores: profile.cores,
      memoryMb: profile.memoryMb,
      mac: macFor(vmid),
      // One per VM and attempt: cloud-init runs its per-instance modules (write_files) again when it changes.
      instanceId: `agentlab-${vmid}-${createHash('sha256').update(`${record.workflowId}/${record.attempt}`).digest('hex').slice(0, 12)}`,
      hostname: `sandbox-${vmid}`,
      cidr: network.cidr(vmid),
      gateway: network.gateway,
      nameservers: this.options.nameserver ? [this.options.nameserver] : [],
    };
    await writeFileAtomic(files.settings, JSON.stringify(settings));
    await writeNoCloudSeed(files.seed, { ...seedBase(settings), bootstrap });
  }

  /** Idempotent: a VM whose QEMU is running is left as it is; QEMU's lock on the overlay forbids a second one. */
  async start(vm: VmRef): Promise<void> {
    await this.requireOwned(vm);
    const { vmid } = vm;
    const files = this.files(vmid);
    if (await runningQemu(files.pid, files.dir)) return;
    if (!(await exists(files.disk)))
      throw new PermanentBackendError(`QEMU VM ${vmid} has no disk: it was never cloned`);
    if (!(await exists(files.seed))) throw new PermanentBackendError(`QEMU VM ${vmid} was never configured`);
    const settings = await readSettings(files);
    const { image, accelerator } = this.prepared();
    for (const stale of [files.pid, files.qmp, files.qga]) await fs.rm(stale, { force: true });
    await createTap(vmid, this.options.network.bridge);
    const args = qemuArgs({
      image,
      accelerator,
      overlay: files.disk,
      seed: files.seed,
      consoleLog: files.console,
      guestAgentSocket: files.qga,
      cores: settings.cores,
      memoryMb: settings.memoryMb,
      mac: settings.mac,
      netdev: `tap,id=net0,ifname=${tapName(vmid)},script=no,downscript=no`,
      name: `agentlab-${vmid}`,
      daemon: { pidFile: files.pid, qmpSocket: files.qmp },
    });
    // -daemonize: the parent returns once the VM runs, and the VM is nobody's child: a worker crash leaves it be.
    const result = await execa('qemu-system-x86_64', args, { reject: false, stdin: 'ignore', timeout: 60_000 });
    if (result.exitCode !== 0) {
      await deleteTap(vmid);
      throw new Error(`QEMU VM ${vmid} did not start (exit ${result.exitCode}): ${result.stderr.trim()}`);
    }
  }

  /**
   * The address the seed assigned, once the guest agent reports it on the guest's NIC: the guest has booted and
   * networkd has configured eth0. undefined while it boots (the agent not up yet, or no address yet).
   */
  async guestAddress(vm: VmRef): Promise<string | undefined> {
    await this.requireOwned(vm);
    const files = this.files(vm.vmid);
    if (!(await runningQemu(files.pid, files.dir))) return undefined;
    const expected = (await readSettings(files)).cidr.split('/')[0]!;
    const found = await guestIpv4Addresses(files.qga, AGENT_QUERY_MS).catch((): string[] => []);
    return found.includes(expected) ? expected : undefined;
  }

  async stop(vm: VmRef): Promise<void> {
    await this.requireOwned(vm);
    await this.powerOff(vm.vmid);
  }

  private async powerOff(vmid: number): Promise<void> {
    const files = this.files(vmid);
    for (const pid of await qemuProcessesOf(files.dir)) await killQemu(pid);
    for (const file of [files.pid, files.qmp, files.qga]) await fs.rm(file, { force: true });
    await deleteTap(vmid);
  }

  /** Replaces the seed by a spent one: the same instance and network (a reboot must keep them), no token. */
  async deleteBootstrap(vm: VmRef): Promise<void> {
    await this.requireOwned(vm, { absentIsFine: true });
    const files = this.files(vm.vmid);
    if (!(await exists(files.seed)) || !(await exists(files.settings))) return;
    await writeNoCloudSeed(files.seed, seedBase(await readSettings(files)));
  }

  async destroy({ vmid, owner }: VmRef): Promise<DestroyOutcome> {
    const found = await this.found(vmid);
    const state = ownership(found, owner);
    if (state !== 'ours') return state;
    await this.powerOff(vmid);
    await fs.rm(this.files(vmid).dir, { recursive: true, force: true });
    await this.journal('destroy', vmid, found.record!.jobId);
    return 'destroyed';
  }

  async listOwned(): Promise<OwnedVm[]> {
    const owned: OwnedVm[] = [];
    for (const vmid of await this.vmids()) {
      const files = this.files(vmid);
      const record = await readOwner(files);
      if (!record) continue;
      const running = (await runningQemu(files.pid, files.dir)) !== undefined;
      owned.push({ vmid, jobId: record.jobId, workflowId: record.workflowId, running });
    }
    return owned;
  }

  /**
   * A qcow2 internal snapshot of the overlay: through QMP while QEMU runs (it holds the image's lock, so
   * qemu-img may not write it), with qemu-img when it is stopped. One already there is a retried call's.
   */
  async snapshot(vm: VmRef, name: string): Promise<void> {
    const problem = snapshotNameProblem(name);
    if (problem) throw new PermanentBackendError(problem);
    await this.requireOwned(vm);
    const files = this.files(vm.vmid);
    if ((await snapshotNames(files.disk)).includes(name)) return;
    if (await runningQemu(files.pid, files.dir)) {
      await qmpCommand(files.qmp, 'blockdev-snapshot-internal-sync', { device: DISK_ID, name });
    } else {
      await execa('qemu-img', ['snapshot', '-q', '-c', name, files.disk]);
    }
  }

  /** Powers the VM off (a disk is never rolled back under a running guest), then applies the snapshot. */
  async rollback(vm: VmRef, name: string): Promise<void> {
    await this.requireOwned(vm);
    const { vmid } = vm;
    const files = this.files(vmid);
    if (!(await snapshotNames(files.disk)).includes(name)) {
      throw new PermanentBackendError(`QEMU VM ${vmid} has no snapshot '${name}'`);
    }
    await this.powerOff(vmid);
    await execa('qemu-img', ['snapshot', '-q', '-a', name, files.disk]);
  }
}

/** The seed's identity and network, without the bootstrap. */
function seedBase(settings: VmSettings) {
  return {
    instanceId: settings.instanceId,
    hostname: settings.hostname,
    network: staticNetwork(settings.mac, settings),
  };
}

/** qemu-img info -U: readable while QEMU holds the image (force-share, read only). */
async function imageInfo(path: string): Promise<{ 'virtual-size': number; snapshots?: { name: string }[] }> {
  const { stdout } = await execa('qemu-img', ['info', '-U', '--output=json', path]);
  return JSON.parse(stdout) as { 'virtual-size': number; snapshots?: { name: string }[] };
}

async function virtualSize(path: string): Promise<number> {
  return (await imageInfo(path))['virtual-size'];
}

async function snapshotNames(disk: string): Promise<string[]> {
  if (!(await exists(disk))) throw new PermanentBackendError(`${disk} does not exist: the VM was never cloned`);
  return ((await imageInfo(disk)).snapshots ?? []).map((s) => s.name);
}
