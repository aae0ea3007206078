// The QEMU command line that boots the guest image, and which accelerator this host can give it.
import { existsSync } from 'node:fs';
import execa from 'execa';
import type { GuestImage } from './guest-image';

export type Accelerator = 'kvm' | 'tcg';

/** How long a kernel under a working KVM may take to boot to its panic: about 1 s, plus a loaded host's margin. */
const KVM_PROBE_TIMEOUT_MS = 15_000;

/**
 * Whether KVM really runs a Linux guest here. /dev/kvm may exist, and QEMU may even create the VM, yet the guest
 * never get far: nested virtualisation not exposed (no vmx/svm in the CPU flags), a sandboxed /dev/kvm. So the
 * probe boots the image's own kernel with no root filesystem and panic=-1: it must reach "Kernel panic" and QEMU
 * exit (-no-reboot) within the timeout. About 1 s with KVM; TCG takes 2-3 s for the same.
 */
export async function probeKvm(kernel: string): Promise<{ usable: boolean; reason: string }> {
  if (!existsSync('/dev/kvm')) return { usable: false, reason: '/dev/kvm does not exist' };
  // prettier-ignore
  const probe = await execa('qemu-system-x86_64', [
    '-machine', 'q35', '-accel', 'kvm', '-m', '256', '-nodefaults', '-display', 'none', '-monitor', 'none',
    '-no-reboot', '-serial', 'stdio', '-kernel', kernel, '-append', 'console=ttyS0 panic=-1',
  ], { reject: false, timeout: KVM_PROBE_TIMEOUT_MS, all: true });
  if (probe.all?.includes('Kernel panic')) return { usable: true, reason: 'a kernel boots under KVM' };
  const why = probe.timedOut
    ? `a kernel under KVM did not get through its boot in ${KVM_PROBE_TIMEOUT_MS / 1000} s`
    : `qemu -accel kvm failed: ${(probe.all ?? '').trim().split('\n').pop() ?? ''}`;
  return { usable: false, reason: why };
}

export async function bestAccelerator(kernel: string): Promise<Accelerator> {
  return (await probeKvm(kernel)).usable ? 'kvm' : 'tcg';
}

export interface GuestVm {
  image: GuestImage;
  accelerator: Accelerator;
  /** The VM's own disk: a qcow2 overlay on image.disk (createOverlay). */
  overlay: string;
  /** The NoCloud seed ISO (writeNoCloudSeed). */
  seed: string;
  /** The serial console (kernel, systemd, cloud-init) goes to this file. */
  consoleLog: string;
  /** The QEMU guest agent's virtio-serial port, as a Unix socket QEMU listens on (guest-agent.ts). */
  guestAgentSocket: string;
  cores: number;
  memoryMb: number;
  /** The NIC's MAC address: the seed's network config (dhcpNetwork) finds the NIC by it. */
  mac: string;
  /** QEMU's -netdev; the default is user-mode networking (no root, the host at 10.0.2.2). */
  netdev?: string;
  /** The process's name in ps and /proc (default `agentlab`). */
  name?: string;
  /** Run detached from the caller (-daemonize), its pid written here: the VM outlives whoever started it. */
  daemon?: { pidFile: string; qmpSocket: string };
}

/** The overlay's block device name, for QMP commands such as blockdev-snapshot-internal-sync. */
export const DISK_ID = 'disk0';

/**
 * The arguments of qemu-system-x86_64 for one VM. Direct kernel boot (-kernel/-initrd) skips firmware menus and
 * the bootloader; -no-reboot makes a guest reboot or panic end the process rather than loop; no display and no
 * monitor: the console is the log file, and control goes through the guest agent (or a signal).
 */
export function qemuArgs(vm: GuestVm): string[] {
  // prettier-ignore
  return [
    '-name', `${vm.name ?? 'agentlab'},debug-threads=on`,
    '-machine', 'q35',
    '-accel', vm.accelerator,
    // KVM passes the host's CPU through; TCG emulates the most it can.
    '-cpu', vm.accelerator === 'kvm' ? 'host' : 'max',
    '-smp', String(vm.cores),
    '-m', String(vm.memoryMb),
    '-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none', '-no-reboot',
    '-serial', `file:${vm.consoleLog}`,
    '-kernel', vm.image.kernel,
    '-initrd', vm.image.initrd,
    '-append', vm.image.kernelCommandLine,
    '-drive', `id=${DISK_ID},file=${vm.overlay},format=qcow2,if=virtio,discard=unmap`,
    // The seed as a read-only virtio disk: cloud-init finds the cidata label with blkid, no CD-ROM needed.
    '-drive', `file=${vm.seed},format=raw,if=virtio,readonly=on`,
    '-netdev', vm.netdev ?? 'user,id=net0',
    '-device', `virtio-net-pci,netdev=net0,mac=${vm.mac}`,
    '-device', 'virtio-serial-pci',
    '-chardev', `socket,id=qga0,path=${vm.guestAgentSocket},server=on,wait=off`,
    '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
    // Entropy for the guest's early boot (TLS, machine-id), which otherwise waits on a quiet VM.
    '-device', 'virtio-rng-pci',
    // QMP on a socket: snapshots of a running disk; no -monitor, so nothing else listens.
    ...(vm.daemon ? ['-qmp', `unix:${vm.daemon.qmpSocket},server=on,wait=off`, '-daemonize', '-pidfile', vm.daemon.pidFile] : []),
  ];
}
