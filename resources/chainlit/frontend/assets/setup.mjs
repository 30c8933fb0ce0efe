// The first run: shown instead of the chat while the local runtime has no model. The user
// chooses a model folder (the window's folder dialog, or its path typed or pasted), downloads the
// model the runtime offers, or, offline, tries again once connected. The view asks the chat
// server for the runtime's state (GET /setup/state) every second while it is shown, and now and
// then otherwise, and goes away by itself once a model is ready.
import { ApiError, chooseFolderInto, folderDialog } from './api.mjs';

const SHOWN_POLL_MS = 1000;
const HIDDEN_POLL_MS = 5000;
const WORKING = new Set(['starting', 'downloading', 'loading']);

function element(id) {
  return document.getElementById(id);
}

/** A download size as the catalog gives it (MB), the way file managers show it. */
export function sizeText(megabytes) {
  if (!megabytes) return '';
  return megabytes >= 1024 ? `${(megabytes / 1024).toFixed(1)} GB` : `${Math.round(megabytes)} MB`;
}

export class SetupView {
  /**
   * @param {HTMLElement} root the view (#setup)
   * @param {import('./api.mjs').ChatApi} api
   * @param {(shown: boolean) => void} shownChanged
   */
  constructor(root, api, shownChanged) {
    this.root = root;
    this.api = api;
    this.shownChanged = shownChanged;
    this.shown = false;
    this.busy = '';
    this.state = null;
    this.timer = 0;
    this.status = element('setup-status');
    this.progress = element('setup-progress');
    this.detail = element('setup-detail');
    this.error = element('setup-error');
    this.downloadButton = element('setup-download');
    this.retryButton = element('setup-retry');
    this.chooseButton = element('setup-choose-folder');
    this.form = element('setup-folder-form');
    this.path = element('setup-folder-path');
    this.pathLabel = element('setup-folder-label');
    this.bind();
  }

  start() {
    this.offerDialog();
    this.refresh();
  }

  bind() {
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.useFolder(this.path.value);
    });
    this.chooseButton.addEventListener('click', () => this.chooseFolder());
    this.downloadButton.addEventListener('click', () =>
      this.act('Starting the download…', () => this.api.downloadModel()),
    );
    this.retryButton.addEventListener('click', () =>
      this.act('Asking the model catalog again…', () => this.api.retryCatalog()),
    );
    // pywebview adds its API to the page after it loaded; a browser never does.
    window.addEventListener('pywebviewready', () => this.offerDialog());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.refresh();
    });
  }

  offerDialog() {
    const native = Boolean(folderDialog());
    this.chooseButton.hidden = !native;
    this.pathLabel.textContent = native ? "or paste the folder's path" : "Paste the model folder's path";
  }

  async refresh() {
    clearTimeout(this.timer);
    try {
      this.show(await this.api.setupState());
    } catch {
      // the chat server is restarting: the page says so elsewhere; ask again shortly
    }
    const quick = this.shown || !this.state || WORKING.has(this.state.state);
    this.timer = setTimeout(() => this.refresh(), quick ? SHOWN_POLL_MS : HIDDEN_POLL_MS);
  }

  /** Draw `state`; the view shows once setup is needed and stays until a model is ready. */
  show(state) {
    this.state = state;
    const shown = state.needed || (this.shown && state.state !== 'ready');
    if (shown !== this.shown) {
      this.shown = shown;
      this.root.hidden = !shown;
      this.shownChanged(shown);
      if (shown && !this.root.contains(document.activeElement)) this.path.focus();
    }
    if (shown) this.draw(state);
  }

  draw(state) {
    const alias = state.download?.alias || state.model;
    const size = sizeText(state.download?.size_mb);
    const offer = state.state === 'no_model' && state.download && state.downloads_allowed;
    const offline =
      state.state === 'no_model' && !offer && state.downloads_allowed && state.catalog_reachable === false;
    this.downloadButton.hidden = !offer;
    this.chooseButton.classList.toggle('primary', !offer); // the one way forward when nothing downloads
    this.downloadButton.textContent = size ? `Download ${alias} (${size})` : `Download ${alias}`;
    this.retryButton.hidden = !offline;
    this.progress.hidden = state.state !== 'downloading';
    const percent = Math.floor(state.progress || 0);
    this.progress.value = percent;
    this.progress.textContent = `${percent}%`;
    this.status.textContent = this.busy || this.sentence(state, alias, size, offer, offline, percent);
    const said = state.state === 'no_model' && state.message;
    this.detail.textContent = said ? `The model runtime says: ${state.message}` : '';
    for (const control of this.root.querySelectorAll('button, input')) control.disabled = Boolean(this.busy);
  }

  sentence(state, alias, size, offer, offline, percent) {
    if (state.state === 'downloading') return `Downloading ${alias}… ${percent}%`;
    if (state.state === 'loading') return `${state.message || 'Loading the model'}…`;
    if (state.state === 'starting') return state.message ? `${state.message}…` : 'Looking for a model…';
    if (state.state !== 'no_model') return state.message;
    if (offer) {
      const what = size ? `${alias} (${size})` : alias;
      return `Download ${what} from the Foundry Local catalog, or choose a model folder of your own.`;
    }
    if (state.offline_mode) {
      return (
        `Offline mode is on, so ${state.model} can't be downloaded. Choose a model folder of your own, ` +
        'or turn Offline mode off in the Foundry Desk tray menu.'
      );
    }
    if (!state.downloads_allowed) {
      return (
        `Downloads are turned off in settings, so ${state.model} can't be downloaded. ` +
        'Choose a model folder of your own.'
      );
    }
    if (offline) {
      return (
        `You're offline, so ${state.model} can't be downloaded now. Choose a model folder of your own, ` +
        'or connect to the internet and press Try again.'
      );
    }
    return 'Choose a model folder of your own.';
  }

  async chooseFolder() {
    await chooseFolderInto(this.path, (folder) => this.useFolder(folder), (message) => this.fail(message));
  }

  async useFolder(path) {
    if (!path.trim()) {
      this.fail('Type or paste the path of a model folder.');
      return;
    }
    const doing = `Loading the model in ${path.trim()}…`;
    const ok = await this.act(doing, () => this.api.chooseModelFolder(path));
    if (!ok) {
      this.path.focus();
      this.path.select();
    }
  }

  /** Run one request with the view disabled and `doing` shown; false (and the reason shown) if refused. */
  async act(doing, request) {
    if (this.busy) return false;
    this.busy = doing;
    this.error.hidden = true;
    if (this.state) this.draw(this.state);
    let ok = true;
    try {
      const answer = await request();
      this.busy = '';
      this.show('needed' in answer ? answer : answer.state); // a state, or a folder's answer with one
    } catch (error) {
      this.busy = '';
      const unanswered = `The chat server did not answer (${error.message}).`;
      this.fail(error instanceof ApiError ? error.message : unanswered);
      ok = false;
    }
    if (this.state) this.draw(this.state);
    this.refresh();
    return ok;
  }

  fail(message) {
    this.error.textContent = message;
    this.error.hidden = false;
  }
}
