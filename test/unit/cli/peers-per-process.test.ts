import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseTestbedArgs, TESTBED_USAGE } from '../../../src/cli/args.ts'
import { loadHostFile } from '../../../src/testbed/host.ts'
import { errorName } from '../error-name.ts'

describe('testbed --peers-per-process', () => {
  it('parses N, is absent by default and at 1 (a process per peer), and is in --help', () => {
    expect(parseTestbedArgs(['--peers', '16', '--peers-per-process', '8']).peersPerProcess).toBe(8)
    expect(parseTestbedArgs(['--peers', '4']).peersPerProcess).toBeUndefined()
    expect(parseTestbedArgs(['--peers-per-process', '1']).peersPerProcess).toBeUndefined()
    expect(TESTBED_USAGE).toContain('--peers-per-process N')
  })

  it('allows the 128-peer scale runs and rejects bad counts', () => {
    expect(parseTestbedArgs(['--peers', '128', '--peers-per-process', '16']).peers).toBe(128)
    expect(errorName(() => parseTestbedArgs(['--peers-per-process', '0']))).toBe('UsageError')
    expect(errorName(() => parseTestbedArgs(['--peers-per-process', 'two']))).toBe('UsageError')
    expect(errorName(() => parseTestbedArgs(['--peers', '257']))).toBe('UsageError')
  })

  it('refuses --churn with several peers per process (a kill takes the whole process) but not with 1', () => {
    expect(errorName(() => parseTestbedArgs(['--peers-per-process', '2', '--churn', 'kill:0.5@10']))).toBe(
      'UsageError',
    )
    expect(parseTestbedArgs(['--peers-per-process', '1', '--churn', 'kill:0.5@10']).churn).toHaveLength(1)
  })
})

describe('host file', () => {
  let dir = ''
  afterAll(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })
  const write = async (name: string, text: string) => {
    dir ||= await mkdtemp(join(tmpdir(), 'gl-host-file-'))
    const path = join(dir, name)
    await writeFile(path, text)
    return path
  }

  it('reads what the testbed writes', async () => {
    const peers = [
      { index: 2, args: ['--peer-index', '2'] },
      { index: 3, args: [] },
    ]
    expect(await loadHostFile(await write('ok.json', JSON.stringify({ peers })))).toEqual({ peers })
  })

  it.each([
    ['not JSON', '{peers'],
    ['no peers', '{"peers": []}'],
    ['a repeated index', '{"peers": [{"index": 1, "args": []}, {"index": 1, "args": []}]}'],
    ['a negative index', '{"peers": [{"index": -1, "args": []}]}'],
    ['args that are not strings', '{"peers": [{"index": 0, "args": [1]}]}'],
  ])('%s is a HostFileError', async (_what, text) => {
    const path = await write(`bad-${Math.random()}.json`, text)
    await expect(loadHostFile(path)).rejects.toMatchObject({ name: 'HostFileError' })
  })

  it('a missing file is a HostFileError', async () => {
    await expect(loadHostFile(join(tmpdir(), 'no-such-gl-host.json'))).rejects.toMatchObject({
      name: 'HostFileError',
    })
  })
})
