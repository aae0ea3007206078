// IPv4 arithmetic for the sandbox subnet: its gateway, its addresses, membership.
export function ipv4ToInt(address: string): number {
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/** The first host address of a.b.c.d/len: the gateway on a sandbox bridge. */
export const firstAddress = (subnet: string): string => intToIpv4(ipv4ToInt(subnet.split('/')[0]!) + 1);

/** Whether an IPv4 address is inside a.b.c.d/len. */
export function inSubnet(address: string, subnet: string): boolean {
  const [base, bits] = subnet.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4ToInt(address) / size) === Math.floor(ipv4ToInt(base) / size);
}
