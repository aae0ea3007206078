// The QEMU guest agent: its error ladder (qemu-server QemuServer/Agent.pm agent_available) and a booting guest's
// interfaces: nothing, then eth0 with only its link-local address, then its DHCP lease, on net0's own MAC.
import { setTimeout as sleep } from 'node:timers/promises';
import { NET_FORMAT, parsePropertyString } from '../../common/property-string';
import { Access, type Route, type RouteContext } from './access';
import { SimHttpError } from './errors';
import type { SimState, SimVm } from './state';

/** API2/Qemu/Agent.pm's command list: one endpoint per command, plus the generic POST agent. */
const COMMANDS = [
  'exec',
  'exec-status',
  'file-read',
  'file-write',
  'fsfreeze-freeze',
  'fsfreeze-status',
  'fsfreeze-thaw',
  'fstrim',
  'get-fsinfo',
  'get-host-name',
  'get-memory-block-info',
  'get-memory-blocks',
  'get-osinfo',
  'get-time',
  'get-timezone',
  'get-users',
  'get-vcpus',
  'info',
  'network-get-interfaces',
  'ping',
  'set-user-password',
  'shutdown',
  'suspend-disk',
  'suspend-hybrid',
  'suspend-ram',
];

/** fe80:: from a MAC (modified EUI-64), as the guest's kernel derives it. */
export function linkLocalOf(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  b[0] = b[0]! ^ 0x02;
  const words = [(b[0] << 8) | b[1]!, (b[2]! << 8) | 0xff, 0xfe00 | b[3]!, (b[4]! << 8) | b[5]!];
  return `fe80::${words.map((w) => w.toString(16)).join(':')}`;
}

const statistics = (seed: number) => ({
  'rx-bytes': 1_000_000 + seed,
  'rx-dropped': 0,
  'rx-errs': 0,
  'rx-packets': 8_000 + seed,
  'tx-bytes': 400_000 + seed,
  'tx-dropped': 0,
  'tx-errs': 0,
  'tx-packets': 3_000 + seed,
});

export function createAgentRoutes(state: SimState): Route[] {
  const access = new Access(state);

  /** agent_available: configured, running, and answering guest-ping (which takes 3 s to give up). */
  async function availableAgent({ node, vmid }: RouteContext): Promise<SimVm> {
    const vm = access.vm(node, vmid);
    if (vm.config.agent === undefined) throw new SimHttpError(500, 'No QEMU guest agent configured');
    if (vm.status !== 'running') throw new SimHttpError(500, `VM ${vmid} is not running`);
    const booted = Date.now() - (vm.startedAt ?? 0) >= state.latency.bootMs;
    const enabled = parsePropertyString(
      String(vm.config.agent),
      { enabled: { type: 'boolean', default_key: 1 } },
      {
        lenient: true,
      },
    ).enabled;
    if (!booted || enabled !== '1' || vm.qmpstatus === 'paused') {
      await sleep(state.latency.agentPingTimeoutMs);
      throw new SimHttpError(500, 'QEMU guest agent is not running');
    }
    return vm;
  }

  /** eth0's address: on vmbr1 as in production; on 127/8 when the guest is a host process (GuestRunners). */
  const eth0Ipv4 = (vmid: number) =>
    `${state.guestNet === 'loopback' ? '127.77' : '10.77'}.${(vmid >> 8) & 255}.${vmid & 255}`;

  function interfaces(vm: SimVm) {
    const mac = String(parsePropertyString(String(vm.config.net0 ?? 'virtio'), NET_FORMAT).macaddr ?? '').toLowerCase();
    const leased = Date.now() - vm.startedAt! >= state.latency.bootMs + state.latency.linkLocalMs;
    const v4 = (address: string, prefix: number) => ({ 'ip-address': address, 'ip-address-type': 'ipv4', prefix });
    const v6 = (address: string, prefix: number) => ({ 'ip-address': address, 'ip-address-type': 'ipv6', prefix });
    return [
      {
        name: 'lo',
        'hardware-address': '00:00:00:00:00:00',
        'ip-addresses': [v4('127.0.0.1', 8), v6('::1', 128)],
        statistics: statistics(0),
      },
      ...state.extraGuestInterfaces.map((nic, i) => ({
        name: nic.name,
        'hardware-address': nic.mac.toLowerCase(),
        'ip-addresses': [v4(nic.ipv4, nic.prefix)],
        statistics: statistics(i + 1),
      })),
      ...(mac
        ? [
            {
              name: 'eth0',
              'hardware-address': mac,
              'ip-addresses': [
                ...(leased ? [v4(eth0Ipv4(vm.vmid), state.guestNet === 'loopback' ? 8 : 16)] : []),
                v6(linkLocalOf(mac), 64),
              ],
              statistics: statistics(vm.vmid),
            },
          ]
        : []),
    ];
  }

  function run(command: string, vm: SimVm): unknown {
    switch (command) {
      case 'network-get-interfaces':
        return interfaces(vm);
      case 'get-host-name':
        return { 'host-name': String(vm.config.name ?? `VM${vm.vmid}`) };
      case 'get-osinfo':
        return {
          id: 'debian',
          name: 'Debian GNU/Linux',
          'pretty-name': 'Debian GNU/Linux 12 (bookworm)',
          'version-id': '12',
          version: '12 (bookworm)',
          'kernel-release': '6.1.0-28-cloud-amd64',
          'kernel-version': '#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)',
          machine: 'x86_64',
        };
      case 'get-time':
        return Date.now() * 1_000_000;
      case 'info':
        return { version: '7.2.15', supported_commands: COMMANDS.map((name) => ({ name, enabled: true })) };
      default:
        return {};
    }
  }

  const command = (name: string) => async (ctx: RouteContext) => ({ result: run(name, await availableAgent(ctx)) });

  return [
    {
      method: 'GET',
      path: '/nodes/{node}/qemu/{vmid}/agent',
      handler: () => COMMANDS.map((name) => ({ name })),
    },
    {
      method: 'POST',
      path: '/nodes/{node}/qemu/{vmid}/agent',
      handler: (ctx) => command(ctx.params.command!)(ctx),
    },
    { method: 'POST', path: '/nodes/{node}/qemu/{vmid}/agent/ping', handler: command('ping') },
    {
      method: 'GET',
      path: '/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces',
      handler: command('network-get-interfaces'),
    },
  ];
}
