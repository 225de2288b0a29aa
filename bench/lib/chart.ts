/**
 * PNG line charts for benchmark results: an SVG built here (pure functions, testable), rendered
 * by `@resvg/resvg-js` (prebuilt binaries, no browser, no canvas toolchain). Text uses the
 * system's fonts when there are any; without them the lines still render.
 */
import { writeFile } from 'node:fs/promises'
import { Resvg } from '@resvg/resvg-js'

/** One line of a chart. */
export interface Series {
  name: string
  points: ReadonlyArray<readonly [number, number]>
}

/** One axis. */
export interface Axis {
  label: string
  /** Logarithmic scale (base 10); every value must be > 0. */
  log?: boolean
  min?: number
  max?: number
}

/** A line chart. */
export interface LineChart {
  title: string
  x: Axis
  y: Axis
  series: readonly Series[]
}

const WIDTH = 800
const HEIGHT = 480
const MARGIN = { left: 80, right: 20, top: 40, bottom: 60 }
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b']

/** "Nice" linear tick values covering [min, max], about `count` of them (1, 2 or 5 × 10^k steps). */
export function niceTicks (min: number, max: number, count = 6): number[] {
  if (!(max > min)) return [min]
  const raw = (max - min) / Math.max(1, count - 1)
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag
  const ticks: number[] = []
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)))
  return ticks
}

/** Powers of ten covering [min, max] (min > 0). */
export function logTicks (min: number, max: number): number[] {
  const ticks: number[] = []
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) ticks.push(10 ** e)
  return ticks
}

/** Maps a value of an axis with range [min, max] to [0, 1]. */
export function scale (axis: Axis, min: number, max: number, v: number): number {
  if (axis.log === true) return (Math.log10(v) - Math.log10(min)) / (Math.log10(max) - Math.log10(min))
  return (v - min) / (max - min)
}

/** The empirical CDF of `values` as at most `maxPoints` points (value, fraction ≤ value). */
export function cdfPoints (values: readonly number[], maxPoints = 400): Array<[number, number]> {
  const sorted = [...values].sort((a, b) => a - b)
  const n = sorted.length
  if (n === 0) return []
  const stride = Math.max(1, Math.floor(n / maxPoints))
  const out: Array<[number, number]> = []
  for (let i = 0; i < n; i += stride) out.push([sorted[i] ?? 0, (i + 1) / n])
  out.push([sorted[n - 1] ?? 0, 1])
  return out
}

function range (axis: Axis, values: number[]): [number, number] {
  const finite = values.filter((v) => Number.isFinite(v) && (axis.log !== true || v > 0))
  let min = axis.min ?? Math.min(...finite)
  let max = axis.max ?? Math.max(...finite)
  if (finite.length === 0) { min = axis.log === true ? 1 : 0; max = axis.log === true ? 10 : 1 }
  if (axis.log === true) {
    return [axis.min ?? 10 ** Math.floor(Math.log10(min)), axis.max ?? 10 ** Math.ceil(Math.log10(max))]
  }
  if (max === min) max = min + 1
  // widen to whole tick steps so no line runs along the frame
  const ticks = niceTicks(min, max)
  const step = ticks.length > 1 ? (ticks[1] ?? 0) - (ticks[0] ?? 0) : 1
  return [axis.min ?? Math.floor(min / step) * step, axis.max ?? Math.ceil(max / step) * step]
}

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function label (v: number): string {
  if (Math.abs(v) >= 1000) return v.toLocaleString('en-US', { maximumFractionDigits: 0 })
  return String(Number(v.toPrecision(3)))
}

/** The chart as an SVG document. */
export function chartSvg (chart: LineChart): string {
  const xs = chart.series.flatMap((s) => s.points.map((p) => p[0]))
  const ys = chart.series.flatMap((s) => s.points.map((p) => p[1]))
  const [x0, x1] = range(chart.x, xs)
  const [y0, y1] = range(chart.y, ys)
  const w = WIDTH - MARGIN.left - MARGIN.right
  const h = HEIGHT - MARGIN.top - MARGIN.bottom
  const px = (v: number): number => MARGIN.left + scale(chart.x, x0, x1, v) * w
  const py = (v: number): number => MARGIN.top + (1 - scale(chart.y, y0, y1, v)) * h
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="16">${esc(chart.title)}</text>`
  ]
  const xTicks = chart.x.log === true ? logTicks(x0, x1) : niceTicks(x0, x1)
  const yTicks = chart.y.log === true ? logTicks(y0, y1) : niceTicks(y0, y1)
  for (const t of xTicks) {
    if (t < x0 || t > x1) continue
    parts.push(`<line x1="${px(t)}" y1="${MARGIN.top}" x2="${px(t)}" y2="${MARGIN.top + h}" stroke="#ddd"/>`,
      `<text x="${px(t)}" y="${MARGIN.top + h + 18}" text-anchor="middle">${label(t)}</text>`)
  }
  for (const t of yTicks) {
    if (t < y0 || t > y1) continue
    parts.push(`<line x1="${MARGIN.left}" y1="${py(t)}" x2="${MARGIN.left + w}" y2="${py(t)}" stroke="#ddd"/>`,
      `<text x="${MARGIN.left - 6}" y="${py(t) + 4}" text-anchor="end">${label(t)}</text>`)
  }
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${w}" height="${h}" fill="none" stroke="#333"/>`,
    `<text x="${MARGIN.left + w / 2}" y="${HEIGHT - 14}" text-anchor="middle">${esc(chart.x.label)}</text>`,
    `<text transform="translate(18 ${MARGIN.top + h / 2}) rotate(-90)" text-anchor="middle">${esc(chart.y.label)}</text>`)
  chart.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length] ?? '#000'
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (chart.x.log !== true || x > 0) && (chart.y.log !== true || y > 0))
    if (pts.length > 0) {
      parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`)
      if (pts.length <= 30) for (const [x, y] of pts) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${colour}"/>`)
    }
    const ly = MARGIN.top + 16 + i * 18
    parts.push(`<line x1="${MARGIN.left + 12}" y1="${ly - 4}" x2="${MARGIN.left + 36}" y2="${ly - 4}" stroke="${colour}" stroke-width="3"/>`,
      `<text x="${MARGIN.left + 42}" y="${ly}">${esc(s.name)}</text>`)
  })
  parts.push('</svg>')
  return parts.join('\n')
}

/** Renders the chart to a PNG file. */
export async function writeChart (file: string, chart: LineChart): Promise<void> {
  const png = new Resvg(chartSvg(chart), { fitTo: { mode: 'original' }, font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng()
  await writeFile(file, png)
}
