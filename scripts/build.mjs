// `npm run build` (and npm's `prepare`, on install): compile src/ to dist/, copy the files that
// are not TypeScript (the dashboard's script), then stamp dist/.built, which the CLI compares
// with src/ to run the build only while it is current (bin/current-build.js).
// `--if-typescript`: skip quietly when TypeScript is not installed (`npm ci --omit=dev`); the
// CLI then runs the sources through tsx.
import { spawnSync } from 'node:child_process'
import { cpSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BUILD_STAMP } from '../bin/current-build.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
let tsc
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc')
} catch {
  if (process.argv.includes('--if-typescript')) {
    console.log(
      'gossip-learn: TypeScript is not installed, dist/ not built; the CLI runs the sources through tsx',
    )
    process.exit(0)
  }
  console.error('gossip-learn: the build needs TypeScript (npm install without --omit=dev)')
  process.exit(1)
}
const run = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' })
if (run.status !== 0) process.exit(run.status ?? 1)
cpSync(join(root, 'src'), join(root, 'dist'), { recursive: true, filter: (f) => !f.endsWith('.ts') })
writeFileSync(join(root, BUILD_STAMP), `${new Date().toISOString()}\n`)
