/**
 * Applying `--churn` events during a run: kills by SIGKILL, restarts from the data dir and late
 * joiners, each started in the background through a live peer (the spec is parsed in churn.ts).
 */
import { once } from 'node:events'
import { join } from 'node:path'
import { type ChurnEvent, pickPeers } from './churn.ts'
import type { TestbedConfig } from './config.ts'
import { idlePeer, launch, loopbackOf, type Peer, type SpawnExtras } from './spawn.ts'

/** What applying an event needs from the run. */
export interface ChurnContext {
  cfg: TestbedConfig
  extras: SpawnExtras
  peers: Peer[]
  starting: Set<Promise<void>>
  print: (line: string) => void
  base: string
  /** Set once the run ends: a restart or join cut short by the stop is not a failure to report. */
  stopping?: boolean
}

/** A live peer's loopback multiaddr to bootstrap through (peer 0 may be dead). */
function liveBootstrap(peers: readonly Peer[]): string | undefined {
  for (const p of peers) {
    const a = p.exited ? undefined : loopbackOf(p)
    if (a !== undefined) return a
  }
  return undefined
}

/**
 * Applies one --churn event: kills (SIGKILL, waited for), or starts restarts / late joiners in
 * the background through any live peer; late joiners take indices from `nextIndex`. Returns
 * how many joiners it started.
 */
export async function applyChurn(
  ctx: ChurnContext,
  e: ChurnEvent,
  eventIndex: number,
  nextIndex: number,
): Promise<number> {
  const { cfg, peers, print } = ctx
  const launchIn = (peer: Peer, what: 'restart' | 'join') => {
    const boot = liveBootstrap(peers)
    const p = launch(cfg, peer, ctx.extras, boot)
      .then(() => print(`testbed: peer ${peer.index} ${what}ed (${peer.peerId})`))
      .catch((err: Error) => {
        if (ctx.stopping !== true) print(`testbed: peer ${peer.index} failed to ${what}: ${err.message}`)
      })
      .finally(() => ctx.starting.delete(p))
    ctx.starting.add(p)
  }
  if (e.action === 'kill') {
    const running = peers.filter((p) => !p.exited).map((p) => p.index)
    const victims = pickPeers(running, e.amount, cfg.seed, eventIndex)
    print(`testbed: churn: killing peers ${victims.join(' ')} (SIGKILL)`)
    await Promise.all(
      victims.map((i) => {
        const peer = peers.find((p) => p.index === i)!
        const exited = once(peer.proc, 'exit')
        peer.killing = true
        peer.proc.kill('SIGKILL')
        return exited
      }),
    )
    return 0
  }
  if (e.action === 'restart') {
    // Down and not being restarted already (a restart's process runs before it is ready).
    const down = (p: Peer) =>
      p.exited && p.proc !== undefined && (p.proc.exitCode !== null || p.proc.signalCode !== null)
    const dead = peers.filter(down).map((p) => p.index)
    const chosen = pickPeers(dead, e.amount, cfg.seed, eventIndex)
    print(`testbed: churn: restarting peers ${chosen.length > 0 ? chosen.join(' ') : '(none dead)'}`)
    for (const i of chosen) launchIn(peers.find((p) => p.index === i)!, 'restart')
    return 0
  }
  print(`testbed: churn: ${e.amount} late joiner(s) starting`)
  for (let k = 0; k < e.amount; k++) {
    const index = nextIndex + k
    const peer = idlePeer(index, join(ctx.base, `peer-${index}`))
    launchIn(peer, 'join')
    // Polled (and in the results) once it has a process: until then `exited` keeps it idle.
    peers.push(peer)
  }
  return e.amount
}
