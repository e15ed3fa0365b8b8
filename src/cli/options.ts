/**
 * The flags of each command, defined once: the parser's configuration and the `--help` text are
 * both generated from these tables, so a flag cannot be parsed without being documented.
 */
import type { ParseArgsConfig } from 'node:util'
import { DEFAULT_MAX_CONCURRENT_INBOUND } from '../gossip/constants.ts'
import { OPTIONAL_DEFENCES } from '../gossip/defences/index.ts'
import { DEFAULT_HUNGRY_BOOST, TOPOLOGY_SAMPLER_DEFAULTS } from '../gossip/sampling/index.ts'
import { LEARN_DEFAULTS, NODE_DEFAULTS } from '../node/config.ts'

/** One flag: its parser type, its value placeholder, its default as shown, and one line of help. */
export interface FlagSpec {
  name: string
  type: 'string' | 'boolean'
  multiple?: boolean
  /** Placeholder for the value in help (`N`, `FILE`); booleans have none. */
  value?: string
  /** The default as a person should read it; absent: none / off. */
  default?: string
  help: string
}

const d = LEARN_DEFAULTS

/** Flags of the learning task, shared by `start` and `testbed` (the testbed passes them to every peer). */
export const LEARN_FLAGS: readonly FlagSpec[] = [
  {
    name: 'dataset',
    type: 'string',
    value: 'SPEC',
    default: d.dataset,
    help: 'mnist | fashion-mnist | idx:TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS | csv:TRAIN,TEST',
  },
  { name: 'model', type: 'string', value: 'mlp|cnn', default: d.model, help: 'network architecture' },
  { name: 'hidden', type: 'string', value: 'N', default: '128 (mlp), 64 (cnn)', help: 'hidden units' },
  {
    name: 'partition',
    type: 'string',
    value: 'SPEC',
    default: d.partition,
    help: 'how the training set is split: iid | dirichlet:A | shards:K',
  },
  {
    name: 'seed',
    type: 'string',
    value: 'S',
    default: String(d.seed),
    help: 'partition seed (one per network)',
  },
  { name: 'init-seed', type: 'string', value: 'S', help: 'shared initialisation seed (default: per peer)' },
  {
    name: 'merge',
    type: 'string',
    value: 'PIPELINE|STEP,...',
    default: d.merge,
    help: 'robust | align+robust | plain | align | varcorr | align+varcorr, or steps in order',
  },
  {
    name: 'sampler',
    type: 'string',
    value: 'uniform|topology',
    default: d.sampler,
    help: 'push target choice',
  },
  {
    name: 'random-share',
    type: 'string',
    value: 'R',
    default: String(TOPOLOGY_SAMPLER_DEFAULTS.randomShare),
    help: 'topology sampler: share of uniform picks',
  },
  {
    name: 'partners',
    type: 'string',
    value: 'N',
    help: 'push only to N sticky partners, replaced when gone (default: 4 with a delta+ codec, else any peer)',
  },
  {
    name: 'hungry-boost',
    type: 'string',
    value: 'B',
    default: String(DEFAULT_HUNGRY_BOOST),
    help: 'weight of a peer announcing it has no model yet in the first pick of a push round (others weigh 1; 1: off)',
  },
  {
    name: 'codec',
    type: 'string',
    value: 'SPEC',
    default: d.codec,
    help: 'codec of pushes: raw-f32 | f16 | int8 | int4 (int4:ef: error feedback) | int2 | topk:F | partial:F, or both as partial:F+int4; delta+SPEC: differences against a reference per peer (delta+partial:0.25+int2)',
  },
  {
    name: 'quiet-inputs',
    type: 'string',
    value: 'SHARE|off',
    default: String(d.quietInputs),
    help: 'partial codecs leave out first-layer weights of inputs non-zero in at most SHARE of the local samples',
  },
  {
    name: 'max-upload',
    type: 'string',
    value: 'RATE',
    help: 'upload budget for model pushes, e.g. 1mbit, 200kbit (default: unlimited)',
  },
  {
    name: 'max-inbound',
    type: 'string',
    value: 'N',
    default: String(DEFAULT_MAX_CONCURRENT_INBOUND),
    help: 'inbound model transfers at once (the last kept for known-good peers); each may buffer one model, and across a slow link one lasts seconds',
  },
  {
    name: 'steps-per-round',
    type: 'string',
    value: 'K',
    default: String(d.stepsPerRound),
    help: 'local steps between pushes',
  },
  {
    name: 'round-ms',
    type: 'string',
    value: 'MS',
    default: String(d.roundMs),
    help: 'least time between pushes: a faster device trains more steps per round instead of pushing more often (0: off)',
  },
  {
    name: 'fanout',
    type: 'string',
    value: 'F',
    default: String(d.fanout),
    help: 'peers pushed to per round',
  },
  {
    name: 'eval-size',
    type: 'string',
    value: 'N',
    default: String(d.evalSize),
    help: 'test samples to evaluate on',
  },
  {
    name: 'eval-share',
    type: 'string',
    value: 'S',
    default: String(d.evalShare),
    help: 'evaluate only while evaluating has taken at most this share of the training time (a capped device trains little, so it evaluates rarely: raise it for a finer accuracy curve)',
  },
  { name: 'no-gossip', type: 'boolean', help: 'train alone (the baseline)' },
  {
    name: 'defences',
    type: 'string',
    value: 'on|off',
    default: 'on',
    help: 'defences against hostile peers; off also makes the default --merge varcorr',
  },
  {
    name: 'no-defence',
    type: 'string',
    multiple: true,
    value: 'NAME',
    help: `switch one defence off, to measure its cost (repeatable): ${OPTIONAL_DEFENCES.join(' | ')}`,
  },
]

export const START_FLAGS: readonly FlagSpec[] = [
  {
    name: 'listen',
    type: 'string',
    multiple: true,
    value: 'MULTIADDR',
    default: NODE_DEFAULTS.listen.join(' '),
    help: 'where to listen (repeatable); port 0 reuses the port kept in the data dir',
  },
  {
    name: 'announce',
    type: 'string',
    multiple: true,
    value: 'MULTIADDR',
    help: 'public address to announce, e.g. behind a port forward (repeatable)',
  },
  {
    name: 'bootstrap',
    type: 'string',
    multiple: true,
    value: 'MULTIADDR',
    help: 'a peer to join through, ending in /p2p/<id> (repeatable)',
  },
  {
    name: 'relay',
    type: 'boolean',
    help: 'relay for peers behind NAT (circuit relay v2; run it on a reachable host)',
  },
  { name: 'upnp', type: 'boolean', help: 'ask the router to forward our port (UPnP)' },
  {
    name: 'data-dir',
    type: 'string',
    value: 'DIR',
    default: './.gossip-learn/node',
    help: 'identity, checkpoint, lock',
  },
  ...LEARN_FLAGS,
  {
    name: 'peer-index',
    type: 'string',
    value: 'I',
    default: 'from the peer id',
    help: 'which share of the partition',
  },
  {
    name: 'peer-count',
    type: 'string',
    value: 'N',
    default: String(NODE_DEFAULTS.peerCount),
    help: 'shares the partition is split into',
  },
  { name: 'batch-size', type: 'string', value: 'B', default: String(d.batchSize), help: 'minibatch size' },
  { name: 'lr', type: 'string', value: 'LR', default: String(d.learningRate), help: 'Adam learning rate' },
  { name: 'http', type: 'string', value: 'PORT', help: 'serve /status, /metrics and the dashboard' },
  { name: 'http-host', type: 'string', value: 'HOST', default: NODE_DEFAULTS.httpHost, help: 'HTTP address' },
  {
    name: 'checkpoint-interval',
    type: 'string',
    value: 'SECONDS',
    default: String(NODE_DEFAULTS.checkpointIntervalMs / 1000),
    help: 'checkpoint period (also on shutdown)',
  },
  {
    name: 'status-interval',
    type: 'string',
    value: 'SECONDS',
    default: String(NODE_DEFAULTS.statusIntervalMs / 1000),
    help: 'status line period (0: never)',
  },
  {
    name: 'train-rate',
    type: 'string',
    value: 'STEPS_PER_S',
    help: 'cap on training steps per second (a slow device; default: uncapped)',
  },
  { name: 'json-status', type: 'boolean', help: 'print a JSON ready line (used by the testbed)' },
  {
    name: 'stop-on-stdin-close',
    type: 'boolean',
    help: 'stop when stdin closes, as it does when the process that started this one dies (used by the testbed)',
  },
  {
    name: 'wan-links',
    type: 'string',
    value: 'FILE',
    help: 'testbed facility: emulate the links file on every connection',
  },
]

export const TESTBED_FLAGS: readonly FlagSpec[] = [
  { name: 'peers', type: 'string', value: 'N', default: '8', help: 'daemons on 127.0.0.1' },
  {
    name: 'peers-per-process',
    type: 'string',
    value: 'N',
    default: '1',
    help: 'complete daemons per process (no --churn above 1)',
  },
  { name: 'duration', type: 'string', value: 'SECONDS', default: '120', help: 'run time once all are up' },
  { name: 'target-accuracy', type: 'string', value: 'A', help: 'stop once every peer reaches A' },
  ...LEARN_FLAGS,
  { name: 'json', type: 'string', value: 'FILE', help: 'write the run as JSON' },
  { name: 'report', type: 'string', value: 'FILE.html', default: 'next to --json', help: 'the HTML report' },
  { name: 'baseline', type: 'boolean', help: 'then run the same peers without gossip' },
  { name: 'http', type: 'string', value: 'PORT', default: 'any free port', help: 'the live page' },
  { name: 'no-http', type: 'boolean', help: 'no live page' },
  {
    name: 'keep-dir',
    type: 'string',
    value: 'DIR',
    default: 'a temp dir, removed',
    help: 'peer data dirs, logs',
  },
  { name: 'poll', type: 'string', value: 'MS', default: '1000', help: "how often peers' /status is read" },
  {
    name: 'regions',
    type: 'string',
    value: 'NAME:N,...',
    help: 'emulate wide-area links (sets the peer count)',
  },
  {
    name: 'links',
    type: 'string',
    value: 'FILE',
    default: 'built-in 3 regions',
    help: 'topology to emulate',
  },
  {
    name: 'byzantine',
    type: 'string',
    multiple: true,
    value: 'K:MODE',
    help: 'K attacker peers (sign-flip, scale, noise, noise-age, age, alie, label-flip, free-rider)',
  },
  { name: 'attack-interval', type: 'string', value: 'MS', help: "attackers' push period" },
  {
    name: 'train-rate',
    type: 'string',
    value: 'R[,straggler:F@R]',
    help: 'steps/s cap of every peer, or a share F of stragglers at a slower rate',
  },
  {
    name: 'churn',
    type: 'string',
    value: 'SPEC',
    help: 'kill:F@T,restart:F@T,join:N@T (fractions of peers, N late joiners, T s after start)',
  },
]

/** node:util parseArgs options for a flag table. */
export function parserOptions(flags: readonly FlagSpec[]): NonNullable<ParseArgsConfig['options']> {
  return Object.fromEntries(
    flags.map((f) => [f.name, { type: f.type, ...(f.multiple === true ? { multiple: true } : {}) }]),
  )
}

/** The `--help` text of a command: usage line, then one line per flag with its default. */
export function formatHelp(command: string, summary: string, flags: readonly FlagSpec[]): string {
  const left = flags.map((f) => `  --${f.name}${f.value !== undefined ? ` ${f.value}` : ''}`)
  const width = Math.min(36, Math.max(...left.map((l) => l.length)) + 2)
  const lines = flags.map((f, i) => {
    const l = left[i]!
    const text = `${f.help}${f.default !== undefined ? ` (default: ${f.default})` : ''}`
    return l.length < width ? `${l.padEnd(width)}${text}` : `${l}\n${' '.repeat(width)}${text}`
  })
  return `usage: gossip-learn ${command} [flags]\n${summary}\n\nflags:\n${lines.join('\n')}`
}
