// The conversation on screen: the chat's messages (Chainlit steps), drawn at most once a frame.
//
// A change is drawn at once when the page has painted everything drawn before (an answer's
// first words are ready for the very next frame); otherwise it waits for the next frame the page
// has not drawn for. However fast the model streams, the page does one small piece of work per
// frame and never falls behind. Steps that are not messages (Chainlit's runs) are not shown;
// while an answer is on its way and has no text yet, three dots say so (after a moment: a fast
// model's first words come before they would, and there is nothing to flicker). The newest
// answer, when it did not end by itself, offers what helps: Retry (its model's runtime stopped)
// or Continue (it reached Max tokens). An answer made from the user's files lists its sources
// under it (citations.mjs). In compare mode the two answers to a prompt sit side by side, each
// with its model, its numbers and a "Better" mark (compare.mjs).
import { citationsOf, citedIn, linkMarkers, sourcesRow } from './citations.mjs';
import { compareOf, compareRuns, hasEnded, numbersText } from './compare.mjs';
import { MarkdownView } from './markdown.mjs';

const SHOWN_TYPES = new Set(['user_message', 'assistant_message']);
const FOOTER = /\n\n— \*(computed [^\n]*)\*$/; // where the answer was computed (answers.py)
const ENDING = / \*\((?:stopped|cut off at Max tokens|interrupted)\)\*$/; // app.py's ENDING_SAID
const RETRY = { name: 'retry', label: 'Retry', title: 'Ask the model again' };
const ACTIONS = { // by how the answer ended: app.py's Ending.offers
  interrupted: RETRY,
  failed: RETRY,
  cut: { name: 'continue', label: 'Continue', title: 'Let the model go on with this answer' },
};
const NEAR_BOTTOM_PX = 48;
const THINKING_DELAY_MS = 300;

function metadataOf(step) {
  let metadata = step.metadata || {};
  if (typeof metadata === 'string') {
    try {
      metadata = JSON.parse(metadata);
    } catch {
      metadata = {};
    }
  }
  return metadata && typeof metadata === 'object' ? metadata : {};
}

/** What a user copies from an answer: its text without the line that says where it was made. */
export function answerText(output) {
  return output.replace(FOOTER, '').replace(ENDING, '').trimEnd();
}

export class Conversation {
  /**
   * @param {HTMLElement} container the scrolling element the messages go into
   * @param {HTMLElement} welcome shown while the conversation is empty
   * @param {(name: string, stepId: string, payload?: object) => Promise<void>|void} act runs an
   *   answer's action (Retry, Continue, a compared answer's "Better")
   * @param {(citation: object) => void} cite shows a source of an answer (its passage)
   * @param {(runs: object[]) => void} compared the compared answers' numbers changed (compareRuns)
   */
  constructor(container, welcome, act, cite, compared = () => {}) {
    this.container = container;
    this.welcome = welcome;
    this.act = act;
    this.cite = cite;
    this.compared = compared;
    this.action = document.createElement('button');
    this.action.type = 'button';
    this.action.className = 'answer-action';
    this.action.addEventListener('click', () => {
      this.action.disabled = true;
      this.act(this.action.dataset.name, this.action.dataset.stepId);
    });
    this.entries = new Map(); // id -> {step, element, content, view, sources, sourcesKey, compare…}
    this.dirty = new Set();
    this.groups = new Map(); // a compare group -> its row (.compare-group) of two answers
    this.compareChanged = false; // a compared answer's numbers changed since the last draw
    this.running = false;
    this.runningSince = 0;
    this.thinkingTimer = 0;
    this.stickToBottom = true;
    this.frame = 0; // the pending animation frame request
    this.changed = false; // something changed since the last draw
    this.unpainted = false; // drawn outside a frame: the next frame paints it
    this.thinking = document.createElement('div');
    this.thinking.className = 'thinking';
    this.thinking.setAttribute('aria-label', 'The model is answering');
    this.thinking.innerHTML = '<span></span><span></span><span></span>';
    container.addEventListener('click', (event) => this.clicked(event));
    container.addEventListener('scroll', () => {
      const { scrollTop, scrollHeight, clientHeight } = container;
      this.stickToBottom = scrollHeight - scrollTop - clientHeight < NEAR_BOTTOM_PX;
    });
  }

  /** Show `steps` (a resumed chat, or nothing for a new one) instead of what is shown. */
  reset(steps = []) {
    for (const { element } of this.entries.values()) element.remove();
    for (const group of this.groups.values()) group.remove();
    this.entries.clear();
    this.groups.clear();
    this.dirty.clear();
    this.compareChanged = true;
    const sorted = [...steps].sort((a, b) => String(a.createdAt).localeCompare(String(b.createdAt)));
    for (const step of sorted) this.add(step);
    this.stickToBottom = true;
    this.schedule();
  }

  /** A step, whole: a new message, or the final version of one. */
  put(step) {
    this.add(step);
    this.schedule();
  }

  add(step) {
    if (!SHOWN_TYPES.has(step.type)) return;
    const entry = this.entries.get(step.id);
    if (entry) {
      entry.step = { ...entry.step, ...step };
    } else {
      this.entries.set(step.id, this.create(step));
    }
    this.dirty.add(step.id);
  }

  /** More text for a streaming answer. */
  token(id, text, replace) {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.step.output = replace ? text : (entry.step.output || '') + text;
    entry.step.streaming = true; // until its final version comes
    this.dirty.add(id);
    this.schedule();
  }

  remove(id) {
    const entry = this.entries.get(id);
    if (!entry) return;
    const group = entry.compare && this.groups.get(entry.compare.group);
    entry.element.remove();
    this.entries.delete(id);
    if (group) {
      this.compareChanged = true;
      if (!group.childElementCount) {
        group.remove();
        this.groups.delete(entry.compare.group);
      }
      for (const other of this.entries.values()) {
        if (other.compare?.group === entry.compare.group) this.dirty.add(other.step.id); // its "Better"
      }
    }
    this.schedule();
  }

  setRunning(running) {
    if (running && !this.running) {
      this.runningSince = performance.now();
      clearTimeout(this.thinkingTimer);
      this.thinkingTimer = setTimeout(() => this.schedule(), THINKING_DELAY_MS + 10);
    }
    this.running = running;
    for (const entry of this.entries.values()) {
      if (!running && entry.step.streaming) {
        entry.step.streaming = false;
        this.dirty.add(entry.step.id);
      }
      if (entry.compare) this.dirty.add(entry.step.id); // a side that never streamed has ended too
    }
    this.schedule();
  }

  /** Keep the newest message in view (the user just sent one). */
  scrollToEnd() {
    this.stickToBottom = true;
    this.schedule();
  }

  get empty() {
    return this.entries.size === 0;
  }

  create(step) {
    const element = document.createElement('article');
    element.id = `step-${step.id}`;
    element.dataset.stepType = step.type;
    const content = document.createElement('div');
    content.className = 'content';
    element.append(content);
    if (step.type === 'assistant_message') {
      const copy = document.createElement('button');
      copy.type = 'button';
      copy.className = 'copy';
      copy.textContent = 'Copy';
      copy.addEventListener('click', () => this.copy(step.id, copy));
      element.append(copy);
    }
    this.container.insertBefore(element, this.thinking.parentNode ? this.thinking : null);
    const view = new MarkdownView(content);
    return { step: { ...step }, element, content, view, sources: null, sourcesKey: '[]' };
  }

  /** "Better" under a compared answer: the server marks it (or clears the mark) and sends both
   * answers again; the page shows the mark from their metadata, never from the click. */
  async markBetter(id, button) {
    const entry = this.entries.get(id);
    if (!entry?.compare) return;
    button.disabled = true; // until the server has answered (a second click would undo the first)
    try {
      await this.act('mark_better', id, { better: !entry.compare.better });
    } finally {
      button.disabled = false;
    }
  }

  /** A source of an answer was clicked: under it, or a [n] in its text. */
  clicked(event) {
    const button = event.target.closest('button.citation, button.cite-marker');
    const entry = button && this.entries.get(button.closest('article')?.id.slice('step-'.length));
    if (!entry) return;
    const citation = citationsOf(metadataOf(entry.step)).find((c) => String(c.n) === button.dataset.n);
    if (citation) this.cite(citation);
  }

  async copy(id, button) {
    const entry = this.entries.get(id);
    if (!entry) return;
    try {
      await navigator.clipboard.writeText(answerText(entry.step.output || ''));
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Could not copy';
    }
    setTimeout(() => {
      button.textContent = 'Copy';
    }, 1500);
  }

  schedule() {
    this.changed = true;
    if (this.frame) return;
    if (!this.unpainted) {
      this.draw();
      this.unpainted = true;
    }
    this.frame = requestAnimationFrame(() => this.onFrame());
  }

  onFrame() {
    this.frame = 0;
    if (this.unpainted) {
      // This frame paints what was drawn since the last one: what changed since waits a frame.
      this.unpainted = false;
      if (this.changed) this.frame = requestAnimationFrame(() => this.onFrame());
    } else if (this.changed) {
      this.draw();
    }
  }

  draw() {
    this.changed = false;
    const groups = new Set();
    for (const id of this.dirty) {
      const entry = this.entries.get(id);
      if (entry) this.drawEntry(entry);
      if (entry?.compare) groups.add(entry.compare.group);
    }
    this.dirty.clear();
    for (const group of groups) this.drawGroup(group);
    if (this.compareChanged) {
      this.compareChanged = false;
      const steps = [...this.entries.values()].map(({ step }) => ({ ...step, metadata: metadataOf(step) }));
      this.compared(compareRuns(steps));
    }
    this.welcome.hidden = !this.empty;
    this.placeAction();
    if (this.isThinking()) this.container.append(this.thinking);
    else this.thinking.remove();
    if (this.stickToBottom) this.container.scrollTop = this.container.scrollHeight;
  }

  drawEntry(entry) {
    const { step, element, content, view } = entry;
    const metadata = metadataOf(step);
    const isAnswer = step.type === 'assistant_message' && Boolean(metadata.answer);
    const compare = isAnswer ? compareOf(metadata) : null;
    element.className = [
      'message',
      step.type === 'user_message' ? 'user' : isAnswer ? 'answer' : 'notice',
      step.isError ? 'error' : '',
      step.streaming ? 'streaming' : '',
      compare ? 'compare-side' : '',
      compare?.better ? 'better' : '',
    ]
      .filter(Boolean)
      .join(' ');
    element.setAttribute('aria-busy', String(Boolean(step.streaming))); // read out once complete
    const text = step.output || '';
    if (step.type === 'user_message') {
      content.textContent = text;
      return;
    }
    content.classList.add('markdown');
    const footer = isAnswer && !step.streaming ? FOOTER.exec(text) : null;
    view.show(footer ? text.slice(0, footer.index) : text, Boolean(step.streaming));
    const citations = citationsOf(metadata);
    // Drawn whole once complete (a streaming answer keeps its finished blocks: left as they are).
    if (citations.length && !step.streaming) linkMarkers(content, citations);
    if (footer) {
      const where = document.createElement('p');
      where.className = 'where';
      where.textContent = footer[1];
      content.append(where);
    }
    this.drawSources(entry, step.streaming ? citations : citedIn(text, citations));
    if (compare) this.drawCompared(entry, compare);
  }

  /** A compared answer: in its group's row, with its model above and its numbers below. */
  drawCompared(entry, compare) {
    const key = JSON.stringify(compare);
    if (key !== entry.compareKey) this.compareChanged = true;
    entry.compareKey = key;
    entry.compare = compare;
    this.placeInGroup(entry);
    if (!entry.head) this.addCompareParts(entry);
    entry.head.textContent = compare.model;
    entry.head.title = compare.label;
    entry.ended = hasEnded(compare) || (!entry.step.streaming && !this.running);
    const numbers = entry.ended ? numbersText(compare) : 'answering…';
    entry.numbers.textContent = numbers;
    entry.numbers.classList.toggle('pending', !entry.ended);
    entry.better.setAttribute('aria-pressed', String(compare.better));
    entry.better.setAttribute('aria-label', `Better: ${compare.model}`); // two "Better" buttons, told apart
    entry.better.title = compare.better ? 'Clear the mark' : 'Mark this answer as the better of the two';
  }

  /** The head (the model) and foot (the numbers, "Better") of a compared answer, made once: a
   * button keeps focus while the answer is drawn again. */
  addCompareParts(entry) {
    entry.head = document.createElement('header');
    entry.head.className = 'compare-model';
    entry.element.prepend(entry.head);
    const foot = document.createElement('footer');
    foot.className = 'compare-foot';
    entry.numbers = document.createElement('p');
    entry.numbers.className = 'compare-numbers';
    entry.better = document.createElement('button');
    entry.better.type = 'button';
    entry.better.className = 'better-toggle';
    entry.better.textContent = 'Better';
    entry.better.hidden = true;
    const id = entry.step.id;
    entry.better.addEventListener('click', () => this.markBetter(id, entry.better));
    foot.append(entry.numbers, entry.element.querySelector('button.copy') || '', entry.better);
    entry.content.after(foot); // the sources, when there are some, come between
  }

  /** The row of the answer's group (made where its first answer is), side 0 on the left. */
  placeInGroup(entry) {
    const { group: key, side } = entry.compare;
    let group = this.groups.get(key);
    if (!group) {
      group = document.createElement('div');
      group.className = 'compare-group';
      group.dataset.group = key;
      group.setAttribute('role', 'group');
      group.setAttribute('aria-label', 'Two models answer');
      entry.element.before(group);
      this.groups.set(key, group);
    }
    if (entry.element.parentNode === group && entry.element.dataset.side === String(side)) return;
    entry.element.dataset.side = String(side);
    const others = [...group.children].filter((child) => child !== entry.element);
    const next = others.find((child) => Number(child.dataset.side) > side);
    group.insertBefore(entry.element, next || null);
  }

  /** "Better" under each answer of a group once both have ended. */
  drawGroup(key) {
    const sides = [...this.entries.values()].filter((entry) => entry.compare?.group === key && entry.head);
    const ended = sides.length === 2 && sides.every((entry) => entry.ended);
    for (const entry of sides) entry.better.hidden = !ended;
  }

  /** The row of sources under an answer, made again only when they change (a button keeps focus
   * while the answer's text is drawn again). */
  drawSources(entry, citations) {
    const key = JSON.stringify(citations);
    if (key === entry.sourcesKey) return;
    entry.sourcesKey = key;
    entry.sources?.remove();
    entry.sources = citations.length ? sourcesRow(citations) : null;
    if (entry.sources) entry.content.after(entry.sources);
  }

  /** Under the newest answer (no message of the user's after it), when no answer is running:
   * Retry or Continue, if it ended so. */
  placeAction() {
    if (this.running) {
      this.action.remove(); // and no walk over the messages at every frame of an answer
      return;
    }
    let newest = null;
    for (const entry of [...this.entries.values()].reverse()) {
      if (entry.step.type === 'user_message') break;
      if (metadataOf(entry.step).answer) {
        newest = entry;
        break;
      }
    }
    // None under compared answers: it would make one of the two models answer again, alone.
    const ending = newest && !newest.step.streaming && !newest.compare && metadataOf(newest.step).ending;
    const action = ending && ACTIONS[ending];
    if (!action) {
      this.action.remove();
      return;
    }
    if (this.action.parentNode !== newest.element || this.action.dataset.stepId !== newest.step.id) {
      Object.assign(this.action.dataset, { name: action.name, stepId: newest.step.id });
      this.action.textContent = action.label;
      this.action.title = action.title;
      this.action.disabled = false;
      newest.element.append(this.action);
    }
  }

  /** An answer is on its way but shows no text yet. */
  isThinking() {
    if (!this.running || performance.now() - this.runningSince < THINKING_DELAY_MS) return false;
    const last = [...this.entries.values()].at(-1);
    if (!last || last.step.type === 'user_message') return true;
    if (last.compare) return false; // each side says "answering…" itself
    return !metadataOf(last.step).answer || !last.step.output;
  }
}
