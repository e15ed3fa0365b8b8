/**
 * Entry of an attacker process, spawned by the testbed (`--byzantine K:MODE`) as
 * `node --import tsx src/testbed/attack/main.ts <flags of args.ts>`. Prints JSON lines on stdout:
 * `{"event":"ready",...}` once listening, `{"event":"status",...}` (AttackerStats) every status
 * interval, and a last status line on SIGTERM/SIGINT before it exits. Exit code 2 on bad flags.
 */
// libp2p 3 needs Promise.withResolvers (Node 22): the polyfill loads before anything else.
await import('../../polyfill.ts')
const { runAttackerProcess } = await import('./process.ts')
process.exitCode = await runAttackerProcess(process.argv.slice(2), (line) => {
  process.stdout.write(`${line}\n`)
})
