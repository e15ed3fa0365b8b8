/**
 * A small internet in Linux network namespaces, for NAT tests: one switch (a bridge) joining a
 * public host and two home routers; behind each router one host on its own private subnet. The
 * routers masquerade (iptables MASQUERADE) and forward nothing inbound that the host did not
 * start: no port forward. Public addresses are 11.0.0.0/24 (outside the ranges libp2p treats as
 * private, so AutoNAT and DCUtR act as they would on the internet); no namespace has a link out of
 * the test, so nothing reaches the real internet. Needs root, iproute2 and iptables.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The hosts of the topology and their addresses. */
export const NAT_NET = {
  /** The public host (a relay): reachable by everyone. */
  public: { ns: 'p', ip: '11.0.0.1' },
  /** Hosts behind their own NAT: `ip` is private, `wanIp` the router's public address they leave by. */
  natted: [
    { ns: 'a', router: 'ra', ip: '192.168.1.2', gateway: '192.168.1.1', wanIp: '11.0.0.2' },
    { ns: 'b', router: 'rb', ip: '192.168.2.2', gateway: '192.168.2.1', wanIp: '11.0.0.3' },
  ],
} as const

/** Why network namespaces cannot be built here (not root, no `ip`, no `iptables`, no netns), or undefined. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux, not ${process.platform}`
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  for (const [cmd, args] of [
    ['ip', ['-V']],
    ['iptables', ['-V']],
  ] as const) {
    try {
      await run(cmd, [...args])
    } catch {
      return `\`${cmd}\` is not installed (iproute2 and iptables; .ci/run installs them)`
    }
  }
  const probe = `glprobe-${randomBytes(3).toString('hex')}`
  try {
    await run('ip', ['netns', 'add', probe])
    await run('ip', ['netns', 'exec', probe, 'iptables', '-t', 'nat', '-L', '-n'])
  } catch (err) {
    return `cannot create a network namespace with NAT: ${(err as Error).message.split('\n')[0]}`
  } finally {
    await run('ip', ['netns', 'del', probe]).catch(() => {})
  }
  return undefined
}

/** A built topology: namespace names by host, and teardown. */
export interface NatInternet {
  /** The namespace of host `name` (`p`, `a`, `b`, `ra`, `rb`, `sw`). */
  ns(name: string): string
  /** Kills whatever still runs in the namespaces, then deletes them. Safe to call twice. */
  destroy(): Promise<void>
}

const ip = (...args: string[]) => run('ip', args)

/** Builds the topology under a fresh, unique name prefix. On failure, what was built is removed. */
export async function buildNatInternet(): Promise<NatInternet> {
  const prefix = `gln-${randomBytes(3).toString('hex')}`
  const names = ['sw', NAT_NET.public.ns, ...NAT_NET.natted.flatMap((h) => [h.router, h.ns])]
  const ns = (name: string) => `${prefix}-${name}`
  const created: string[] = []
  const net: NatInternet = {
    ns,
    destroy: async () => {
      for (const n of created.splice(0)) {
        // A daemon left running would keep the namespace alive after `ip netns del`.
        const { stdout } = await ip('netns', 'pids', n).catch(() => ({ stdout: '' }))
        for (const pid of stdout.split(/\s+/).filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL')
          } catch {}
        }
        await ip('netns', 'del', n).catch(() => {})
      }
    },
  }
  try {
    for (const n of names) {
      await ip('netns', 'add', ns(n))
      created.push(ns(n))
      await ip('-n', ns(n), 'link', 'set', 'lo', 'up')
    }
    // The switch: a bridge every public interface plugs into.
    await ip('-n', ns('sw'), 'link', 'add', 'br0', 'type', 'bridge')
    await ip('-n', ns('sw'), 'link', 'set', 'br0', 'up')
    const plug = async (host: string, addr: string) => {
      await ip(
        'link',
        'add',
        'e0',
        'netns',
        ns(host),
        'type',
        'veth',
        'peer',
        'name',
        host,
        'netns',
        ns('sw'),
      )
      await ip('-n', ns('sw'), 'link', 'set', host, 'master', 'br0')
      await ip('-n', ns('sw'), 'link', 'set', host, 'up')
      await ip('-n', ns(host), 'addr', 'add', `${addr}/24`, 'dev', 'e0')
      await ip('-n', ns(host), 'link', 'set', 'e0', 'up')
    }
    await plug(NAT_NET.public.ns, NAT_NET.public.ip)
    for (const h of NAT_NET.natted) {
      const r = ns(h.router)
      await plug(h.router, h.wanIp)
      // The home link: router e1 <-> host e0.
      await ip('link', 'add', 'e1', 'netns', r, 'type', 'veth', 'peer', 'name', 'e0', 'netns', ns(h.ns))
      await ip('-n', r, 'addr', 'add', `${h.gateway}/24`, 'dev', 'e1')
      await ip('-n', r, 'link', 'set', 'e1', 'up')
      await ip('-n', ns(h.ns), 'addr', 'add', `${h.ip}/24`, 'dev', 'e0')
      await ip('-n', ns(h.ns), 'link', 'set', 'e0', 'up')
      await ip('-n', ns(h.ns), 'route', 'add', 'default', 'via', h.gateway)
      const exec = (...args: string[]) => run('ip', ['netns', 'exec', r, ...args])
      await exec('sysctl', '-qw', 'net.ipv4.ip_forward=1')
      await exec('iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'e0', '-j', 'MASQUERADE')
      // Inbound: only replies to what the host started. No port forward.
      await exec(
        'iptables',
        '-A',
        'FORWARD',
        '-i',
        'e0',
        '-o',
        'e1',
        '-m',
        'conntrack',
        '--ctstate',
        'ESTABLISHED,RELATED',
        '-j',
        'ACCEPT',
      )
      await exec('iptables', '-A', 'FORWARD', '-i', 'e0', '-o', 'e1', '-j', 'DROP')
    }
  } catch (err) {
    await net.destroy()
    throw err
  }
  return net
}
