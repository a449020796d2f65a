// Sends not stored yet, by client_id: each shows as pending in its room,
// and one that failed says why and what can be done. A send that failed
// because the server was away is sent again by itself (same client_id, so
// stored at most once), backing off, and at once when the stream is back.

import * as api from "./api.js";

function describeFailure(err) {
  if (err.status === 0) return "the server could not be reached.";
  if (err.status === 429) {
    return err.retryAfter ? `too many messages; try again in ${err.retryAfter} s.` : "too many messages; wait a moment.";
  }
  return err.message;
}

/** Whether a failed send waits for the server to come back (and is then sent by itself). */
const waitsForServer = (send) => send.state === "failed" && (send.error.status === 0 || send.error.status >= 500);

export class Outbox {
  /**
   * `{clientId, room, author, authorId, text, files, replyTo, at, state, error, tries, timer}`
   * by client_id. Its owner is this page: a send leaves once stored or discarded.
   */
  #pending = new Map();
  #timeline;
  #host;

  /**
   * @param {import("./timeline.js").Timeline} timeline
   * @param {object} host `room()` (the open room, or null), `connected()`,
   *   `stored(message, {follow})` (shows a stored send in the open room),
   *   `gone(room)` (a 404: the room may have closed to you),
   *   `unknown(room)` (not in the room list yet), `restore(text)` (back into
   *   the composer), `changed()` (a send left the open room's log)
   * @param {HTMLElement} messages the log's list, whose buttons retry, edit and discard
   */
  constructor(timeline, host, messages) {
    this.#timeline = timeline;
    this.#host = host;
    messages.addEventListener("click", (event) => {
      const control = event.target.closest("button[data-action]");
      const send = control && this.#pending.get(control.dataset.clientId);
      if (send) this.#act(control.dataset.action, send);
    });
  }

  /** Whether `clientId` is a send of this page not stored yet. */
  has(clientId) {
    return clientId !== null && this.#pending.has(clientId);
  }

  /** The stream (or the answer) brought the stored copy: the pending one goes. */
  settle(clientId) {
    if (!this.#pending.delete(clientId)) return false;
    this.#timeline.removePending(clientId);
    return true;
  }

  /** Shows and sends a new send. */
  add(send) {
    this.#pending.set(send.clientId, send);
    this.#timeline.addPending(send);
    this.#deliver(send);
  }

  /** Shows the sends of `room` (just opened) at the end of its log. */
  showIn(room) {
    for (const send of this.#pending.values()) {
      if (send.room !== room) continue;
      this.#timeline.addPending(send);
      if (send.state === "failed") this.#showFailure(send);
    }
  }

  /** Sends every send that waited for the server, with its own client_id. */
  retryWaiting() {
    for (const send of this.#pending.values()) if (waitsForServer(send)) this.#deliver(send);
  }

  #act(action, send) {
    switch (action) {
      case "retry":
        this.#deliver(send); // the same client_id: stored at most once
        break;
      case "edit":
        this.#pending.delete(send.clientId);
        this.#timeline.removePending(send.clientId);
        this.#host.restore(send.text);
        break;
      case "discard":
        this.#pending.delete(send.clientId);
        this.#timeline.removePending(send.clientId);
        this.#host.changed();
        break;
    }
  }

  #showFailure(send) {
    if (waitsForServer(send)) {
      this.#timeline.setWaiting(send.clientId, describeFailure(send.error));
      return;
    }
    this.#timeline.setFailed(send.clientId, describeFailure(send.error), {
      // The server may have stored a retryable failure: only the same
      // client_id may try again, and nothing else may be sent in its place.
      retry: send.error.retryable,
      edit: !send.error.retryable,
    });
  }

  async #deliver(send) {
    const host = this.#host;
    clearTimeout(send.timer);
    send.state = "sending";
    this.#timeline.setSending(send.clientId);
    try {
      const message = await api.sendMessage(send.room, send);
      if (host.room() === send.room) host.stored(message, { follow: this.#pending.has(send.clientId) });
      this.#pending.delete(send.clientId);
      host.unknown(send.room);
    } catch (err) {
      if (!this.#pending.has(send.clientId)) return; // the stream delivered it meanwhile
      send.state = "failed";
      send.error = err;
      if (err.status === 404) host.gone(send.room);
      if (host.room() === send.room) this.#showFailure(send);
      if (waitsForServer(send)) {
        // The stream may be up while this request was lost: try again by
        // ourselves, backing off; a reconnect also sends it at once.
        send.tries = (send.tries ?? 0) + 1;
        send.timer = setTimeout(() => {
          if (this.#pending.get(send.clientId) === send && send.state === "failed" && host.connected()) this.#deliver(send);
        }, Math.min(30_000, 1000 * 2 ** (send.tries - 1)));
      }
    }
  }
}
