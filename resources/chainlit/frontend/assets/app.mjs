// Foundry Desk's chat page: wires the conversation, the composer, the past chats and the
// settings to one live chat session at a time. `/` is a new chat, `/thread/<id>` a stored one;
// moving between chats changes the address without reloading the page. `#files` opens "Your
// files" (the tray's "Add folder…" opens the window there).
import { ChatApi } from './api.mjs';
import { PassageDialog } from './citations.mjs';
import { CompareChart } from './compare.mjs';
import { Conversation } from './conversation.mjs';
import { FilesDialog } from './files.mjs';
import { markdownFragment } from './markdown.mjs';
import { ChatSession } from './session.mjs';
import { SettingsDialog } from './settings.mjs';
import { SetupView } from './setup.mjs';
import { ThreadList } from './threads.mjs';

const TITLE_CHARS = 80;
const MAX_MESSAGE_CHARS = 500_000; // the longest message the chat takes (desktop/chat/trimming.py)
const TOO_LONG = 'message-too-long'; // the id of the note that says a message was too long to send
const NARROW = window.matchMedia('(max-width: 760px)');
const BLANK = /^[\s\p{Cf}\p{Cc}]*$/u; // nothing to send: spaces, zero-width and control characters
const FILES_HASH = '#files';
const USE_FILES = 'use_files'; // the chat setting the composer's "Use my files" shows (app.py)
const COMPARE_WITH = 'compare_with'; // the chat setting of compare mode: "" (off) or what to compare with

function element(id) {
  return document.getElementById(id);
}

function threadFromPath(path) {
  const match = /^\/thread\/([^/]+)\/?$/.exec(path);
  return match ? decodeURIComponent(match[1]) : null;
}

function shortTitle(text) {
  const line = text.trim().split('\n')[0];
  return line.length > TITLE_CHARS ? `${line.slice(0, TITLE_CHARS - 1)}…` : line;
}

class ChatPage {
  constructor() {
    this.api = new ChatApi();
    this.app = element('app');
    this.input = element('chat-input');
    this.submit = element('chat-submit');
    this.stopButton = element('stop-button');
    this.banner = element('connection-banner');
    this.title = element('chat-title');
    this.modelChip = element('model-chip');
    this.settingsButton = element('chat-settings-open-modal');
    this.useFiles = element('use-files');
    this.compareChip = element('compare-chip');
    this.toasts = element('toasts');
    this.passage = new PassageDialog(element('passage'), this.api);
    this.chart = new CompareChart(element('compare-chart'));
    this.conversation = new Conversation(
      element('messages'),
      element('welcome'),
      (name, stepId, payload) => this.session?.act(name, stepId, this.api, payload),
      (citation) => this.passage.show(citation),
      (runs) => this.chart.show(runs),
    );
    this.threads = new ThreadList(element('thread-history'), element('thread-search'), this.api, {
      open: (threadId) => this.go(threadId),
      deleted: (threadId) => {
        if (threadId === this.session?.threadId) this.go(null);
      },
    });
    this.settings = new SettingsDialog(element('settings-dialog'), element('settings-fields'), (values) => {
      this.session?.changeSettings(values);
      this.showUseFiles();
      this.showCompareWith();
    });
    this.files = new FilesDialog(element('files'), this.api, () => this.filesClosed());
    this.setup = new SetupView(element('setup'), this.api, (shown) => this.showSetup(shown));
    this.session = null;
    this.sendWhenReady = false; // Enter was pressed while a new chat was still starting
    this.bind();
  }

  start() {
    this.open(threadFromPath(window.location.pathname));
    this.threads.refresh();
    this.showWelcome();
    this.setup.start();
    if (window.location.hash === FILES_HASH) this.files.open();
  }

  bind() {
    element('message-composer').addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener('input', () => {
      this.fitInput();
      this.updateComposer();
    });
    this.stopButton.addEventListener('click', () => this.session?.stop());
    this.settingsButton.addEventListener('click', () => this.settings.open());
    element('files-button').addEventListener('click', () => this.files.open());
    this.useFiles.addEventListener('change', () => this.settings.set(USE_FILES, this.useFiles.checked));
    this.compareChip.addEventListener('click', () => this.settings.open());
    element('new-chat').addEventListener('click', (event) => {
      event.preventDefault();
      this.go(null);
    });
    element('sidebar-toggle').addEventListener('click', () => this.toggleSidebar());
    document.querySelector('main.chat').addEventListener('pointerdown', (event) => {
      if (NARROW.matches && !event.target.closest('#sidebar-toggle')) this.toggleSidebar(false);
    });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.session?.running && !document.querySelector('dialog[open]')) {
        this.session.stop();
      } else if (event.key.toLowerCase() === 'o' && event.shiftKey && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.go(null);
      }
    });
    window.addEventListener('popstate', () => this.open(threadFromPath(window.location.pathname)));
    window.addEventListener('hashchange', () => {
      if (window.location.hash === FILES_HASH) this.files.open();
    });
  }

  /** "Your files" closed: the address loses its #files, so that the tray's "Add folder…" opens the
   * dialog again (a hash that changes), and a reload does not. */
  filesClosed() {
    if (window.location.hash !== FILES_HASH) return;
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
  }

  /** The user moves to another chat (null: a new one). */
  go(threadId) {
    const path = threadId ? `/thread/${encodeURIComponent(threadId)}` : '/';
    if (window.location.pathname !== path) window.history.pushState(null, '', path);
    if (NARROW.matches) this.toggleSidebar(false);
    this.open(threadId);
  }

  open(threadId) {
    this.session?.close();
    this.conversation.reset();
    this.conversation.setRunning(false);
    this.title.textContent = threadId ? '' : 'New chat';
    this.threads.setCurrent(threadId);
    this.sendWhenReady = false;
    this.session = new ChatSession(threadId, this.sessionEvents(), () => this.api.signIn());
    this.updateComposer();
    this.input.focus();
  }

  sessionEvents() {
    return {
      connection: (state, detail) => this.showConnection(state, detail),
      ready: () => {
        this.updateComposer();
        if (this.sendWhenReady) this.send();
      },
      running: (running) => {
        this.conversation.setRunning(running);
        this.updateComposer();
        // An answer ended: its chat moves to the top of the past chats.
        const { connected, threadId } = this.session;
        if (!running && connected && threadId) this.threads.touch(threadId);
      },
      step: (step) => this.conversation.put(step),
      streamStart: (step) => this.conversation.put({ ...step, streaming: true }),
      token: (id, text, replace) => this.conversation.token(id, text, replace),
      removeStep: (id) => this.conversation.remove(id),
      thread: (thread) => {
        this.conversation.reset(thread.steps || []);
        this.title.textContent = thread.name || 'Untitled chat';
      },
      threadMissing: (error) => {
        const reason = error || 'not found';
        this.toast(`That chat could not be opened (${reason}): here is a new one.`, 'warning');
        this.go(null);
      },
      named: (threadId) => {
        const path = `/thread/${encodeURIComponent(threadId)}`;
        if (window.location.pathname !== path) window.history.replaceState(null, '', path);
        this.threads.setCurrent(threadId);
        this.threads.refresh();
      },
      settings: (inputs) => {
        this.settings.setInputs(inputs);
        this.settingsButton.disabled = !this.settings.inputs.length;
        const model = this.settings.model;
        this.modelChip.hidden = !model;
        this.modelChip.textContent = model || '';
        this.showUseFiles();
        this.showCompareWith();
      },
      toast: (message, type) => this.toast(message, type),
    };
  }

  /** Send what the message box holds. While the chat is still starting (just opened), it goes
   * once the chat is ready; while the connection is lost, it stays in the box. */
  send() {
    const text = this.input.value.trim();
    const session = this.session;
    this.sendWhenReady = false;
    if (BLANK.test(text) || !session || session.running) return;
    if (!session.ready) {
      this.sendWhenReady = ['connecting', 'connected'].includes(this.app.dataset.connection);
      return;
    }
    if (text.length > MAX_MESSAGE_CHARS) {
      this.refuseTooLong(text.length);
      return;
    }
    this.conversation.remove(TOO_LONG);
    if (this.conversation.empty) this.title.textContent = shortTitle(text);
    this.conversation.put(session.send(text));
    this.conversation.scrollToEnd();
    this.input.value = '';
    this.input.style.height = ''; // empty: its one line, without measuring (no layout on send)
    this.updateComposer();
  }

  /** A message longer than the chat takes is not sent: it stays in the message box, and the
   * conversation says why. */
  refuseTooLong(length) {
    const count = (n) => n.toLocaleString('en-US');
    this.conversation.remove(TOO_LONG);
    this.conversation.put({
      id: TOO_LONG,
      type: 'assistant_message',
      isError: true,
      createdAt: new Date().toISOString(),
      output:
        `Not sent: your message is ${count(length)} characters long, and the chat takes at most ` +
        `${count(MAX_MESSAGE_CHARS)}. It is still in the message box: shorten it, or send it in parts.`,
    });
    this.conversation.scrollToEnd();
  }

  /** The composer's "Use my files", shown when the chat has that setting, and showing its value. */
  showUseFiles() {
    const field = this.settings.input(USE_FILES);
    const shown = field?.type === 'switch';
    element('use-files-label').hidden = !shown;
    this.useFiles.checked = shown && Boolean(field.initial);
    this.useFiles.disabled = !shown || Boolean(field.disabled);
  }

  /** "Comparing with …" by the message box while the chat is in compare mode (a click changes it
   * in the settings). */
  showCompareWith() {
    const field = this.settings.input(COMPARE_WITH);
    const value = field?.type === 'select' ? this.settings.selected(field) : '';
    const item = value ? field.items?.find((candidate) => candidate.value === value) : null;
    this.compareChip.hidden = !value;
    this.compareChip.textContent = value ? `Comparing with ${item?.label || value}` : '';
    this.compareChip.dataset.value = value;
  }

  updateComposer() {
    const running = Boolean(this.session?.running);
    const ready = Boolean(this.session?.ready);
    this.submit.hidden = running;
    this.stopButton.hidden = !running;
    this.submit.disabled = !ready || BLANK.test(this.input.value);
    this.app.dataset.ready = String(ready); // a message sent now is taken
  }

  /** The message box grows with its text, up to a limit (then it scrolls). */
  fitInput() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, 240)}px`;
  }

  showConnection(state, detail) {
    const messages = {
      reconnecting:
        'Reconnecting to the chat server… What you type is kept; send it once this note is gone.',
      refused:
        `The chat server refused this page (${detail}). Reload the page; if that does not help, ` +
        'quit Foundry Desk and start it again.',
    };
    this.app.dataset.connection = state;
    this.banner.hidden = !(state in messages);
    this.banner.textContent = messages[state] || '';
    this.banner.classList.toggle('error', state === 'refused');
    this.updateComposer();
  }

  async showWelcome() {
    try {
      const project = await this.api.project();
      element('welcome').replaceChildren(markdownFragment(project.markdown || '', false));
    } catch {
      // the welcome text is a nicety: the chat works without it
    }
  }

  /** The first run's setup view takes the chat's place while there is no model to chat with. */
  showSetup(shown) {
    document.querySelector('main.chat').classList.toggle('needs-setup', shown);
    if (!shown) this.input.focus();
  }

  toggleSidebar(open = !this.app.classList.contains('sidebar-open')) {
    this.app.classList.toggle('sidebar-open', open);
    element('sidebar-toggle').setAttribute('aria-expanded', String(open));
  }

  toast(message, type = 'info') {
    const toast = document.createElement('div');
    toast.className = `toast ${type}`;
    toast.textContent = message;
    this.toasts.append(toast);
    setTimeout(() => toast.remove(), 5000);
  }
}

new ChatPage().start();
