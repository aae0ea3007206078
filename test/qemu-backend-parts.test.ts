// The qemu backend's parts that need no VM (test/qemu/ boots real ones): the pidfile check, VMIDs shared with
// the local backend, owner marks, the seed's static network and its spent form.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { LocalNetwork } from '../backends/local/network';
import { QemuBackend } from '../backends/qemu/backend';
import { seedFiles, staticNetwork } from '../backends/qemu/nocloud-seed';
import { macFor, vmFiles } from '../backends/qemu/vm-dir';
import { qemuProcessesOf, runningQemu } from '../backends/qemu/vm-process';
import type { ResolvedProfile } from '../common/contract';
import { guestBoot } from './support/guest-boot';
import { setTimeout as sleep } from 'node:timers/promises';

const RANGE = { min: 7100, max: 7103 };
const owner = { jobId: 'job-a', workflowId: 'wf-a' };

function backend(dataDir: string): QemuBackend {
  const network = new LocalNetwork({ bridge: 'agentlab0', subnet: '10.78.0.0/24', guestApiPort: 8844 }, RANGE);
  return new QemuBackend({ dataDir, vmidRange: RANGE, network });
}

describe('qemu backend parts', () => {
  test('a pidfile counts only for a live QEMU whose command line names the VM directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentlab-qemu-pid-'));
    const vmDir = join(dir, '7100');
    mkdirSync(vmDir);
    const pidFile = join(vmDir, 'qemu.pid');
    // A process that looks like QEMU in /proc (argv[0]) and names one directory or another in its arguments.
    const fake = (named: string) =>
      spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', `file=${named}/disk.qcow2`], {
        argv0: 'qemu-system-x86_64',
        stdio: 'ignore',
      });
    const ours = fake(vmDir);
    const other = fake(join(dir, '7101'));
    try {
      await sleep(300);
      writeFileSync(pidFile, `${ours.pid}\n`);
      expect(await runningQemu(pidFile, vmDir)).toBe(ours.pid);
      expect(await qemuProcessesOf(vmDir)).toEqual([ours.pid]); // found without the pidfile too
      writeFileSync(pidFile, `${other.pid}\n`); // another VM's QEMU
      expect(await runningQemu(pidFile, vmDir)).toBeUndefined();
      writeFileSync(pidFile, `${process.pid}\n`); // a reused pid: not QEMU at all
      expect(await runningQemu(pidFile, vmDir)).toBeUndefined();
      writeFileSync(pidFile, 'garbage');
      expect(await runningQemu(pidFile, vmDir)).toBeUndefined();
      writeFileSync(pidFile, '999999999');
      expect(await runningQemu(pidFile, vmDir)).toBeUndefined();
    } finally {
      ours.kill('SIGKILL');
      other.kill('SIGKILL');
    }
  });

  test('VMIDs: one per owner and attempt, never one a local sandbox holds; destroy only with the mark', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'agentlab-qemu-alloc-'));
    mkdirSync(join(dataDir, 'sandboxes', '7100'), { recursive: true }); // the local backend's
    const qemu = backend(dataDir);
    const first = await qemu.allocate(owner, 1);
    expect(first).toBe(7101);
    expect(await qemu.allocate(owner, 1)).toBe(7101); // a retry after a crash
    expect(await qemu.allocate(owner, 2)).toBe(7102);
    expect(await qemu.allocate({ jobId: 'job-b', workflowId: 'wf-b' }, 1)).toBe(7103);
    await expect(qemu.allocate({ jobId: 'job-c', workflowId: 'wf-c' }, 1)).rejects.toThrow('no free VMID in 7100-7103');
    expect(await qemu.listOwned()).toEqual([
      { vmid: 7101, jobId: 'job-a', workflowId: 'wf-a', running: false },
      { vmid: 7102, jobId: 'job-a', workflowId: 'wf-a', running: false },
      { vmid: 7103, jobId: 'job-b', workflowId: 'wf-b', running: false },
    ]);
    expect(await qemu.destroy({ vmid: 7101, owner: { jobId: 'job-b', workflowId: 'wf-b' } })).toBe('not-ours');
    expect(await qemu.destroy({ vmid: 7101, owner })).toBe('destroyed');
    expect(await qemu.destroy({ vmid: 7101, owner })).toBe('absent');
    // A directory without a readable mark is never ours to remove.
    mkdirSync(vmFiles(dataDir, 7100).dir, { recursive: true });
    writeFileSync(vmFiles(dataDir, 7100).owner, '{"jobId": 1}');
    expect(await qemu.destroy({ vmid: 7100, owner })).toBe('not-ours');
  });

  test('configure refuses a repository on the host, and snapshot a bad name, before touching anything', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'agentlab-qemu-cfg-'));
    const qemu = backend(dataDir);
    const vmid = await qemu.allocate(owner, 1);
    const profile = { name: 'qemu-test', cores: 1, memoryMb: 512 } as ResolvedProfile;
    const job = { jobId: 'job-a', controllerUrl: 'http://10.78.0.1:8844', localRepo: { path: '/srv/r', commit: 'c' } };
    await expect(qemu.configure({ vmid, owner }, profile, guestBoot(vmid, job))).rejects.toThrow(
      '/srv/r is a repository on a host, which only the local backend can hand to a sandbox',
    );
    await expect(qemu.snapshot({ vmid, owner }, '../x')).rejects.toThrow(/snapshot name "\.\.\/x"/);
    await expect(qemu.start({ vmid: 7103, owner })).rejects.toThrow('QEMU VM 7103 does not exist');
  });

  test('the seed: a static address by MAC, and a spent form without the token', () => {
    const mac = macFor(7100);
    expect(mac).toBe('52:54:00:00:1b:bc');
    const network = staticNetwork(mac, { cidr: '10.78.0.2/24', gateway: '10.78.0.1', nameservers: ['10.78.0.1'] });
    const base = { instanceId: 'agentlab-7100-x', hostname: 'sandbox-7100', network };
    const bootstrap = { controllerUrl: 'http://10.78.0.1:8844', jobId: 'j', vmid: 7100, token: 'secret-token' };
    const live = seedFiles({ ...base, bootstrap });
    expect(live['user-data']).toContain('secret-token');
    expect(YAML.parse(live['network-config'])).toEqual({
      version: 2,
      ethernets: {
        eth0: {
          match: { macaddress: mac },
          'set-name': 'eth0',
          addresses: ['10.78.0.2/24'],
          routes: [{ to: '0.0.0.0/0', via: '10.78.0.1' }],
          nameservers: { addresses: ['10.78.0.1'] },
        },
      },
    });
    const spent = seedFiles(base);
    expect(spent['user-data']).not.toContain('secret-token');
    expect(spent['network-config']).toBe(live['network-config']);
    expect(spent['meta-data']).toBe(live['meta-data']);
    // No DNS forwarder: no nameserver at all, rather than one the guest cannot reach.
    expect(
      staticNetwork(mac, { cidr: '10.78.0.2/24', gateway: '10.78.0.1', nameservers: [] }).ethernets.eth0,
    ).not.toHaveProperty('nameservers');
  });
});
