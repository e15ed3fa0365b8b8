import { beforeAll, describe, expect, it } from 'vitest'
import { samplesStore } from '../../../src/data/samples.ts'
import { archFingerprint, archTensors } from '../../../src/model/arch.ts'
import { initBackend } from '../../../src/model/backend.ts'
import { createStateProbe } from '../../../src/model/probe.ts'
import type { ArchSpec, ModelState } from '../../../src/model/types.ts'
import { InvalidArgumentError } from '../../../src/util/errors.ts'

const ARCH: ArchSpec = { kind: 'mlp', hidden: 4, input: [2], classes: 3 }

/** A state whose every weight is 0 and whose output bias makes it answer `label` everywhere. */
function constant(label: number): ModelState {
  return {
    arch: archFingerprint(ARCH),
    age: 0,
    tensors: archTensors(ARCH).map((t) => {
      const values = new Float32Array(t.shape.reduce((a, b) => a * b, 1))
      if (t.name === 'dense_1/bias') values[label] = 1
      return { name: t.name, shape: [...t.shape], values }
    }),
  }
}

describe('state probe', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' })
  })

  it('scores balanced accuracy: a model answering the majority class everywhere gets 1 / classes', () => {
    // A skewed share: 6 of class 0, 2 of class 1, 2 of class 2.
    const labels = Uint8Array.from([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])
    const probe = createStateProbe(
      ARCH,
      samplesStore({ features: new Float32Array(labels.length * 2), labels, count: labels.length }),
    )
    try {
      expect(probe.count).toBe(10)
      // Plain accuracy would be 0.6; balanced is the mean of recalls 1, 0, 0.
      expect(probe.accuracy(constant(0))).toBeCloseTo(1 / 3, 6)
      expect(probe.accuracy(constant(2))).toBeCloseTo(1 / 3, 6)
    } finally {
      probe.dispose()
    }
  })

  it('refuses a size that is not a positive integer', () => {
    const labels = Uint8Array.from([0, 1])
    const store = samplesStore({ features: new Float32Array(4), labels, count: 2 })
    expect(() => createStateProbe(ARCH, store, 0)).toThrow(InvalidArgumentError)
  })
})
