/**
 * Fashion-MNIST (Zalando's 28x28 clothing images, 10 classes, 60000 + 10000) from the gzipped IDX
 * files that Debian's `dataset-fashion-mnist` package installs. Nothing is downloaded.
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import { DatasetNotInstalledError } from './errors.ts'
import { type IdxFiles, loadIdxDataset } from './idx.ts'
import { MNIST_CLASSES, MNIST_FILE_NAMES, MNIST_SHAPE } from './mnist.ts'
import type { Dataset } from './types.ts'

/** Where `dataset-fashion-mnist` puts its files (`dpkg -L dataset-fashion-mnist`). */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'

/** The command that installs the files, for error messages. */
export const FASHION_MNIST_INSTALL = 'apt-get install dataset-fashion-mnist'

/** The four file paths in `dir` (gzipped or not); DatasetNotInstalledError naming the first missing one. */
export function fashionMnistFiles(dir = FASHION_MNIST_DIR): IdxFiles {
  const out: Partial<IdxFiles> = {}
  for (const [key, name] of Object.entries(MNIST_FILE_NAMES) as Array<[keyof IdxFiles, string]>) {
    const found = [`${name}.gz`, name].map((f) => path.join(dir, f)).find((f) => existsSync(f))
    if (found === undefined) {
      throw new DatasetNotInstalledError(
        `fashion-mnist: ${path.join(dir, `${name}.gz`)} not found: install Debian's dataset-fashion-mnist package (${FASHION_MNIST_INSTALL})`,
      )
    }
    out[key] = found
  }
  return out as IdxFiles
}

/** Fashion-MNIST as a Dataset (name 'fashion-mnist', [28, 28, 1], 10 classes). */
export function fashionMnistDataset(dir = FASHION_MNIST_DIR): Dataset {
  return loadIdxDataset({
    name: 'fashion-mnist',
    classes: MNIST_CLASSES,
    featureShape: MNIST_SHAPE,
    ...fashionMnistFiles(dir),
  })
}
