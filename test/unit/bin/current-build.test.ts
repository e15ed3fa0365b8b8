import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { BUILD_STAMP, buildIsCurrent } from '../../../bin/current-build.js'

describe('buildIsCurrent', () => {
  let root: string
  const at = (path: string, seconds: number) => utimesSync(join(root, path), seconds, seconds)

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'gl-build-'))
    mkdirSync(join(root, 'src', 'node'), { recursive: true })
    mkdirSync(join(root, 'dist'))
    writeFileSync(join(root, 'src', 'index.ts'), '')
    writeFileSync(join(root, 'src', 'node', 'daemon.ts'), '')
    at('src/index.ts', 1000)
    at('src/node/daemon.ts', 1000)
  })
  afterEach(() => rmSync(root, { recursive: true, force: true }))

  it('is false without a build stamp', () => {
    expect(buildIsCurrent(root, {})).toBe(false)
  })

  it('is true when the stamp is as new as every source file', () => {
    writeFileSync(join(root, BUILD_STAMP), '')
    at(BUILD_STAMP, 1000)
    expect(buildIsCurrent(root, {})).toBe(true)
    at(BUILD_STAMP, 2000)
    expect(buildIsCurrent(root, {})).toBe(true)
  })

  it('is false when a source file, however deep, changed after the build', () => {
    writeFileSync(join(root, BUILD_STAMP), '')
    at(BUILD_STAMP, 2000)
    at('src/node/daemon.ts', 2001)
    expect(buildIsCurrent(root, {})).toBe(false)
  })

  it('is false when GOSSIP_LEARN_FROM_SOURCE=1 asks for the sources', () => {
    writeFileSync(join(root, BUILD_STAMP), '')
    at(BUILD_STAMP, 2000)
    expect(buildIsCurrent(root, { GOSSIP_LEARN_FROM_SOURCE: '1' })).toBe(false)
    expect(buildIsCurrent(root, { GOSSIP_LEARN_FROM_SOURCE: '0' })).toBe(true)
  })
})
