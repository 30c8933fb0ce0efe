// One chat's live connection to the chat server: Chainlit's Socket.IO protocol, as its own web
// page speaks it (a session id per chat, the thread to resume in the handshake).
//
// A message is sent only once the session is `ready`: connected, and the server has run the
// chat's start (it says so with a `task_end`) and, for a stored chat, sent it. A message sent
// before would race the start: Chainlit's `task_end` would land after the answer's `task_start`
// (the page would think no answer is running), and a resumed chat would be drawn over it.
//
// The session reports what happens through `events`, an object of optional callbacks:
//   connection(state, detail)   'connecting' | 'connected' | 'reconnecting' | 'refused'
//   ready()                     a message sent now will be taken
//   running(isRunning)          an answer is being made (Chainlit's task_start / task_end)
//   step(step)                  a message was sent or updated (whole)
//   streamStart(step)           an answer starts streaming (its first text included)
//   token(id, text, replace)    more text for a streaming answer
//   removeStep(id)
//   thread(thread)              a resumed chat, with all its stored messages
//   threadMissing(error)        the chat to resume does not exist (any more)
//   named(threadId)             a new chat was stored under this id (after its first message)
//   settings(inputs)            the chat settings' fields (Chainlit input widgets)
//   toast(message, type)
import { io } from './vendor/socket.io.mjs';

export class ChatSession {
  /**
   * @param {string|null} threadId the stored chat to resume, or null for a new one
   * @param {object} events callbacks, see above
   * @param {() => Promise<void>} signIn signs the local user in again (cookie expired)
   */
  constructor(threadId, events, signIn) {
    this.threadId = threadId;
    this.events = events;
    this.signIn = signIn;
    this.running = false;
    this.closed = false;
    this.retriedSignIn = false;
    this.starting = true; // until the server has run the chat's start after a connection
    this.resuming = Boolean(threadId); // until the stored chat has come
    this.sessionId = crypto.randomUUID();
    this.socket = io(window.location.origin, {
      path: '/ws/socket.io',
      transports: ['websocket'],
      withCredentials: true,
      reconnectionDelay: 250,
      reconnectionDelayMax: 2000,
      auth: {
        clientType: 'webapp',
        sessionId: this.sessionId,
        threadId: threadId || '',
        userEnv: '{}',
        chatProfile: '',
      },
    });
    this.emit('connection', 'connecting');
    this.listen();
  }

  get connected() {
    return this.socket.connected;
  }

  /** A message sent now will be taken and answered. */
  get ready() {
    return this.socket.connected && !this.starting && !this.resuming;
  }

  startDone(what) {
    const wasReady = this.ready;
    this[what] = false;
    if (this.ready && !wasReady) this.emit('ready');
  }

  emit(name, ...args) {
    if (!this.closed) this.events[name]?.(...args);
  }

  listen() {
    const socket = this.socket;
    socket.on('connect', () => {
      this.retriedSignIn = false;
      this.starting = true;
      socket.emit('connection_successful');
      this.emit('connection', 'connected');
    });
    socket.on('disconnect', (reason) => {
      this.setRunning(false);
      this.emit('connection', 'reconnecting', reason);
      if (reason === 'io server disconnect' && !this.closed) socket.connect();
    });
    socket.on('connect_error', (error) => this.refused(error));

    socket.on('task_start', () => this.setRunning(true));
    socket.on('task_end', () => {
      this.setRunning(false);
      this.startDone('starting'); // the first one after a connection ends the chat's start
    });
    socket.on('new_message', (step) => this.emit('step', step));
    socket.on('update_message', (step) => this.emit('step', step));
    socket.on('delete_message', (step) => this.emit('removeStep', step.id));
    socket.on('stream_start', (step) => this.emit('streamStart', step));
    socket.on('stream_token', ({ id, token, isSequence }) => this.emit('token', id, token, isSequence));
    socket.on('resume_thread', (thread) => {
      this.emit('thread', thread);
      this.startDone('resuming');
    });
    socket.on('resume_thread_error', (error) => this.emit('threadMissing', error));
    socket.on('first_interaction', ({ thread_id: threadId }) => {
      if (threadId && threadId !== this.threadId) {
        this.threadId = threadId;
        socket.auth.threadId = threadId; // a reconnection to a restarted server resumes this chat
        this.emit('named', threadId);
      }
    });
    socket.on('chat_settings', (inputs) => this.emit('settings', inputs));
    socket.on('toast', ({ message, type }) => this.emit('toast', message, type));
    socket.on('reload', () => window.location.reload());
  }

  async refused(error) {
    // A refusal by the server (not a lost connection) is not retried by Socket.IO itself.
    if (this.socket.active) {
      this.emit('connection', 'reconnecting', error.message);
      return;
    }
    if (/authentication/i.test(error.message) && !this.retriedSignIn) {
      this.retriedSignIn = true;
      try {
        await this.signIn();
        if (!this.closed) this.socket.connect();
        return;
      } catch (signInError) {
        error = signInError;
      }
    }
    this.emit('connection', 'refused', error.message);
  }

  setRunning(running) {
    if (running !== this.running) {
      this.running = running;
      this.emit('running', running);
    }
  }

  /** Send the user's message; returns it as the step the page shows at once. */
  send(text) {
    const step = {
      threadId: this.threadId || '',
      id: crypto.randomUUID(),
      name: 'local',
      type: 'user_message',
      output: text,
      createdAt: new Date().toISOString(),
      metadata: {},
    };
    this.socket.emit('client_message', { message: step, fileReferences: [] });
    this.setRunning(true); // at once: the composer shows Stop, the conversation the dots
    return step;
  }

  stop() {
    this.socket.emit('stop');
  }

  /** Run one of the chat's actions on a message: `retry` and `continue` (as its answer), or
   * `mark_better` with the payload `{better}` (a compared answer). Settles once the server is done. */
  act(name, forId, api, payload = {}) {
    return api.action(this.sessionId, { name, forId, payload }).catch((error) => {
      this.emit('toast', `Could not ${name.replaceAll('_', ' ')}: ${error.message}`, 'error');
    });
  }

  changeSettings(values) {
    this.socket.emit('chat_settings_change', values);
  }

  /** Leave this chat. An answer still being made is finished and stored by the server. */
  close() {
    if (!this.running && this.socket.connected) this.socket.emit('clear_session');
    this.closed = true;
    this.socket.disconnect();
  }
}
