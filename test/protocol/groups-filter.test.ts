import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { WordFilter, type FilterMatch } from '../../protocol/groups/index.js'

/** Per-code-unit lowercase where it stays one unit: the filter's folding, written the slow way. */
function fold (s: string): string {
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!
    const l = c.toLowerCase()
    out += l.length === 1 ? l : c
  }
  return out
}

function naiveMatches (words: readonly string[], text: string): FilterMatch[] {
  const t = fold(text)
  const found = new Set<string>()
  for (const w of new Set(words.filter((x) => x.length > 0).map(fold))) {
    for (let i = 0; i + w.length <= t.length; i++) if (t.startsWith(w, i)) found.add(`${i},${i + w.length}`)
  }
  return [...found].map((k) => { const [start, end] = k.split(',').map(Number); return { start: start!, end: end! } })
}

function naiveMask (words: readonly string[], text: string, char: string): string {
  const masked = new Array<boolean>(text.length).fill(false)
  for (const m of naiveMatches(words, text)) for (let i = m.start; i < m.end; i++) masked[i] = true
  return Array.from({ length: text.length }, (_, i) => masked[i] ? char : text[i]).join('')
}

function sorted (ms: FilterMatch[]): FilterMatch[] {
  return [...ms].sort((a, b) => a.start - b.start || a.end - b.end)
}

describe('word filter', () => {
  test('finds words case-insensitively, overlaps included', () => {
    const f = new WordFilter(['he', 'she', 'his', 'hers'])
    assert.deepEqual(sorted(f.matches('uSHErs')), [{ start: 1, end: 4 }, { start: 2, end: 4 }, { start: 2, end: 6 }])
    assert.equal(f.test('a HIStory'), true)
    assert.equal(f.test('nothing'), false)
    assert.deepEqual(f.matches(''), [])
  })

  test('masks, merging overlapping matches, with the chosen character', () => {
    const f = new WordFilter(['bad', 'adverb', 'word'])
    assert.equal(f.mask('a BADVERB here'), 'a ******* here')
    assert.equal(f.mask('badword', '#'), '#######')
    assert.equal(f.mask('clean text'), 'clean text')
    assert.equal(f.mask('bad bad'), '*** ***')
  })

  test('indices stay aligned when lowercase would change the length', () => {
    // 'İ' lowercases to two code units: it is kept as is, so indices still point into the original
    const f = new WordFilter(['ab'])
    assert.deepEqual(f.matches('İAB'), [{ start: 1, end: 3 }])
    assert.equal(f.mask('İaBİ'), 'İ**İ')
    assert.equal(new WordFilter(['İ']).mask('xİx'), 'x*x')
  })

  test('empty words are ignored; an empty filter matches nothing', () => {
    assert.equal(new WordFilter(['']).test('anything'), false)
    assert.equal(new WordFilter([]).mask('anything'), 'anything')
  })

  test('many words, long text: linear-time matching', () => {
    const words = Array.from({ length: 1000 }, (_, i) => `w${i.toString(36)}x`)
    const f = new WordFilter(words)
    const text = 'lorem ipsum w1x dolor '.repeat(5000)
    assert.equal(f.matches(text).length, 5000)
    assert.equal(f.mask(text).length, text.length)
  })

  const alphabet = fc.constantFrom('a', 'b', 'A', 'B', 'c', 'İ', 'ß', 'É', 'é', ' ')
  const word = fc.string({ unit: alphabet, minLength: 0, maxLength: 4 })
  const text = fc.string({ unit: alphabet, maxLength: 40 })

  test('matches agree with a naive search (property)', () => {
    fc.assert(fc.property(fc.array(word, { maxLength: 8 }), text, (words, t) => {
      const f = new WordFilter(words)
      assert.deepEqual(sorted(f.matches(t)), sorted(naiveMatches(words, t)))
      assert.equal(f.test(t), naiveMatches(words, t).length > 0)
    }), { numRuns: 2000 })
  })

  test('mask agrees with a naive mask (property)', () => {
    fc.assert(fc.property(fc.array(word, { maxLength: 8 }), text, (words, t) => {
      assert.equal(new WordFilter(words).mask(t, '*'), naiveMask(words, t, '*'))
    }), { numRuns: 2000 })
  })
})
