/**
 * Delta frames between two real daemons on 127.0.0.1 (TCP, Noise, Yamux): they push
 * `delta+partial:0.25+int2` frames, each applies the other's differences to its reference and
 * merges, and after one restarts (its references gone) the other's reference for it is reset
 * (by a failed push, or by a DeltaBaseError refusal) and the exchange goes on.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Daemon, startDaemon } from '../../src/node/daemon.ts'
import { testDaemonConfig } from './daemon-config.ts'
import { until } from './until.ts'

const CODEC = 'delta+partial:0.25+int2'
const config = (dir: string, index: number, extra: string[] = []) =>
  testDaemonConfig(dir, index, { peerCount: 2, stepsPerRound: 5, extra: ['--codec', CODEC, ...extra] })

describe('daemons pushing delta frames', () => {
  let base: string
  const daemons: Daemon[] = []

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'gl-delta-'))
  })

  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.stop()))
    await rm(base, { recursive: true, force: true })
  })

  it('exchange and merge differences, and start over when the receiver lost its reference', async () => {
    const a = await startDaemon(config(join(base, 'a'), 0))
    daemons.push(a)
    const boot = a.multiaddrs.find((m) => m.includes('127.0.0.1'))!
    let b = await startDaemon(config(join(base, 'b'), 1, ['--bootstrap', boot]))
    daemons.push(b)
    const received = (d: Daemon): number => d.status().receivedByCodec['delta+partial+int2']?.models ?? 0
    await until('both daemons to merge 3 delta frames', () =>
      [a, b].every((d) => received(d) >= 3 && d.status().merges > 0),
    )
    // A delta codec keeps sticky partners (4 by default): here the only other peer.
    expect(a.status().partners).toEqual([b.peerId])
    for (const d of [a, b]) {
      const s = d.status()
      // Completed pushes: the last may still await its acknowledgement.
      expect(s.sentByCodec[CODEC]?.models).toBeGreaterThanOrEqual(2)
      // A quarter of the units in 2 bits: far below the whole model in float32.
      // (accepted frames and their bytes: sentByCodec's bytes include failed pushes)
      const got = s.receivedByCodec['delta+partial+int2']!
      expect(got.bytes / got.models).toBeLessThan(407_000 / 40)
      // Quiet inputs (MNIST's border pixels, --quiet-inputs 0.001 by default) left out: a frame
      // with every first-layer row is 5671 B plus the base and coordinate fields.
      expect(got.bytes / got.models).toBeLessThan(5_000)
      expect(s.rejected.DeltaBaseError ?? 0).toBe(0)
    }

    // b restarts with its data dir (same peer id), its references gone.
    await b.stop()
    daemons.splice(daemons.indexOf(b), 1)
    const sentBefore = a.status().sentByCodec[CODEC]!.models
    b = await startDaemon(config(join(base, 'b'), 1, ['--bootstrap', boot]))
    daemons.push(b)
    await until('b to merge delta frames again', () => received(b) >= 2 && b.status().merges > 0)
    expect(a.status().sentByCodec[CODEC]!.models).toBeGreaterThan(sentBefore)
    // a's reference for b was reset one way or the other: a push failed while b was down, or b
    // refused frames against the reference it lost (not a penalty: an 'ignore' verdict). A sender
    // keeps its reference through one failure (wire/delta.ts), so at most two are refused.
    const refused = b.status().rejected.DeltaBaseError ?? 0
    expect(refused).toBeLessThanOrEqual(2)
    expect(refused + a.status().pushesFailed).toBeGreaterThanOrEqual(1)
  }, 120_000)
})
