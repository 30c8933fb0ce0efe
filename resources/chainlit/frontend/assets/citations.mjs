// The sources of an answer made from the user's files. The chat server keeps them in the answer's
// metadata (`citations`: [{n, path, name, where, text}]), so a resumed chat shows them again; the
// answer's text refers to them as [1], [2]. Under the answer, one button per source; a click
// (on it, or on a [n] in the text) shows the passage, from which the file can be opened.
import { ApiError } from './api.mjs';

const MARKER = /\[(\d{1,3})\]/g;
const NOT_LINKED = 'code, pre, a, button'; // a [1] in code is code; links and buttons stay as they are

function wellFormed(c) {
  if (!c || typeof c !== 'object' || typeof c.path !== 'string' || !c.path) return false;
  const n = typeof c.n === 'string' ? Number(c.n) : c.n;
  return Number.isInteger(n) && n >= 1;
}

/** The well-formed citations in an answer's metadata, in order (none when there are none). */
export function citationsOf(metadata) {
  const given = Array.isArray(metadata?.citations) ? metadata.citations : [];
  return given
    .filter(wellFormed)
    .map((c) => ({
      n: Number(c.n),
      path: c.path,
      name: typeof c.name === 'string' && c.name ? c.name : c.path.split(/[\\/]/).pop(),
      where: typeof c.where === 'string' ? c.where : '',
      text: typeof c.text === 'string' ? c.text : '',
    }));
}

/** The citations an answer's text refers to ([n]); all of them when it refers to none (a model
 * that did not follow the instruction to cite still had them before the question). */
export function citedIn(text, citations) {
  const cited = new Set([...text.matchAll(MARKER)].map((match) => Number(match[1])));
  const shown = citations.filter((citation) => cited.has(citation.n));
  return shown.length ? shown : citations;
}

/** "[2] report.pdf · page 3" */
export function citationLabel(citation) {
  return `[${citation.n}] ${citation.name}${citation.where ? ` · ${citation.where}` : ''}`;
}

/** The row of source buttons under an answer. */
export function sourcesRow(citations) {
  const row = document.createElement('div');
  row.className = 'sources';
  row.setAttribute('role', 'group');
  row.setAttribute('aria-label', 'Sources');
  const label = document.createElement('span');
  label.className = 'sources-label';
  label.textContent = 'Sources';
  row.append(label);
  for (const citation of citations) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'citation';
    button.dataset.n = String(citation.n);
    button.textContent = citationLabel(citation);
    button.title = citation.path;
    row.append(button);
  }
  return row;
}

/**
 * Each [n] in the rendered answer under `root` that names one of `citations` becomes a button
 * (class `cite-marker`, `data-n`). Only text nodes are split, after the markdown was made safe:
 * nothing here is parsed as HTML.
 */
export function linkMarkers(root, citations) {
  const byNumber = new Map(citations.map((citation) => [citation.n, citation]));
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) =>
      node.parentElement?.closest(NOT_LINKED) || !node.nodeValue.includes('[')
        ? NodeFilter.FILTER_REJECT
        : NodeFilter.FILTER_ACCEPT,
  });
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  for (const node of nodes) {
    const text = node.nodeValue;
    const parts = [];
    let last = 0;
    for (const match of text.matchAll(MARKER)) {
      const citation = byNumber.get(Number(match[1]));
      if (!citation) continue;
      parts.push(text.slice(last, match.index), markerButton(citation, match[0]));
      last = match.index + match[0].length;
    }
    if (!parts.length) continue;
    parts.push(text.slice(last));
    node.replaceWith(...parts.filter((part) => part !== ''));
  }
}

function markerButton(citation, text) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'cite-marker';
  button.dataset.n = String(citation.n);
  button.textContent = text;
  button.setAttribute('aria-label', `Source ${citationLabel(citation)}`);
  return button;
}

/** The passage a citation points to, in a dialog: where it is, its text, and "Open file". */
export class PassageDialog {
  /**
   * @param {HTMLDialogElement} dialog #passage
   * @param {import('./api.mjs').ChatApi} api
   */
  constructor(dialog, api) {
    this.dialog = dialog;
    this.api = api;
    this.citation = null;
    this.name = dialog.querySelector('#passage-title');
    this.where = dialog.querySelector('#passage-where');
    this.path = dialog.querySelector('#passage-path');
    this.text = dialog.querySelector('#passage-text');
    this.error = dialog.querySelector('#passage-error');
    this.openButton = dialog.querySelector('#passage-open');
    this.openButton.addEventListener('click', () => this.openFile());
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close(); // the backdrop
    });
  }

  show(citation) {
    this.citation = citation;
    this.name.textContent = citation.name;
    this.where.textContent = citation.where;
    this.where.hidden = !citation.where;
    this.path.textContent = citation.path;
    this.text.textContent = citation.text; // the file's words, as text: never markup
    this.error.hidden = true;
    this.openButton.disabled = false;
    if (!this.dialog.open) this.dialog.showModal();
    this.openButton.focus();
  }

  async openFile() {
    const citation = this.citation;
    this.openButton.disabled = true;
    this.error.hidden = true;
    try {
      await this.api.openFile(citation.path);
      if (this.citation === citation) this.dialog.close(); // it is open in its application
    } catch (error) {
      if (this.citation !== citation) return;
      this.error.textContent =
        error instanceof ApiError ? error.message : `The chat server did not answer (${error.message}).`;
      this.error.hidden = false;
    } finally {
      this.openButton.disabled = false;
    }
  }
}
