// "Your files": the folders and files the chat can answer from. The user adds one (its path typed
// or pasted, or chosen in the window's folder dialog), removes one, or has the app's indexer look
// for changes now; the dialog shows what the index holds, how far the indexer is, and the files
// it could not read. While it is open it asks the chat server for the state (GET /files/state)
// every second; closed, it asks nothing.
import { ApiError, chooseFolderInto, folderDialog } from './api.mjs';

const POLL_MS = 1000;
const CONFIRM_MS = 4000;

function count(n) {
  return Number(n || 0).toLocaleString('en-US');
}

function plural(n, one, many = `${one}s`) {
  return `${count(n)} ${n === 1 ? one : many}`;
}

function element(dialog, id) {
  return dialog.querySelector(`#${id}`);
}

export class FilesDialog {
  /**
   * @param {HTMLDialogElement} dialog #files
   * @param {import('./api.mjs').ChatApi} api
   * @param {() => void} closed called once the dialog was closed
   */
  constructor(dialog, api, closed) {
    this.dialog = dialog;
    this.api = api;
    this.closed = closed;
    this.timer = 0;
    this.polling = false;
    this.busy = false;
    this.changes = 0; // counts the user's changes: a state asked for before one is stale
    this.rows = new Map(); // a source's path -> {item, counts, remove}
    this.skippedKey = '';
    this.status = element(dialog, 'files-status');
    this.progress = element(dialog, 'files-progress');
    this.current = element(dialog, 'files-current');
    this.list = element(dialog, 'files-sources');
    this.empty = element(dialog, 'files-empty');
    this.skipped = element(dialog, 'files-skipped');
    this.skippedSummary = element(dialog, 'files-skipped-summary');
    this.skippedList = element(dialog, 'files-skipped-list');
    this.form = element(dialog, 'files-add-form');
    this.path = element(dialog, 'files-path');
    this.addButton = element(dialog, 'files-add');
    this.chooseButton = element(dialog, 'files-choose');
    this.reindexButton = element(dialog, 'files-reindex');
    this.error = element(dialog, 'files-error');
    this.bind();
  }

  bind() {
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.add(this.path.value);
    });
    this.chooseButton.addEventListener('click', () => this.choose());
    this.reindexButton.addEventListener('click', () => this.act(() => this.api.reindexFiles()));
    this.list.addEventListener('click', (event) => {
      const button = event.target.closest('button.files-remove');
      if (button) this.confirmRemove(button);
    });
    this.dialog.addEventListener('click', (event) => {
      if (event.target === this.dialog) this.dialog.close(); // the backdrop
    });
    this.dialog.addEventListener('close', () => {
      clearTimeout(this.timer);
      this.closed();
    });
    // pywebview adds its API to the page after it loaded; a browser never does.
    window.addEventListener('pywebviewready', () => this.offerDialog());
  }

  open() {
    this.offerDialog();
    this.error.hidden = true;
    if (!this.dialog.open) this.dialog.showModal();
    this.path.focus();
    this.poll();
  }

  offerDialog() {
    this.chooseButton.hidden = !folderDialog();
  }

  /** Ask for the state, draw it, and ask again in a second while the dialog is open. */
  async poll() {
    clearTimeout(this.timer);
    if (this.polling) return; // the one under way asks again when done
    this.polling = true;
    const changes = this.changes;
    try {
      const state = await this.api.filesState();
      if (changes === this.changes) this.show(state);
    } catch (error) {
      this.status.textContent = `Your files could not be shown: ${error.message}.`;
    } finally {
      this.polling = false;
    }
    if (this.dialog.open) this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  show(state) {
    this.drawStatus(state);
    this.drawSources(Array.isArray(state.sources) ? state.sources : []);
    this.drawSkipped(Array.isArray(state.skipped) ? state.skipped : [], state.skipped_count || 0);
  }

  drawStatus(state) {
    const indexing = state.indexing;
    const embedding = indexing?.state === 'embedding'; // passages given a vector (an embedding model)
    const busy = indexing?.state === 'indexing' || embedding;
    const total = busy ? indexing.total || 0 : 0;
    let line = '';
    if (embedding && total) line = `Reading ${count(indexing.done)} of ${plural(total, 'passage')} for meaning…`;
    else if (busy && total) line = `Indexing ${count(indexing.done)} of ${plural(total, 'file')}…`;
    else if (busy) line = 'Looking for files…';
    else if (indexing?.state === 'starting') line = 'The indexer is starting…';
    else if (indexing?.summary) line = `Last indexing: ${indexing.summary}.`;
    this.status.textContent = line;
    this.progress.hidden = !total;
    this.progress.max = total || 1;
    this.progress.value = Math.min(indexing?.done || 0, total);
    this.current.textContent = busy ? indexing.current || '' : '';
  }

  /** One row per folder or file added, kept from one state to the next: a Remove button keeps
   * its focus (and its "Really remove?") while the counts change under it. */
  drawSources(sources) {
    const shown = new Set();
    sources.forEach((source, position) => {
      shown.add(source.path);
      let row = this.rows.get(source.path);
      if (!row) {
        row = this.sourceRow(source.path);
        this.rows.set(source.path, row);
      }
      const parts = [plural(source.files, 'file')];
      if (source.skipped) parts.push(`${count(source.skipped)} skipped`);
      if (source.exists === false) parts.push('not found on this computer');
      row.counts.textContent = parts.join(' · ');
      row.item.classList.toggle('missing', source.exists === false);
      const there = this.list.children[position];
      if (there !== row.item) this.list.insertBefore(row.item, there || null);
    });
    for (const [path, row] of this.rows) {
      if (shown.has(path)) continue;
      row.item.remove();
      this.rows.delete(path);
    }
    this.empty.hidden = sources.length > 0;
  }

  sourceRow(path) {
    const item = document.createElement('li');
    item.className = 'files-source';
    const name = document.createElement('span');
    name.className = 'files-source-path';
    name.textContent = path;
    name.title = path;
    const counts = document.createElement('span');
    counts.className = 'files-source-counts';
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'files-remove';
    remove.dataset.path = path;
    remove.textContent = 'Remove';
    remove.setAttribute('aria-label', `Remove ${path} from your files`);
    item.append(name, counts, remove);
    return { item, counts, remove };
  }

  drawSkipped(skipped, total) {
    const key = JSON.stringify([total, skipped]);
    if (key === this.skippedKey) return; // the list stays open, and scrolled, as the user left it
    this.skippedKey = key;
    this.skipped.hidden = !total;
    this.skippedSummary.textContent = `${plural(total, 'file')} could not be read`;
    const items = skipped.map(({ path, reason }) => {
      const item = document.createElement('li');
      const where = document.createElement('span');
      where.className = 'files-skipped-path';
      where.textContent = path;
      item.append(where, ` — ${reason}`);
      return item;
    });
    if (total > skipped.length) {
      const more = document.createElement('li');
      more.className = 'files-skipped-more';
      more.textContent = `…and ${count(total - skipped.length)} more.`;
      items.push(more);
    }
    this.skippedList.replaceChildren(...items);
  }

  async add(path) {
    if (!path.trim()) {
      this.fail('Type or paste the path of a folder or file.');
      this.path.focus();
      return;
    }
    if (await this.act(() => this.api.addFiles(path.trim()))) {
      this.path.value = '';
    } else {
      this.path.focus();
      this.path.select();
    }
  }

  async choose() {
    await chooseFolderInto(this.path, (folder) => this.add(folder), (message) => this.fail(message));
  }

  /** The first click asks ("Really remove?"), the second removes. */
  async confirmRemove(button) {
    if (!button.classList.contains('confirm')) {
      button.classList.add('confirm');
      button.textContent = 'Really remove?';
      setTimeout(() => {
        button.classList.remove('confirm');
        button.textContent = 'Remove';
      }, CONFIRM_MS);
      return;
    }
    await this.act(() => this.api.removeFiles(button.dataset.path));
  }

  /** Run one change with the buttons disabled; false (and the reason shown) if refused. */
  async act(request) {
    if (this.busy) return false;
    this.busy = true;
    this.changes += 1;
    this.error.hidden = true;
    const buttons = this.dialog.querySelectorAll('button:not(#files-close)');
    this.dialog.setAttribute('aria-busy', 'true');
    for (const button of buttons) button.disabled = true;
    try {
      this.show(await request());
      return true;
    } catch (error) {
      const unanswered = `The chat server did not answer (${error.message}).`;
      this.fail(error instanceof ApiError ? error.message : unanswered);
      return false;
    } finally {
      this.busy = false;
      this.dialog.removeAttribute('aria-busy');
      for (const button of buttons) button.disabled = false;
      // The button pressed was disabled, or removed with its row: the focus goes to the path.
      if (!this.dialog.contains(document.activeElement) && this.dialog.open) this.path.focus();
    }
  }

  fail(message) {
    this.error.textContent = message;
    this.error.hidden = false;
  }
}
