/** Runs the real `gossip-learn` command as a child process, as a person would, and collects its output. */
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'

export const BIN = resolve(import.meta.dirname, '../../bin/gossip-learn.js')

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

export function runCli(args: string[]): Promise<CliRun> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => (stdout += d))
    p.stderr.on('data', (d) => (stderr += d))
    p.on('exit', (code) => done({ code, stdout, stderr }))
  })
}
