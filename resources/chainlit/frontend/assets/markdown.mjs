// Markdown to safe HTML nodes: marked parses (GitHub flavour; in answers, line breaks kept as the
// model wrote them), DOMPurify removes anything active. Links open outside the chat.
import { Marked } from './vendor/marked.mjs';
import DOMPurify from './vendor/purify.mjs';

const answers = new Marked({ gfm: true, breaks: true });
const documents = new Marked({ gfm: true });

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

const SAFE = { FORBID_TAGS: ['style', 'form', 'input', 'button'], RETURN_DOM_FRAGMENT: true };

/**
 * `text` as safe nodes, ready to insert (parsed once: not again by innerHTML).
 * @param {boolean} lineBreaks every line break is kept (a model's answer), or only blank lines
 *   start a new paragraph (a document such as the welcome text)
 */
export function markdownFragment(text, lineBreaks = true) {
  return DOMPurify.sanitize((lineBreaks ? answers : documents).parse(text), SAFE);
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/;

/**
 * Where the finished blocks of a streaming text end: at the start of its last line that begins a
 * new block, a line at the left margin after a blank line outside a fenced code block (an
 * indented line may continue a list item or a code block). `from` is such a point, or 0.
 */
export function finishedBlocksEnd(text, from = 0) {
  let end = from;
  let fence = null;
  let blank = false;
  for (let start = from; start < text.length; ) {
    const newline = text.indexOf('\n', start);
    const line = text.slice(start, newline < 0 ? text.length : newline);
    if (!fence && blank && /^\S/.test(line)) end = start;
    if (newline < 0) break; // the last line is still being written
    const marker = FENCE.exec(line);
    if (fence) {
      if (marker && marker[1][0] === fence[0] && marker[1].length >= fence.length) fence = null;
    } else if (line.trim() === '') {
      blank = true;
    } else {
      blank = false;
      if (marker) fence = marker[1];
    }
    start = newline + 1;
  }
  return end;
}

/**
 * A model's answer shown in `element` as it streams. Blocks that are finished are drawn once and
 * kept; each draw parses only the block still being written, so a long answer costs no more to
 * draw than a short one. The whole answer is drawn again once it is complete.
 */
export class MarkdownView {
  constructor(element) {
    this.element = element;
    this.finished = ''; // the text of the blocks drawn for good
    this.kept = 0; // how many of the element's children they are
  }

  show(text, streaming) {
    if (!streaming || !text.startsWith(this.finished)) {
      this.finished = '';
      this.kept = 0;
      if (!streaming) {
        this.element.replaceChildren(markdownFragment(text));
        return;
      }
    }
    const children = this.element.childNodes;
    while (children.length > this.kept) this.element.lastChild.remove();
    const end = finishedBlocksEnd(text, this.finished.length);
    if (end > this.finished.length) {
      this.element.append(markdownFragment(text.slice(this.finished.length, end)));
      this.finished = text.slice(0, end);
      this.kept = children.length;
    }
    this.element.append(markdownFragment(text.slice(this.finished.length)));
  }
}
