// One WebSocket per open room. Every (re)connect asks for `since=<last seq
// seen>`, so the server replays exactly what was missed; a drop is retried
// with exponential backoff and jitter.

import { streamUrl } from "./api.js";

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15_000;

/**
 * States: `connecting` (first attempt), `connected` (replay done, live),
 * `reconnecting` (the server is away: a retry is scheduled or running),
 * `offline` (the browser itself says it is offline; retried when it is back).
 * A server that cannot be reached is not "offline": the person's network may
 * be fine.
 */
export class RoomStream {
  #room;
  #since;
  #prepare;
  #onMessage;
  #onState;
  #onRoomsChanged;
  #onEvent;
  #onCaughtUp;
  #ws = null;
  #timer = null;
  #attempt = 0;
  #failures = 0;
  #connectedOnce = false;
  #stopped = false;
  #listeners = [];

  /**
   * @param {string} room
   * @param {object} handlers
   * @param {() => number} handlers.since the last seq seen, read at every connect
   * @param {() => Promise<void>} [handlers.prepare] run before the first
   *   connect (loading history); retried with the same backoff until it succeeds
   * @param {(message: object) => void} handlers.onMessage
   * @param {(state: string) => void} handlers.onState
   * @param {() => void} [handlers.onRoomsChanged] the rooms you may see changed
   * @param {(frame: object) => void} [handlers.onEvent] an edit, delete or reaction frame
   * @param {(seq: number) => void} [handlers.onCaughtUp] the replay is done up to this event seq
   */
  constructor(room, { since, prepare, onMessage, onState, onRoomsChanged, onEvent, onCaughtUp }) {
    this.#room = room;
    this.#since = since;
    this.#prepare = prepare ?? null;
    this.#onMessage = onMessage;
    this.#onState = onState;
    this.#onRoomsChanged = onRoomsChanged ?? (() => {});
    this.#onEvent = onEvent ?? (() => {});
    this.#onCaughtUp = onCaughtUp ?? (() => {});
  }

  start() {
    this.#listen(window, "online", () => this.retryNow());
    this.#listen(window, "offline", () => this.#goOffline());
    this.#listen(document, "visibilitychange", () => {
      if (document.visibilityState === "visible" && this.#timer !== null) this.retryNow();
    });
    this.#connect();
  }

  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const [target, type, fn] of this.#listeners) target.removeEventListener(type, fn);
    this.#close();
  }

  /** Skips the backoff wait and tries now. */
  retryNow() {
    if (this.#stopped || this.#ws !== null) return;
    this.#failures = 0;
    this.#connect();
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
    this.#attempt += 1; // abandons a `prepare` in flight
    this.#close();
    this.#onState("offline");
  }

  async #connect() {
    clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#stopped) return;
    if (navigator.onLine === false) {
      this.#goOffline();
      return;
    }
    const attempt = ++this.#attempt;
    this.#onState(this.#connectedOnce || this.#failures > 0 ? "reconnecting" : "connecting");
    if (this.#prepare !== null) {
      try {
        await this.#prepare();
      } catch (err) {
        if (attempt === this.#attempt && !this.#stopped && err.name !== "AbortError") this.#retryLater();
        return;
      }
      if (attempt !== this.#attempt || this.#stopped) return;
      this.#prepare = null;
    }

    const ws = new WebSocket(streamUrl(this.#room, this.#since()));
    this.#ws = ws;
    ws.addEventListener("message", (event) => {
      if (this.#ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "message" && frame.message) {
        this.#onMessage(frame.message);
      } else if ((frame.type === "edit" || frame.type === "delete" || frame.type === "reaction") && Number.isInteger(frame.seq)) {
        this.#onEvent(frame);
      } else if (frame.type === "rooms_changed") {
        this.#onRoomsChanged();
      } else if (frame.type === "caught_up") {
        if (Number.isInteger(frame.seq)) this.#onCaughtUp(frame.seq);
        this.#failures = 0;
        this.#connectedOnce = true;
        this.#onState("connected");
      }
    });
    ws.addEventListener("close", (event) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      // Access withdrawn: resuming cannot help; the page decides what next.
      if (event.reason === "removed" || event.reason === "suspended" || event.reason === "signed_out") {
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
