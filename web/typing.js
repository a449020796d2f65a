// Typing (DESIGN §5e, ephemeral): the line under the log that says who is
// typing in the open room, and the throttle on your own typing signals.

/** How long a `typing` frame shows its person. */
const SHOW_MS = 6000;
/** The least time between two of your own typing signals in one room. */
const SEND_EVERY_MS = 2000;

/** "Ada is typing…", "Ada and Grace are typing…", "Several people are typing…". */
export function typingText(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return "Several people are typing…";
}

/**
 * The people typing in the open room, by user id. Bounded by the room's
 * members: each entry goes 6 s after its person's last frame, at their next
 * message, or when the room changes.
 */
export class TypingLine {
  #line;
  #people = new Map();

  /** @param {HTMLElement} line an `aria-live="polite"` region */
  constructor(line) {
    this.#line = line;
  }

  /** `user` (`{id, display_name}`) is typing: shown for 6 s from now. */
  show(user) {
    if (typeof user?.id !== "string") return;
    const known = this.#people.get(user.id);
    clearTimeout(known?.timer);
    const timer = setTimeout(() => this.stop(user.id), SHOW_MS);
    this.#people.set(user.id, { name: user.display_name || user.username || "Someone", timer });
    if (known === undefined || known.name !== this.#people.get(user.id).name) this.#render();
  }

  /** `userId` stopped typing (a message of theirs came). */
  stop(userId) {
    const known = this.#people.get(userId);
    if (known === undefined) return;
    clearTimeout(known.timer);
    this.#people.delete(userId);
    this.#render();
  }

  clear() {
    for (const { timer } of this.#people.values()) clearTimeout(timer);
    this.#people.clear();
    this.#render();
  }

  #render() {
    this.#line.textContent = typingText([...this.#people.values()].map((p) => p.name));
  }
}

/**
 * Sends `{"type": "typing", room}` through `send` at most once every 2 s (the
 * server drops any more): the first keystroke signals at once, and typing
 * that goes on inside the 2 s signals once more when they are over, so the
 * other people's line stays up while you type.
 */
export class TypingSignal {
  #send;
  /** The room of the last signal, and when it went. */
  #room = null;
  #last = -Infinity;
  /** The signal due when the 2 s are over, or null. */
  #timer = null;

  /** @param {(frame: object) => boolean} send */
  constructor(send) {
    this.#send = send;
  }

  /** You typed in `room`'s composer. */
  typed(room) {
    if (room !== this.#room) this.stop();
    const wait = this.#room === room ? this.#last + SEND_EVERY_MS - Date.now() : 0;
    if (wait <= 0) {
      this.#signal(room);
    } else if (this.#timer === null) {
      // A little after the window, so that the server's clock agrees it is over.
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#signal(room);
      }, wait + 100);
    }
  }

  /** A message was sent, or the room changed: no signal is due any more. */
  stop() {
    clearTimeout(this.#timer);
    this.#timer = null;
  }

  #signal(room) {
    if (this.#send({ type: "typing", room })) {
      this.#room = room;
      this.#last = Date.now();
    }
  }
}
