// "Browse rooms": every public room with its topic, each a link, and Join
// for the ones you have not joined.

import * as api from "./api.js";
import { describeError, setStatus } from "./forms.js";

const $ = (id) => document.getElementById(id);

export class BrowseDialog {
  #ui = { button: $("browse-button"), dialog: $("browse-dialog"), list: $("browse-list"), status: $("browse-status") };
  #host;

  /**
   * @param {object} host `rooms()` (the room list), `me()`, `roomUrl(name)`,
   *   `open(name)` (navigates), `refreshRooms()`, `show(dialog, focus)`
   */
  constructor(host) {
    this.#host = host;
    const ui = this.#ui;
    ui.button.addEventListener("click", () => {
      setStatus(ui.status, "");
      this.#render();
      host.show(ui.dialog, ui.list.querySelector("button, a") ?? undefined);
      host.refreshRooms();
    });
    ui.list.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-room]");
      if (link !== null && event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey) {
        event.preventDefault();
        ui.dialog.close();
        host.open(link.dataset.room);
        return;
      }
      const join = event.target.closest("button[data-join]");
      if (join !== null) this.#join(join.dataset.join);
    });
  }

  /** Shows the list again if it is open (the room list changed). */
  refresh() {
    if (this.#ui.dialog.open) this.#render();
  }

  async #join(room) {
    const host = this.#host;
    try {
      await api.addMember(room, host.me().username);
      await host.refreshRooms();
      setStatus(this.#ui.status, `You joined #${room}.`);
    } catch (err) {
      setStatus(this.#ui.status, `Could not join #${room}: ${describeError(err)}`, { error: true });
    }
  }

  #render() {
    const rooms = this.#host.rooms().filter((r) => r.visibility === "public");
    const items = rooms.map((room) => {
      const item = document.createElement("li");
      const name = document.createElement("a");
      name.href = this.#host.roomUrl(room.name);
      name.className = "member-name";
      name.textContent = `#${room.name}`;
      name.dataset.room = room.name;
      item.append(name);
      if (room.topic) {
        const topic = document.createElement("span");
        topic.className = "field-help";
        topic.textContent = ` ${room.topic}`;
        item.append(topic);
      }
      if (room.joined === false) {
        const join = document.createElement("button");
        join.type = "button";
        join.className = "plain-button";
        join.dataset.join = room.name;
        join.textContent = "Join";
        join.setAttribute("aria-label", `Join #${room.name}`);
        item.append(join);
      } else if (room.joined === true) {
        const joined = document.createElement("span");
        joined.className = "field-help";
        joined.textContent = " joined";
        item.append(joined);
      }
      return item;
    });
    if (items.length === 0) {
      const none = document.createElement("li");
      none.textContent = "No public rooms yet.";
      items.push(none);
    }
    this.#ui.list.replaceChildren(...items);
  }
}
