// One WebSocket per tab, `/api/v1/stream` (DESIGN §5c): subscribed to every
// room the page follows (the rooms you joined, for their unread badges, and
// the open one). This module is the one owner of the socket and of each
// room's resume point: the last event seq seen there. Every (re)connect
// subscribes each room with `since=<that seq>`, so the server replays exactly
// what was missed; a drop is retried with exponential backoff and jitter.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15_000;
/** Frame types that are room events and carry their own `seq`. */
const EVENTS = new Set(["edit", "delete", "reaction"]);

/** The WebSocket URL of the multiplexed stream. */
function streamUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v1/stream`;
}

/** The event seq a room frame carries, or null. */
export function frameSeq(frame) {
  if (frame.type === "message") return Number.isInteger(frame.message?.seq) ? frame.message.seq : null;
  if (EVENTS.has(frame.type) || frame.type === "caught_up") return Number.isInteger(frame.seq) ? frame.seq : null;
  return null;
}

/**
 * States: `connecting` (first attempt), `open` (the socket is up; each room
 * says when it is live by its `caught_up`), `reconnecting` (the server is
 * away: a retry is scheduled or running), `offline` (the browser itself says
 * it is offline; retried when it is back), `ended` (access withdrawn:
 * suspended or signed out; not retried). A server that cannot be reached is
 * not "offline": the person's network may be fine.
 */
export class Stream {
  #onFrame;
  #onState;
  /**
   * The rooms followed: room → `{since, live}`. Its owner is the page, which
   * follows the rooms you joined and the open one; the server caps a stream
   * at `--max-subscriptions` (500) and answers more with an error frame.
   */
  #rooms = new Map();
  #ws = null;
  #timer = null;
  #failures = 0;
  #connectedOnce = false;
  #stopped = true;
  #listeners = [];

  /**
   * @param {object} handlers
   * @param {(frame: object) => void} handlers.onFrame every frame that concerns
   *   a followed room (`message`, `edit`, `delete`, `reaction`, `caught_up`,
   *   `error`, `typing`), and the user's own (`read`, `rooms_changed`, `presence`)
   * @param {(state: string, reason?: string) => void} handlers.onState
   */
  constructor({ onFrame, onState }) {
    this.#onFrame = onFrame;
    this.#onState = onState;
  }

  start() {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#listen(window, "online", () => this.retryNow());
    this.#listen(window, "offline", () => this.#goOffline());
    this.#listen(document, "visibilitychange", () => {
      if (document.visibilityState === "visible" && this.#timer !== null) this.retryNow();
    });
    this.#connect();
  }

  /** Closes the socket and forgets every room. */
  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = null;
    for (const [target, type, fn] of this.#listeners) target.removeEventListener(type, fn);
    this.#listeners = [];
    this.#rooms.clear();
    this.#failures = 0;
    this.#connectedOnce = false;
    this.#close();
  }

  /** Skips the backoff wait and tries now. */
  retryNow() {
    if (this.#stopped || this.#ws !== null) return;
    this.#failures = 0;
    this.#connect();
  }

  /**
   * Follows `room` from after event `since`. A room already followed keeps
   * its own resume point unless `restart` is set: then it is subscribed again
   * from `since` (the open room, after loading a page of history as of `since`).
   */
  follow(room, since, { restart = false } = {}) {
    const known = this.#rooms.get(room);
    if (known !== undefined && !restart) return;
    const wasSubscribed = known !== undefined;
    this.#rooms.set(room, { since, live: false });
    if (this.#isOpen()) {
      if (wasSubscribed) this.#send({ type: "unsubscribe", room });
      this.#send({ type: "subscribe", room, since });
    }
  }

  /** Stops following `room`. */
  unfollow(room) {
    if (!this.#rooms.delete(room)) return;
    if (this.#isOpen()) this.#send({ type: "unsubscribe", room });
  }

  /** The rooms followed now. */
  get rooms() {
    return [...this.#rooms.keys()];
  }

  /** Whether `room` is followed and its replay is done on the current socket. */
  isLive(room) {
    return this.#rooms.get(room)?.live === true && this.#isOpen();
  }

  /** Sends an ephemeral frame (typing); false when the socket is not up. */
  send(frame) {
    if (!this.#isOpen()) return false;
    this.#send(frame);
    return true;
  }

  #isOpen() {
    return this.#ws !== null && this.#ws.readyState === WebSocket.OPEN;
  }

  #send(frame) {
    this.#ws.send(JSON.stringify(frame));
  }

  #listen(target, type, fn) {
    target.addEventListener(type, fn);
    this.#listeners.push([target, type, fn]);
  }

  #close() {
    const ws = this.#ws;
    this.#ws = null;
    if (ws !== null && ws.readyState <= WebSocket.OPEN) ws.close(1000, "client_closed");
  }

  #goOffline() {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#close();
    for (const state of this.#rooms.values()) state.live = false;
    this.#onState("offline");
  }

  #connect() {
    clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#stopped) return;
    if (navigator.onLine === false) {
      this.#goOffline();
      return;
    }
    this.#onState(this.#connectedOnce || this.#failures > 0 ? "reconnecting" : "connecting");
    const ws = new WebSocket(streamUrl());
    this.#ws = ws;
    for (const state of this.#rooms.values()) state.live = false;
    ws.addEventListener("open", () => {
      if (this.#ws !== ws) return;
      this.#failures = 0;
      this.#connectedOnce = true;
      for (const [room, state] of this.#rooms) this.#send({ type: "subscribe", room, since: state.since });
      this.#onState("open");
    });
    ws.addEventListener("message", (event) => {
      if (this.#ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame === null || typeof frame !== "object" || typeof frame.type !== "string") return;
      if (typeof frame.room === "string") {
        const state = this.#rooms.get(frame.room);
        if (state === undefined) return; // unfollowed meanwhile
        const seq = frameSeq(frame);
        if (seq !== null) state.since = Math.max(state.since ?? 0, seq);
        if (frame.type === "caught_up") state.live = true;
        if (frame.type === "error" && (frame.code === "not_found" || frame.code === "removed")) this.#rooms.delete(frame.room);
      }
      this.#onFrame(frame);
    });
    ws.addEventListener("close", (event) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      for (const state of this.#rooms.values()) state.live = false;
      // Access withdrawn: resuming cannot help; the page decides what next.
      if (event.reason === "suspended" || event.reason === "signed_out") {
        this.#stopped = true;
        this.#onState("ended", event.reason);
        return;
      }
      // The server restarting or shedding a slow reader: come back soon.
      const hinted = event.reason === "shutting_down" || event.reason === "lagging";
      this.#retryLater(hinted);
    });
  }

  #retryLater(hinted = false) {
    if (this.#stopped) return;
    this.#failures += 1;
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (this.#failures - 1));
    let delay = ceiling * (0.5 + Math.random() / 2);
    if (hinted && this.#failures === 1) delay = 250 + Math.random() * 750;
    this.#onState(navigator.onLine === false ? "offline" : "reconnecting");
    this.#timer = setTimeout(() => this.#connect(), delay);
  }
}
