/**
 * A room's word filter: Aho–Corasick over UTF-16 code units, case-insensitive.
 *
 * Building costs O(total word length); matching costs O(text length + matches), so a node can
 * run it on every room message whatever the number of words. Case folding is per code unit and
 * only where the lowercase form is one code unit too, so a match's indices point into the original
 * text unchanged.
 */

/** Most words in one filter. */
export const MAX_FILTER_WORDS = 1000
/** Longest filter word, in UTF-16 code units. */
export const MAX_FILTER_WORD_LENGTH = 64

/** A match: `text.slice(start, end)` is a filter word (up to case). */
export interface FilterMatch {
  start: number
  end: number
}

const foldCache = new Map<number, number>()

/** Lowercase of one code unit when it stays one code unit, else the unit itself. */
function fold (c: number): number {
  if (c < 128) return c >= 65 && c <= 90 ? c + 32 : c
  let f = foldCache.get(c)
  if (f === undefined) {
    const lower = String.fromCharCode(c).toLowerCase()
    f = lower.length === 1 ? lower.charCodeAt(0) : c
    foldCache.set(c, f)
  }
  return f
}

/** An Aho–Corasick automaton over a fixed word list. */
export class WordFilter {
  /** Goto edges per state; a state is one distinct (folded) word prefix. */
  private readonly next: Array<Map<number, number>> = [new Map()]
  private readonly fail: number[] = [0]
  /** Prefix length of each state. */
  private readonly depth: number[] = [0]
  /** Whether the state's prefix is a whole word. */
  private readonly terminal: boolean[] = [false]
  /** Nearest proper suffix state (fail chain) that is a whole word; -1: none. */
  private readonly dict: number[] = [-1]

  /** Builds the automaton in O(total word length); empty words are ignored. */
  constructor (words: readonly string[]) {
    for (const word of words) {
      if (word.length === 0) continue
      let s = 0
      for (let i = 0; i < word.length; i++) {
        const c = fold(word.charCodeAt(i))
        let t = this.next[s]!.get(c)
        if (t === undefined) {
          t = this.next.length
          this.next.push(new Map()); this.fail.push(0); this.depth.push(i + 1); this.terminal.push(false); this.dict.push(-1)
          this.next[s]!.set(c, t)
        }
        s = t
      }
      this.terminal[s] = true
    }
    // breadth-first, so the fail links of shallower states are ready when a state needs them
    const queue: number[] = [...this.next[0]!.values()]
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi]!
      const f = this.fail[s]!
      this.dict[s] = this.terminal[f]! ? f : this.dict[f]!
      for (const [c, t] of this.next[s]!) {
        this.fail[t] = s === 0 ? 0 : this.step(f, c)
        queue.push(t)
      }
    }
  }

  /** Every occurrence of every word (overlaps included), ordered by end, longest first. */
  matches (text: string): FilterMatch[] {
    const found: FilterMatch[] = []
    let s = 0
    for (let i = 0; i < text.length; i++) {
      s = this.step(s, fold(text.charCodeAt(i)))
      for (let d = this.terminal[s]! ? s : this.dict[s]!; d >= 0; d = this.dict[d]!) found.push({ start: i + 1 - this.depth[d]!, end: i + 1 })
    }
    return found
  }

  /** True when the text contains any word. */
  test (text: string): boolean {
    let s = 0
    for (let i = 0; i < text.length; i++) {
      s = this.step(s, fold(text.charCodeAt(i)))
      if (this.terminal[s]! || this.dict[s]! >= 0) return true
    }
    return false
  }

  /** The text with every code unit inside a match replaced by `char` (overlapping matches merge). */
  mask (text: string, char = '*'): string {
    const n = text.length
    // start of the longest match ending at each position (-1: none)
    const startAt = new Int32Array(n).fill(-1)
    let any = false
    let s = 0
    for (let i = 0; i < n; i++) {
      s = this.step(s, fold(text.charCodeAt(i)))
      const d = this.terminal[s]! ? s : this.dict[s]!
      if (d >= 0) { startAt[i] = i + 1 - this.depth[d]!; any = true }
    }
    if (!any) return text
    // unit j is masked iff some match ending at or after j starts at or before it
    const masked = new Uint8Array(n)
    let minStart = Infinity
    for (let j = n - 1; j >= 0; j--) {
      const st = startAt[j]!
      if (st >= 0 && st < minStart) minStart = st
      if (minStart <= j) masked[j] = 1
    }
    const pieces: string[] = []
    let runStart = 0
    for (let j = 1; j <= n; j++) {
      if (j === n || masked[j] !== masked[runStart]) {
        pieces.push(masked[runStart] === 1 ? char.repeat(j - runStart) : text.slice(runStart, j))
        runStart = j
      }
    }
    return pieces.join('')
  }

  private step (s: number, c: number): number {
    for (;;) {
      const t = this.next[s]!.get(c)
      if (t !== undefined) return t
      if (s === 0) return 0
      s = this.fail[s]!
    }
  }
}
