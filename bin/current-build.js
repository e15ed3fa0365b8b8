// Whether the compiled dist/ can run instead of the TypeScript sources: `npm run build` stamps
// dist/.built when it finishes, and a source file changed after that stamp makes the build stale.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** The stamp `npm run build` writes last, relative to the package root. */
export const BUILD_STAMP = join('dist', '.built')

/**
 * True when `root`/dist holds a build at least as new as every file under `root`/src, and
 * `env.GOSSIP_LEARN_FROM_SOURCE` does not ask for the sources. A missing or stale build is false:
 * the caller then runs the sources, which is always right, only heavier.
 */
export function buildIsCurrent(root, env = process.env) {
  if (env.GOSSIP_LEARN_FROM_SOURCE === '1') return false
  let stamp
  try {
    stamp = statSync(join(root, BUILD_STAMP)).mtimeMs
  } catch {
    return false
  }
  const newer = (dir) =>
    readdirSync(dir, { withFileTypes: true }).some((e) =>
      e.isDirectory() ? newer(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs > stamp,
    )
  return !newer(join(root, 'src'))
}
