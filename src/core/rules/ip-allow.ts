// What the supervisor's IP firewall (the unit's IPAddressAllow=, beside IPAddressDeny=any) lets through
// beyond loopback: only what the config names. Never `any`: the process holds the Docker socket, and
// with `any` it could reach cloud metadata (169.254.169.254), the LAN and every port.

/** Never "the internet": this network, private, CGNAT, loopback, link-local, benchmarking, multicast, reserved. */
const NOT_PUBLIC_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '224.0.0.0/4',
  '240.0.0.0/4',
] as const;

const v4 = (ip: string): number | undefined => {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return parts.reduce((a, p) => a * 256 + p, 0);
};
const dotted = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
const rangeOf = (cidr: string): [number, number] => {
  const [ip, bits] = cidr.split('/');
  const start = v4(ip ?? '') ?? 0;
  return [start, start + 2 ** (32 - Number(bits)) - 1];
};

/** The IPv4 space outside NOT_PUBLIC_V4, as the fewest CIDR blocks. */
function publicV4(): string[] {
  const out: string[] = [];
  const blocked = NOT_PUBLIC_V4.map(rangeOf).sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [lo, hi] of [...blocked, [2 ** 32, 2 ** 32] as [number, number]]) {
    while (at < lo) {
      // The largest block aligned at `at` that ends before `lo`.
      let bits = 32;
      while (bits > 0 && at % 2 ** (33 - bits) === 0 && at + 2 ** (33 - bits) <= lo) bits--;
      out.push(`${dotted(at)}/${bits}`);
      at += 2 ** (32 - bits);
    }
    at = Math.max(at, hi + 1);
  }
  return out;
}

/** The internet: public IPv4 by blocks, and IPv6's global unicast (2000::/3: no ULA, link-local or multicast). */
export const PUBLIC: readonly string[] = [...publicV4(), '2000::/3'];

/** Whether an IPv4 address is public (outside every range of NOT_PUBLIC_V4); IPv6: inside 2000::/3. */
export function isPublic(ip: string): boolean {
  const n = v4(ip);
  if (n !== undefined) return !NOT_PUBLIC_V4.map(rangeOf).some(([lo, hi]) => n >= lo && n <= hi);
  return /^[23][0-9a-f]{0,3}:/i.test(ip);
}

/** Whether `cidrs` (a list as IPAddressAllow= takes it) covers the IPv4 address `ip`. */
export function coversV4(cidrs: readonly string[], ip: string): boolean {
  const n = v4(ip);
  if (n === undefined) return false;
  return cidrs.some((c) => {
    if (!/^[\d.]+\/\d{1,2}$/.test(c) && v4(c) === undefined) return false;
    const [lo, hi] = c.includes('/') ? rangeOf(c) : [v4(c) ?? -1, v4(c) ?? -1];
    return n >= lo && n <= hi;
  });
}

export interface WebhookTarget {
  name: string;
  /** The URL's host, or undefined when the URL is not known here (a credential). */
  host?: string;
  /** What the host resolved to now (an IP literal resolves to itself); empty when it did not resolve. */
  addresses: readonly string[];
}

/**
 * IPAddressAllow='s list beyond loopback (empty: none), and what to tell the operator. A scraper's
 * addresses (metrics.allowFrom) as given. A webhook at an IP address: that address. A webhook by
 * name: the public internet (a service's addresses change), never a private, link-local or
 * multicast range, plus the private addresses the name has now (a LAN host: re-run install.sh when
 * they change). A webhook whose URL is not known here: the public internet.
 */
export function ipAllow(i: { allowFrom: readonly string[]; webhooks: readonly WebhookTarget[] }): {
  allow: string[];
  notes: string[];
} {
  const allow = new Set<string>(i.allowFrom);
  const notes: string[] = [];
  let internet = false;
  for (const w of i.webhooks) {
    const literal = w.host !== undefined && w.addresses.length === 1 && w.addresses[0] === w.host;
    if (literal) {
      allow.add(w.host!);
      continue;
    }
    for (const a of w.addresses) if (!isPublic(a)) allow.add(a);
    const priv = w.addresses.filter((a) => !isPublic(a));
    if (priv.length)
      notes.push(`webhook ${w.name}: ${w.host ?? 'its host'} is ${priv.join(', ')} now, allowed as such`);
    if (w.addresses.length === 0 || w.addresses.some(isPublic)) internet = true;
    if (w.host !== undefined && w.addresses.length === 0)
      notes.push(`webhook ${w.name}: ${w.host} does not resolve now; only public addresses are allowed for it`);
  }
  if (internet) PUBLIC.forEach((c) => allow.add(c));
  return { allow: [...allow], notes };
}
