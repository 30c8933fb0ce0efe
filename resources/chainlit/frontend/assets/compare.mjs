// Compare mode: each prompt answered by two models at once, side by side. The chat server keeps
// what the page needs in each answer's metadata (`compare`: the group the two answers share, the
// side, the model, where it ran, its numbers, the user's "Better" mark), so a resumed chat shows
// it all again. This module reads that metadata, words the numbers under an answer, and draws
// the chart of the conversation's runs (time to first token and tokens/s, prompt by prompt) as
// inline SVG. Everything but `render` and `CompareChart` is pure (checked with node alone).

const SVG_NS = 'http://www.w3.org/2000/svg';
const SERIES_COLOURS = 6; // .series-0 … .series-5 in chat.css, reused in turn
const MAX_X_LABELS = 10;
const VIEW = { width: 360, height: 118, left: 40, right: 12, top: 22, bottom: 20, inset: 10 };
const PANELS = [
  { key: 'ttft_ms', title: 'Time to first token (ms)', format: (v) => `${Math.round(v)} ms` },
  { key: 'tokens_per_s', title: 'Tokens/s', format: (v) => `${v.toFixed(1)} tokens/s` },
];

function numberOrNull(value) {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/**
 * The compare part of an answer's metadata, checked (the server's, but a stored chat may come
 * from an older or newer one), with its `ending`; null for an answer that was not compared.
 */
export function compareOf(metadata) {
  const given = metadata?.answer ? metadata.compare : null;
  if (!given || typeof given !== 'object') return null;
  const group = typeof given.group === 'number' ? String(given.group) : given.group;
  const side = Number(given.side);
  if (typeof group !== 'string' || !group || (side !== 0 && side !== 1)) return null;
  return {
    group,
    side,
    model: typeof given.model === 'string' && given.model ? given.model : `model ${side + 1}`,
    where: given.where === 'remote' ? 'remote' : 'local',
    label: typeof given.label === 'string' ? given.label : '',
    ttft_ms: numberOrNull(given.ttft_ms),
    tokens_per_s: numberOrNull(given.tokens_per_s),
    output_tokens: numberOrNull(given.output_tokens),
    total_ms: numberOrNull(given.total_ms),
    better: given.better === true,
    ending: typeof metadata.ending === 'string' ? metadata.ending : '',
  };
}

/** Whether the server has said how the answer ended (or measured all of it). */
export function hasEnded(compare) {
  return Boolean(compare.ending) || compare.total_ms !== null;
}

/** "TTFT 120 ms · 35.2 tokens/s · 256 tokens · 3.1 s · this computer (CPU)": what is known. */
export function numbersText(compare) {
  const { ttft_ms: ttft, tokens_per_s: rate, output_tokens: tokens, total_ms: total } = compare;
  return [
    ttft !== null ? `TTFT ${Math.round(ttft)} ms` : '',
    rate !== null ? `${rate.toFixed(1)} tokens/s` : '',
    tokens !== null ? `${Math.round(tokens)} ${Math.round(tokens) === 1 ? 'token' : 'tokens'}` : '',
    total !== null ? `${(total / 1000).toFixed(1)} s` : '',
    compare.label,
  ]
    .filter(Boolean)
    .join(' · ');
}

/**
 * The compared answers of a conversation, paired by their group, in the order they came:
 * [{group, prompt, sides: [{step, compare} | null, same]}]. `steps` are the conversation's
 * messages in order, their metadata parsed; `prompt` counts the user's messages up to the group
 * (the x of the chart).
 */
export function compareGroups(steps) {
  const groups = new Map();
  let prompt = 0;
  for (const step of steps) {
    if (step.type === 'user_message') prompt += 1;
    const compare = step.type === 'assistant_message' ? compareOf(step.metadata) : null;
    if (!compare) continue;
    let group = groups.get(compare.group);
    if (!group) {
      group = { group: compare.group, prompt: Math.max(prompt, 1), sides: [null, null] };
      groups.set(compare.group, group);
    }
    group.sides[compare.side] = { step, compare };
  }
  return [...groups.values()];
}

/** The chart's points: one per side of each group, side 0 first. */
export function compareRuns(steps) {
  return compareGroups(steps).flatMap(({ prompt, sides }) =>
    sides
      .filter(Boolean)
      .map(({ compare: c }) => ({
        prompt,
        side: c.side,
        model: c.model,
        where: c.where,
        ttft_ms: c.ttft_ms,
        tokens_per_s: c.tokens_per_s,
      })),
  );
}

/** A node of the chart: plain data until `render` makes it elements (text is never parsed). */
function h(tag, attrs = {}, ...children) {
  return { tag, attrs, children: children.flat(Infinity).filter((child) => child !== null && child !== '') };
}

/**
 * The models of the runs, in the order they first come, with their points by prompt (the newest
 * run of a prompt, when it was answered twice). A model that ran both here and remotely is two
 * series, told apart by where.
 */
function seriesOf(runs) {
  const wheres = new Map();
  for (const run of runs) wheres.set(run.model, new Set([...(wheres.get(run.model) || []), run.where]));
  const series = new Map();
  for (const run of runs) {
    const key = `${run.model}\n${run.where}`;
    if (!series.has(key)) {
      const name = wheres.get(run.model).size > 1 ? `${run.model} (${run.where})` : run.model;
      series.set(key, { model: run.model, where: run.where, name, index: series.size, points: new Map() });
    }
    series.get(key).points.set(run.prompt, run);
  }
  return [...series.values()];
}

/** The smallest of 1, 2, 2.5, 5 × 10^k at or above `value` (the top of an axis). */
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((step) => step * power).find((top) => top >= value * (1 - 1e-9));
}

function tickLabel(value) {
  if (value >= 1000) return `${+(value / 1000).toFixed(1)}k`;
  return String(+value.toFixed(1));
}

/** Where values and prompts go in a panel: functions of the prompts shown and the highest value. */
function scales(prompts, highest) {
  const { width, height, left, right, top, bottom, inset } = VIEW;
  const [first, last] = [prompts[0], prompts.at(-1)];
  const plotLeft = left + inset;
  const plotWidth = width - right - inset - plotLeft;
  const share = (prompt) => (last === first ? 0.5 : (prompt - first) / (last - first)); // one: the middle
  const round = (n) => Math.round(n * 10) / 10;
  return {
    x: (prompt) => round(plotLeft + share(prompt) * plotWidth),
    y: (value) => round(top + (height - top - bottom) * (1 - value / highest)),
  };
}

/** The axes of a panel: three levels (0, half, top) and the prompts (at most MAX_X_LABELS). */
function axesTree(prompts, highest, { x, y }) {
  const { width, height, left, right } = VIEW;
  const every = Math.ceil(prompts.length / MAX_X_LABELS);
  return [
    [0, highest / 2, highest].map((value) => [
      h('line', { class: value ? 'grid' : 'axis', x1: left, x2: width - right, y1: y(value), y2: y(value) }),
      h('text', { class: 'tick', x: left - 4, y: y(value) + 3, 'text-anchor': 'end' }, tickLabel(value)),
    ]),
    h('text', { class: 'tick', x: 4, y: height - 4 }, 'prompt'),
    prompts
      .filter((_, i) => i % every === 0)
      .map((n) => h('text', { class: 'tick', x: x(n), y: height - 4, 'text-anchor': 'middle' }, String(n))),
  ];
}

/** A model's points in a panel (its prompts with a value), joined by a line. */
function seriesTree(spec, s, { x, y }) {
  const points = [...s.points.entries()]
    .filter(([, run]) => run[spec.key] !== null)
    .sort(([a], [b]) => a - b)
    .map(([prompt, run]) => ({ prompt, value: run[spec.key], cx: x(prompt), cy: y(run[spec.key]) }));
  const joined = points.map((p) => `${p.cx},${p.cy}`).join(' ');
  const line = points.length > 1 ? h('polyline', { points: joined }) : null;
  return h(
    'g',
    { class: `series series-${s.index % SERIES_COLOURS}`, 'data-model': s.model },
    line,
    points.map(({ prompt, value, cx, cy }) =>
      h(
        'circle',
        { cx, cy, r: 3.5, 'data-model': s.model, 'data-where': s.where, 'data-prompt': prompt },
        h('title', {}, `${s.name}, prompt ${prompt}: ${spec.format(value)}`),
      ),
    ),
  );
}

/** One panel: a value of each model's runs, prompt by prompt. */
function panelTree(spec, series, prompts) {
  const values = series.flatMap((s) => [...s.points.values()].map((run) => run[spec.key]));
  const known = values.filter((value) => value !== null);
  const highest = niceMax(Math.max(0, ...known));
  const scale = scales(prompts, highest);
  const names = series.map((s) => s.name).join(', ');
  return h(
    'svg',
    {
      class: 'compare-panel',
      viewBox: `0 0 ${VIEW.width} ${VIEW.height}`,
      role: 'img',
      'aria-label': `${spec.title} by prompt, for ${names}${known.length ? '' : ': not measured yet'}`,
      'data-panel': spec.key,
    },
    h('text', { class: 'panel-title', x: 4, y: 12 }, spec.title),
    axesTree(prompts, highest, scale),
    series.map((s) => seriesTree(spec, s, scale)),
  );
}

/**
 * The chart of `runs` (see compareRuns): {prompts, legend, panels}, nodes for `render`; null
 * while no run has a number (nothing to show).
 */
export function chartTree(runs) {
  const measured = runs.filter((run) => run.ttft_ms !== null || run.tokens_per_s !== null);
  if (!measured.length) return null;
  const series = seriesOf(measured);
  const prompts = [...new Set(measured.map((run) => run.prompt))].sort((a, b) => a - b);
  return {
    prompts: prompts.length,
    legend: series.map((s) =>
      h(
        'span',
        { class: `legend-item series-${s.index % SERIES_COLOURS}`, 'data-model': s.model },
        h('span', { class: 'swatch', 'aria-hidden': 'true' }),
        s.name,
      ),
    ),
    panels: PANELS.map((spec) => panelTree(spec, series, prompts)),
  };
}

/** A node of chartTree as DOM: elements made one by one, text as text nodes. */
export function render(node, inSvg = false) {
  if (typeof node === 'string') return document.createTextNode(node);
  const svg = inSvg || node.tag === 'svg';
  const element = svg ? document.createElementNS(SVG_NS, node.tag) : document.createElement(node.tag);
  for (const [name, value] of Object.entries(node.attrs)) element.setAttribute(name, String(value));
  element.append(...node.children.map((child) => render(child, svg)));
  return element;
}

/** The chart above the message box (#compare-chart), hidden while there is nothing to show. */
export class CompareChart {
  /** @param {HTMLElement} element #compare-chart, with a .compare-legend and a .compare-panels */
  constructor(element) {
    this.element = element;
    this.legend = element.querySelector('.compare-legend');
    this.panels = element.querySelector('.compare-panels');
    this.runs = [];
    this.key = '[]';
    this.frame = 0;
  }

  /** The conversation's runs changed: drawn at the next frame (numbers of both sides arriving in
   * one frame cost one draw). */
  show(runs) {
    const key = JSON.stringify(runs);
    if (key === this.key) return;
    this.key = key;
    this.runs = runs;
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.frame = 0;
    const chart = chartTree(this.runs);
    this.element.hidden = !chart;
    this.element.dataset.prompts = String(chart ? chart.prompts : 0);
    this.legend.replaceChildren(...(chart ? chart.legend.map((node) => render(node)) : []));
    this.panels.replaceChildren(...(chart ? chart.panels.map((node) => render(node)) : []));
  }
}
