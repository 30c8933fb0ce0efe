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
