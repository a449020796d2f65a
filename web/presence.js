// Presence (DESIGN §5e, ephemeral): a dot beside a person's name, online or
// offline, with the same word for screen readers. Statuses come from
// `GET /api/v1/presence` for the people shown and then from the stream's
// `presence` frames.

import { fetchPresence } from "./api.js";

/** The most names one presence request may carry. */
const MAX_NAMES = 200;

export class Presence {
  /**
   * User id → "online" | "offline". Bounded by the people the page shows
   * (room members and direct-room members); cleared at sign-out.
   */
  #status = new Map();
  /** Usernames asked for already (one request per person per page load). */
  #asked = new Set();

  /** The people `users` (`[user]`): their status fetched unless known. */
  async load(users) {
    const fresh = users.filter((u) => !this.#asked.has(u.username));
    for (let i = 0; i < fresh.length; i += MAX_NAMES) {
      const batch = fresh.slice(i, i + MAX_NAMES);
      for (const user of batch) this.#asked.add(user.username);
      let answer;
      try {
        answer = await fetchPresence(batch.map((u) => u.username));
      } catch (err) {
        // Asked again next time, unless the server has no presence at all (404).
        if (err.status !== 404) for (const user of batch) this.#asked.delete(user.username);
        continue;
      }
      for (const user of batch) {
        const status = answer[user.username]?.status;
        if (status === "online" || status === "offline") this.#set(user.id, status);
      }
    }
  }

  /** A `presence` frame: `{user_id, status}`. */
  update(frame) {
    if (typeof frame.user_id === "string" && (frame.status === "online" || frame.status === "offline")) {
      this.#set(frame.user_id, frame.status);
    }
  }

  clear() {
    this.#status.clear();
    this.#asked.clear();
  }

  /** A dot for `userId`, kept up to date while it is in the page. */
  dot(userId) {
    const dot = document.createElement("span");
    dot.className = "presence-dot";
    dot.dataset.presenceUser = userId;
    const word = document.createElement("span");
    word.className = "visually-hidden";
    dot.append(word);
    this.#paint(dot);
    return dot;
  }

  #set(userId, status) {
    if (this.#status.get(userId) === status) return;
    this.#status.set(userId, status);
    for (const dot of document.querySelectorAll(`[data-presence-user="${CSS.escape(userId)}"]`)) this.#paint(dot);
  }

  #paint(dot) {
    const status = this.#status.get(dot.dataset.presenceUser) ?? "unknown";
    dot.dataset.status = status;
    dot.firstElementChild.textContent = status === "unknown" ? "" : ` (${status})`;
  }
}
