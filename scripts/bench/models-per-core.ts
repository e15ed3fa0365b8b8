/**
 * What do models that share a core cost each other? Run it on one core (`taskset -c 0`); three
 * arms, in rotation for `--rounds` rounds so a machine that speeds up or slows down weighs on all:
 *  - one: one default model (its own trainer over a quarter of MNIST's training split, decoded a
 *    batch at a time as a daemon's) trains for `--seconds`;
 *  - turns: `--models N` such models in this process take turns of `--chunk` steps, as the
 *    daemons of a `host` process do;
 *  - processes: N child processes train one model each at once, left to the kernel's scheduler,
 *    as a process per peer is.
 * Prints each arm's summed steps/s and steps per CPU-second (all threads, children included),
 * each round and pooled, and each against `one` of the same rounds.
 *
 *   taskset -c 0 npm run bench:models-per-core -- [--models 2] [--seconds 8] [--rounds 3] [--chunk 30]
 */
import '../../src/polyfill.ts'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { loadDataset } from '../../src/data/registry.ts'
import { initBackend } from '../../src/model/backend.ts'
import type * as tf from '../../src/model/tf.ts'
import { DEFAULT_BATCH_SIZE, LocalTrainer } from '../../src/model/train.ts'
import { buildModel, DEFAULT_ARCH_KIND, DEFAULT_LEARNING_RATE, defaultArch } from '../../src/model/zoo.ts'
import { benchFlags, parseBenchArgs } from './flags.ts'

const NAME = 'bench:models-per-core'
const args = parseBenchArgs(NAME, import.meta.url, {
  models: { type: 'string' },
  seconds: { type: 'string' },
  rounds: { type: 'string' },
  chunk: { type: 'string' },
  /** Internal: run as one child trainer with this seed. */
  child: { type: 'string' },
})
const flags = benchFlags(NAME)
const MODELS = flags.int('models', args.models, 2)
const SECONDS = flags.int('seconds', args.seconds, 8)
const ROUNDS = flags.int('rounds', args.rounds, 3)
const CHUNK = flags.int('chunk', args.chunk, 30)
/** Steps before timing: the first steps compile kernels and allocate the optimizer's slots. */
const WARMUP_STEPS = 20
/** Peers the training split is shared by: each model trains on one share, as a daemon does. */
const SHARES = 4

interface Trainee {
  model: tf.LayersModel
  trainer: LocalTrainer
}

interface Rate {
  steps: number
  seconds: number
  cpuSeconds: number
}

async function trainees(n: number, firstSeed: number): Promise<Trainee[]> {
  await initBackend()
  const dataset = loadDataset('mnist')
  const out: Trainee[] = []
  for (let k = 0; k < n; k++) {
    const seed = firstSeed + k
    const share = Array.from(
      { length: Math.floor(dataset.trainCount / SHARES) },
      (_, i) => i * SHARES + (seed % SHARES),
    )
    const t = {
      model: buildModel(defaultArch(DEFAULT_ARCH_KIND), { seed, learningRate: DEFAULT_LEARNING_RATE }),
      trainer: new LocalTrainer({ data: dataset.trainShare(share), seed }),
    }
    await t.trainer.trainSteps(t.model, { steps: WARMUP_STEPS, batchSize: DEFAULT_BATCH_SIZE })
    out.push(t)
  }
  return out
}

/** `ts` take turns of CHUNK steps for SECONDS; this process's CPU over the same time. */
async function turns(ts: Trainee[]): Promise<Rate> {
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  let steps = 0
  while (performance.now() - t0 < SECONDS * 1000) {
    for (const t of ts) {
      await t.trainer.trainSteps(t.model, { steps: CHUNK, batchSize: DEFAULT_BATCH_SIZE, yieldEveryMs: 50 })
      steps += CHUNK
    }
  }
  const cpu = process.cpuUsage(cpu0)
  return { steps, seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 }
}

/** One child trainer: loads, warms up, then waits for "go" on stdin, trains and prints its Rate. */
async function child(seed: number): Promise<void> {
  const [t] = await trainees(1, seed)
  console.log('ready')
  process.stdin.once('data', async () => {
    const rate = await turns([t!])
    // A pipe's write is asynchronous: exit once it is flushed.
    process.stdout.write(`${JSON.stringify(rate)}\n`, () => process.exit(0))
  })
}

/** MODELS child processes: each ready first, then all train at once; their summed Rate. */
async function processes(): Promise<Rate> {
  const self = fileURLToPath(import.meta.url)
  const kids = Array.from({ length: MODELS }, (_, k) => {
    const proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        self,
        '--child',
        String(k + 1),
        '--seconds',
        String(SECONDS),
        '--chunk',
        String(CHUNK),
      ],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    )
    let out = ''
    const ready = new Promise<void>((resolve, reject) => {
      proc.stdout!.on('data', (b: Buffer) => {
        out += b.toString()
        if (out.includes('ready')) resolve()
      })
      proc.once('exit', (code) =>
        code === 0 ? undefined : reject(new Error(`trainer exited with ${code}: ${out}`)),
      )
    })
    const done = new Promise<Rate>((resolve, reject) =>
      proc.once('exit', (code) => {
        const line = out.trim().split('\n').at(-1) ?? ''
        if (code !== 0 || !line.startsWith('{')) reject(new Error(`trainer exited with ${code}: ${out}`))
        else resolve(JSON.parse(line) as Rate)
      }),
    )
    return { proc, ready, done }
  })
  await Promise.all(kids.map((k) => k.ready))
  for (const k of kids) k.proc.stdin!.write('go\n')
  const rates = await Promise.all(kids.map((k) => k.done))
  return {
    steps: rates.reduce((s, r) => s + r.steps, 0),
    seconds: Math.max(...rates.map((r) => r.seconds)),
    cpuSeconds: rates.reduce((s, r) => s + r.cpuSeconds, 0),
  }
}

const perS = (r: Rate) => r.steps / r.seconds
const perCpuS = (r: Rate) => r.steps / r.cpuSeconds
const sum = (rs: Rate[]): Rate => ({
  steps: rs.reduce((s, r) => s + r.steps, 0),
  seconds: rs.reduce((s, r) => s + r.seconds, 0),
  cpuSeconds: rs.reduce((s, r) => s + r.cpuSeconds, 0),
})

async function main(): Promise<void> {
  console.log(`${NAME}: ${MODELS} models, ${SECONDS} s an arm, ${ROUNDS} rounds, turns of ${CHUNK} steps`)
  const ts = await trainees(MODELS, 1)
  const arms = ['one', 'turns', 'processes'] as const
  const rates = new Map<string, Rate[]>(arms.map((a) => [a, []]))
  for (let round = 0; round < ROUNDS; round++) {
    // Rotated: each arm comes first in some round.
    for (let k = 0; k < arms.length; k++) {
      const arm = arms[(k + round) % arms.length]!
      const r =
        arm === 'one' ? await turns(ts.slice(0, 1)) : arm === 'turns' ? await turns(ts) : await processes()
      rates.get(arm)!.push(r)
      console.log(
        `round ${round + 1} ${arm.padEnd(9)} ${perS(r).toFixed(0).padStart(5)} steps/s  ${perCpuS(r).toFixed(0).padStart(5)} per CPU-second`,
      )
    }
  }
  const one = sum(rates.get('one')!)
  console.log('\npooled over the rounds, against one model alone:')
  for (const arm of arms) {
    const r = sum(rates.get(arm)!)
    console.log(
      `${arm.padEnd(9)} ${perS(r).toFixed(0).padStart(5)} steps/s (${(perS(r) / perS(one)).toFixed(3)})  ` +
        `${perCpuS(r).toFixed(0).padStart(5)} per CPU-second (${(perCpuS(r) / perCpuS(one)).toFixed(3)})`,
    )
  }
  for (const t of ts) t.model.dispose()
}

if (args.child !== undefined) await child(flags.int('child', args.child, 0))
else await main()
