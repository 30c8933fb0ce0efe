// The sidebar's past chats: the most recently active first, grouped by day, searchable, each one
// a link to resume it, with a delete button that asks once more before it deletes.

const PAGE = 40;
const SEARCH_DELAY_MS = 250;
const DAY_MS = 24 * 60 * 60 * 1000;

/** "Today", "Yesterday", "Previous 7 days", "Previous 30 days" or "Older", in the user's time zone. */
export function ageGroup(when, now = new Date()) {
  const startOfToday = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  const time = new Date(when).getTime();
  if (time >= startOfToday) return 'Today';
  if (time >= startOfToday - DAY_MS) return 'Yesterday';
  if (time >= startOfToday - 7 * DAY_MS) return 'Previous 7 days';
  if (time >= startOfToday - 30 * DAY_MS) return 'Previous 30 days';
  return 'Older';
}

/** A chat as the list shows it: the server sends each with all its messages. */
function summary(thread) {
  const times = (thread.steps || []).map((step) => step.createdAt).filter(Boolean);
  const activeAt = [thread.createdAt, ...times].reduce((a, b) => (String(b) > String(a) ? b : a), '');
  return { id: thread.id, name: thread.name, activeAt };
}

export class ThreadList {
  /**
   * @param {HTMLElement} nav where the list goes
   * @param {HTMLInputElement} search the search box
   * @param {import('./api.mjs').ChatApi} api
   * @param {{open: (id: string) => void, deleted: (id: string) => void}} actions
   */
  constructor(nav, search, api, actions) {
    this.nav = nav;
    this.search = search;
    this.api = api;
    this.actions = actions;
    this.threads = [];
    this.cursor = null;
    this.hasMore = false;
    this.current = null;
    this.request = 0;
    let timer = 0;
    search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.refresh(), SEARCH_DELAY_MS);
    });
    nav.addEventListener('click', (event) => this.clicked(event));
  }

  /** Load the first page again (a new chat was named, or the search changed). */
  async refresh() {
    await this.load(false);
  }

  /** A chat was just active: it moves to the top (loaded again if the list does not have it). */
  touch(threadId) {
    const thread = this.threads.find((candidate) => candidate.id === threadId);
    if (!thread) {
      this.refresh();
      return;
    }
    thread.activeAt = new Date().toISOString();
    this.threads = [thread, ...this.threads.filter((candidate) => candidate !== thread)];
    this.draw();
  }

  async load(more) {
    const request = ++this.request;
    try {
      const search = this.search.value.trim();
      const page = await this.api.threads({ search, cursor: more ? this.cursor : null, first: PAGE });
      if (request !== this.request) return; // a newer request is under way
      const threads = page.data.map(summary);
      this.threads = more ? [...this.threads, ...threads] : threads;
      this.cursor = page.pageInfo.endCursor;
      this.hasMore = page.pageInfo.hasNextPage;
      this.draw();
    } catch (error) {
      if (request !== this.request) return;
      this.nav.replaceChildren(this.note(`Past chats could not be loaded: ${error.message}.`, 'Try again'));
    }
  }

  setCurrent(threadId) {
    this.current = threadId;
    for (const link of this.nav.querySelectorAll('a.thread')) {
      const isCurrent = link.dataset.threadId === threadId;
      link.classList.toggle('current', isCurrent);
      if (isCurrent) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  draw() {
    const parts = [];
    let group = null;
    for (const thread of this.threads) {
      const label = ageGroup(thread.activeAt);
      if (label !== group) {
        group = label;
        const heading = document.createElement('h2');
        heading.className = 'thread-group';
        heading.textContent = label;
        parts.push(heading);
      }
      parts.push(this.row(thread));
    }
    if (!this.threads.length) {
      const searching = Boolean(this.search.value.trim());
      parts.push(this.note(searching ? 'No chat matches your search.' : 'Your chats will be listed here.'));
    }
    if (this.hasMore) {
      const more = document.createElement('button');
      more.type = 'button';
      more.className = 'thread-more';
      more.textContent = 'More chats';
      parts.push(more);
    }
    this.nav.replaceChildren(...parts);
    this.setCurrent(this.current);
  }

  row(thread) {
    const row = document.createElement('div');
    row.className = 'thread-row';
    const link = document.createElement('a');
    link.className = 'thread';
    link.id = `thread-${thread.id}`;
    link.dataset.threadId = thread.id;
    link.href = `/thread/${encodeURIComponent(thread.id)}`;
    link.textContent = thread.name || 'Untitled chat';
    link.title = link.textContent;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'thread-delete';
    remove.dataset.threadId = thread.id;
    remove.setAttribute('aria-label', `Delete the chat "${link.textContent}"`);
    remove.textContent = '×';
    row.append(link, remove);
    return row;
  }

  note(text, retry) {
    const note = document.createElement('p');
    note.className = 'thread-note';
    note.textContent = text;
    if (retry) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'thread-retry';
      button.textContent = retry;
      note.append(' ', button);
    }
    return note;
  }

  async clicked(event) {
    const target = event.target.closest('a.thread, button');
    if (!target) return;
    if (target.matches('a.thread')) {
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      this.actions.open(target.dataset.threadId);
    } else if (target.matches('.thread-more')) {
      await this.load(true);
    } else if (target.matches('.thread-retry')) {
      await this.refresh();
    } else if (target.matches('.thread-delete')) {
      await this.confirmDelete(target);
    }
  }

  /** The first click asks ("Delete?"), the second deletes. */
  async confirmDelete(button) {
    if (!button.classList.contains('confirm')) {
      button.classList.add('confirm');
      button.textContent = 'Delete?';
      setTimeout(() => {
        button.classList.remove('confirm');
        button.textContent = '×';
      }, 4000);
      return;
    }
    const threadId = button.dataset.threadId;
    try {
      await this.api.deleteThread(threadId);
    } catch (error) {
      button.textContent = 'Failed';
      button.title = error.message;
      return;
    }
    this.threads = this.threads.filter((thread) => thread.id !== threadId);
    this.draw();
    this.actions.deleted(threadId);
  }
}
