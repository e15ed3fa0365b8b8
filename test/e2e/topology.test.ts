/**
 * Three real daemons in one process behind emulated wide-area links (a and b in region x,
 * c in region y, 4 ms vs 300 ms RTT): /status shows each one's region, coordinate and
 * per-region bytes, and the topology sampler with no random share picks the near peer.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseTestbedArgs } from '../../src/cli/args.ts'
import { type Daemon, type NodeStatus, startDaemon } from '../../src/node/daemon.ts'
import { loadOrCreateIdentity } from '../../src/node/identity.ts'
import { runTestbed } from '../../src/testbed/testbed.ts'
import { wanEmulation } from '../../src/testbed/wan-emulation.ts'
import { loadWanLinksFlag, saveWanLinks, type WanLinks } from '../../src/testbed/wan-links.ts'
import { testDaemonConfig } from './daemon-config.ts'
import { until } from './until.ts'

const REGIONS = ['x', 'x', 'y']
const RTT = { 'x|x': 4, 'y|y': 4, 'x|y': 300 }

const config = (dir: string, index: number, linksFile: string, extra: string[] = []) =>
  testDaemonConfig(dir, index, {
    peerCount: 3,
    stepsPerRound: 5,
    extra: [
      '--hidden',
      '32',
      '--wan-links',
      linksFile,
      '--sampler',
      'topology',
      '--random-share',
      '0',
      ...extra,
    ],
  })

/** What `start --wan-links FILE` does: load the links file, wrap the daemon's connections in its emulation. */
async function startEmulated(args: ReturnType<typeof config>): Promise<Daemon> {
  const emulation = wanEmulation({ links: await loadWanLinksFlag('--wan-links', args.wanLinks!) })
  return startDaemon(args, { emulation })
}

describe('daemons behind emulated wide-area links', () => {
  let base: string
  let linksFile: string
  const daemons: Daemon[] = []

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'gl-topo-'))
    // Like the testbed: identities first, so the links file can place each peer in its region.
    const peers: Record<string, string> = {}
    for (let i = 0; i < REGIONS.length; i++) {
      await mkdir(join(base, `p${i}`))
      const { privateKey } = await loadOrCreateIdentity(join(base, `p${i}`))
      peers[peerIdFromPrivateKey(privateKey).toString()] = REGIONS[i]!
    }
    const links: WanLinks = { regions: { x: {}, y: {} }, rttMs: RTT, uplinkMbps: 50, peers }
    linksFile = join(base, 'links.json')
    await saveWanLinks(linksFile, links)
  })

  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.stop()))
    await rm(base, { recursive: true, force: true })
  })

  // The refusals first, while no daemon trains in this process and starves the event loop.
  it('the testbed refuses a bad --links file or --regions that do not fit it before starting any daemon', async () => {
    const cfg = (extra: string[]) =>
      parseTestbedArgs(['--duration', '1', '--keep-dir', join(base, 'tb'), ...extra])
    const print = () => {}
    await expect(runTestbed(cfg(['--links', join(base, 'missing.json')]), { print })).rejects.toMatchObject({
      name: 'UsageError',
      message: expect.stringMatching(/^--links/),
    })
    await expect(
      runTestbed(cfg(['--links', linksFile, '--regions', 'x:1,mars:1']), { print }),
    ).rejects.toMatchObject({
      name: 'UsageError',
      message: expect.stringMatching(/^--regions/),
    })
  })

  it('refuses an unreadable links file with a UsageError naming --wan-links', async () => {
    const bad = join(base, 'bad.json')
    await writeFile(bad, '{"regions": {}}')
    await expect(startEmulated(config(join(base, 'p3'), 0, bad))).rejects.toMatchObject({
      name: 'UsageError',
      message: expect.stringMatching(/--wan-links/),
    })
    await expect(
      startEmulated(config(join(base, 'p3'), 0, join(base, 'missing.json'))),
    ).rejects.toMatchObject({
      name: 'UsageError',
    })
  })

  it('report region, coordinate and per-region bytes; the topology sampler picks the near peer', async () => {
    daemons.push(await startEmulated(config(join(base, 'p0'), 0, linksFile, ['--http', '0'])))
    const boot = daemons[0]!.multiaddrs.find((a) => a.includes('127.0.0.1'))!
    daemons.push(await startEmulated(config(join(base, 'p1'), 1, linksFile, ['--bootstrap', boot])))
    daemons.push(await startEmulated(config(join(base, 'p2'), 2, linksFile, ['--bootstrap', boot])))
    const [a, b, c] = daemons as [Daemon, Daemon, Daemon]

    // a has measured both links (median RTTs), and everyone's coordinate has moved.
    await until(
      'a to measure b and c',
      () => Object.keys(a.status().topology.rttMs).length === 2,
      30_000,
    ).catch((err) => {
      throw new Error(
        `${err.message}: ${JSON.stringify({ topo: a.status().topology, conns: a.status().connectedPeers.length, view: a.status().viewSize, rejoins: daemons.map((d) => d.status().rejoins) })}`,
      )
    })
    await until(
      'coordinates to move',
      () => daemons.every((d) => d.status().topology.coordinateUpdates > 0),
      30_000,
    )
    // Several samples per link, so the minimum filter has seen a ping that did not queue.
    // Read both links from one snapshot: a link whose pings fail under load is forgotten and
    // measured again, so b and c need not both be known at every instant.
    let rtts: Record<string, number> = {}
    await until(
      'a to take 12 RTT samples and know both links',
      () => {
        const t = a.status().topology
        rtts = t.rttMs
        return t.pingsOk >= 12 && rtts[b.peerId] !== undefined && rtts[c.peerId] !== undefined
      },
      30_000,
    )
    // The emulation never delivers early (ping rounds to whole ms); the far link is far.
    expect(rtts[b.peerId]!).toBeGreaterThanOrEqual(RTT['x|x'] - 1)
    expect(rtts[c.peerId]!).toBeGreaterThanOrEqual(RTT['x|y'] - 1)
    expect(rtts[c.peerId]!).toBeGreaterThan(rtts[b.peerId]!)

    // a's sampler, on a's live view: with no random share, near picks weigh b 1/rtt^2 over c. On idle
    // links that is 5600:1, but three daemons training in one process on a loaded machine added
    // 200-1800 ms of event-loop delay to single pings (4 ms link), so ask only for a clear
    // majority (a uniform sampler gives 100 +- 7).
    // The view is live: under load a peer whose announcement came late drops out for a while and
    // comes back, so wait for a snapshot that holds both (this failed twice with only one).
    let view = a.view()
    await until(
      "a's view to hold b and c",
      () => {
        view = a.view()
        return view.length === 2
      },
      30_000,
    )
    expect(view.map((p) => p.peerId).sort()).toEqual([b.peerId, c.peerId].sort())
    const picks = new Map<string, number>()
    for (let i = 0; i < 200; i++) {
      const [p] = a.sampler.sample(view, 1)
      picks.set(p!.peerId, (picks.get(p!.peerId) ?? 0) + 1)
    }
    expect(picks.get(b.peerId) ?? 0).toBeGreaterThanOrEqual(140)
    // The learner skips peers with a push in flight, so c gets some pushes too; b gets most bytes.
    await until('a to send models to b', () => (a.status().wan?.bytesSentByRegion.x ?? 0) > 200_000)

    // Vivaldi's error starts at its cap, 1.5, and falls with good samples; one ping delayed by a
    // loaded loop can push it back to the cap for a while (this read 1.5 once in a CI run), so
    // wait for a moment below it rather than expect one at the instant of the read.
    await until("a's coordinate error to fall below its initial 1.5", () => a.status().coordinate.error < 1.5)

    const res = await fetch(`http://127.0.0.1:${a.httpPort}/status`)
    const s = (await res.json()) as NodeStatus
    expect(s.region).toBe('x')
    expect(s.sampler).toBe('topology')
    expect(s.coordinate.vec).toHaveLength(2)
    expect(s.coordinate.error).toBeGreaterThanOrEqual(0)
    expect(s.coordinate.error).toBeLessThanOrEqual(1.5)
    expect(s.wan?.bytesSentIntraRegion).toBeGreaterThan(0)
    expect(s.wan?.bytesSentInterRegion).toBeGreaterThan(0)
    expect(c.status().region).toBe('y')
    // c has no peer in its region: its pushes cross regions.
    expect(c.status().wan!.bytesSentInterRegion).toBeGreaterThan(c.status().wan!.bytesSentIntraRegion)
    // Stop them now: three daemons training in this process would starve the event loop of the tests below.
    await Promise.all(daemons.splice(0).map((d) => d.stop()))
  }, 180_000)
})
