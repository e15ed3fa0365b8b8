/**
 * Entry of the attackers' process, spawned by the testbed (`--byzantine K:MODE`) as
 * `node --import tsx src/testbed/attack/main.ts --attacker <flags of args.ts> [--attacker ...]`
 * (or the flags of one attacker alone; `node dist/testbed/attack/main.js` once built). Prints
 * JSON lines on stdout, each with the attacker's `slot`: `{"event":"ready",...}` once
 * listening, `{"event":"status",...}` (AttackerStats) every status interval, and a last status
 * line each on SIGTERM/SIGINT, or once stdin closes (the testbed dead), before it exits. Exit
 * code 2 on bad flags.
 */
// libp2p 3 needs Promise.withResolvers (Node 22): the polyfill loads before anything else.
await import('../../polyfill.ts')
const { runAttackerProcess } = await import('./process.ts')
process.exitCode = await runAttackerProcess(
  process.argv.slice(2),
  (line) => {
    process.stdout.write(`${line}\n`)
  },
  process.stdin,
)
