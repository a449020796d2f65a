// The rooms you are not looking at, live: one `/api/v1/stream` WebSocket
// subscribed (without `since`: live from now) to them, for unread badges, and
// the user's own frames (`rooms_changed`, `read`). The open room keeps its
// own resumable stream (stream.js); this one only ever adds to the sidebar, so
// a drop just reconnects with backoff and the room list is fetched again.

const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;

export class RoomWatcher {
  #onMessage;
  #onRoomsChanged;
  #onRead;
  #onReconnect;
  #rooms = new Set();
  #subscribed = new Set();
  #ws = null;
  #timer = null;
  #failures = 0;
  #stopped = true;

  /**
   * @param {object} handlers
   * @param {(room: string, message: object) => void} handlers.onMessage a new message in a watched room
   * @param {() => void} handlers.onRoomsChanged you were added to or removed from a room
   * @param {(room: string, readSeq: number) => void} handlers.onRead another session moved a read marker
   * @param {() => void} handlers.onReconnect the watcher was away: counts may be stale
   */
  constructor({ onMessage, onRoomsChanged, onRead, onReconnect }) {
    this.#onMessage = onMessage;
    this.#onRoomsChanged = onRoomsChanged;
    this.#onRead = onRead;
    this.#onReconnect = onReconnect;
  }

  /** Watches exactly `rooms` from now on (connecting if needed). */
  watch(rooms) {
    this.#rooms = new Set(rooms);
    if (this.#stopped) {
      this.#stopped = false;
      this.#connect();
      return;
    }
    this.#sync();
  }

  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const ws = this.#ws;
    this.#ws = null;
    this.#subscribed.clear();
    if (ws !== null && ws.readyState <= WebSocket.OPEN) ws.close(1000, "client_closed");
  }

  #send(frame) {
    this.#ws.send(JSON.stringify(frame));
  }

  /** Subscribes and unsubscribes so that the stream covers exactly the watched rooms. */
  #sync() {
    if (this.#ws === null || this.#ws.readyState !== WebSocket.OPEN) return;
    for (const room of this.#subscribed) {
      if (!this.#rooms.has(room)) {
        this.#send({ type: "unsubscribe", room });
        this.#subscribed.delete(room);
      }
    }
    for (const room of this.#rooms) {
      if (!this.#subscribed.has(room)) {
        this.#send({ type: "subscribe", room });
        this.#subscribed.add(room);
      }
    }
  }

  #connect() {
    clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#stopped) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/api/v1/stream`);
    this.#ws = ws;
    this.#subscribed.clear();
    ws.addEventListener("open", () => {
      if (this.#ws !== ws) return;
      if (this.#failures > 0) this.#onReconnect();
      this.#failures = 0;
      this.#sync();
    });
    ws.addEventListener("message", (event) => {
      if (this.#ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "message" && frame.message && this.#rooms.has(frame.room)) {
        this.#onMessage(frame.room, frame.message);
      } else if (frame.type === "rooms_changed") {
        this.#onRoomsChanged();
      } else if (frame.type === "read" && typeof frame.room === "string" && Number.isInteger(frame.read_seq)) {
        this.#onRead(frame.room, frame.read_seq);
      } else if (frame.type === "error" && typeof frame.room === "string") {
        this.#subscribed.delete(frame.room); // gone or closed to us: the room list will say so
      }
    });
    ws.addEventListener("close", (event) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      if (event.reason === "suspended" || event.reason === "signed_out") {
        this.#stopped = true; // the open room's stream tells the page
        return;
      }
      this.#failures += 1;
      const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (this.#failures - 1));
      this.#timer = setTimeout(() => this.#connect(), ceiling * (0.5 + Math.random() / 2));
    });
  }
}
