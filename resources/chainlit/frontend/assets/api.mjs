// The chat server's HTTP routes (Chainlit's own, the setup view's and the user's files'), called
// with the page's sign-in cookie.
//
// The page arrives signed in as the one local user (the server sets the cookie on the page
// itself). Should the cookie be gone or expired, the first refused call signs in again through
// Chainlit's header sign-in (the local user needs no password) and is tried once more.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export class ChatApi {
  async signIn() {
    const response = await fetch('/auth/header', { method: 'POST', credentials: 'same-origin' });
    if (!response.ok) throw new ApiError(response.status, `could not sign in (HTTP ${response.status})`);
  }

  async request(method, path, body) {
    const send = () =>
      fetch(path, {
        method,
        credentials: 'same-origin',
        headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    let response = await send();
    if (response.status === 401) {
      await this.signIn();
      response = await send();
    }
    if (!response.ok) {
      let detail = '';
      try {
        const body = await response.json();
        detail = body.detail || body.error || ''; // Chainlit's routes say `detail`, ours `error`
      } catch {
        // not JSON: the status says enough
      }
      throw new ApiError(response.status, detail || `HTTP ${response.status}`);
    }
    return response.json();
  }

  /** The project: its name and the welcome text (resources/chainlit/chainlit.md). */
  project() {
    return this.request('GET', '/project/settings');
  }

  /** One page of past chats, newest first; `search` matches any message in a chat. */
  threads({ search = '', cursor = null, first = 40 } = {}) {
    return this.request('POST', '/project/threads', {
      pagination: { first, cursor },
      filter: search ? { search } : {},
    });
  }

  /** Run a chat action (Retry, Continue) in the live session `sessionId`. */
  action(sessionId, action) {
    return this.request('POST', '/project/action', { sessionId, action });
  }

  deleteThread(threadId) {
    return this.request('DELETE', '/project/thread', { threadId });
  }

  /** The first run's setup: whether the runtime has a model, and what it offers instead. */
  setupState() {
    return this.request('GET', '/setup/state');
  }

  /** Serve the model in this folder and save it as the model to serve. */
  chooseModelFolder(path) {
    return this.request('POST', '/setup/model-folder', { path });
  }

  /** Download the model the runtime offers (its progress then shows in the setup state). */
  downloadModel() {
    return this.request('POST', '/setup/download', {});
  }

  /** Have the runtime ask the model catalog again (back online?). */
  retryCatalog() {
    return this.request('POST', '/setup/retry', {});
  }

  /** The user's files: the folders and files added, what the index holds, how far indexing is. */
  filesState() {
    return this.request('GET', '/files/state');
  }

  /** Add a folder or file to the index (the app's indexer reads it); the new state. */
  addFiles(path) {
    return this.request('POST', '/files/folders', { path });
  }

  /** Take a folder or file that was added out of the index, with all it holds; the new state. */
  removeFiles(path) {
    return this.request('POST', '/files/remove', { path });
  }

  /** Have the app's indexer look for changes now; the state. */
  reindexFiles() {
    return this.request('POST', '/files/refresh', {});
  }

  /** Open a file of the index (one an answer cites) in its application. */
  openFile(path) {
    return this.request('POST', '/files/open', { path });
  }
}

/** The window's native folder dialog (pywebview's JS API), when the page is in the app's window:
 * a function that asks for a folder (its path, or null when cancelled), else null. */
export function folderDialog() {
  const api = window.pywebview?.api;
  return typeof api?.choose_folder === 'function' ? () => api.choose_folder() : null;
}

/**
 * Ask the window's folder dialog for a folder: its path goes in the path box `input` and to
 * `use`; cancelled, the box gets the focus. `fail` says why the dialog did not open.
 */
export async function chooseFolderInto(input, use, fail) {
  const choose = folderDialog();
  if (!choose) return;
  let folder;
  try {
    folder = await choose();
  } catch (error) {
    fail(`The folder dialog did not open (${error.message}).`);
    return;
  }
  if (folder) {
    input.value = folder;
    await use(folder);
  } else {
    input.focus();
  }
}
