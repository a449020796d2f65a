// The member list of the open room (the header's Members button): a presence
// dot per person, Add and Remove and the topic for the room's owner and
// admins only, and Leave for its members (not in a direct room).

import * as api from "./api.js";
import { checkFields, describeError, setFieldError, setStatus } from "./forms.js";

const $ = (id) => document.getElementById(id);

export class MembersPanel {
  #ui = {
    button: $("members-button"),
    dialog: $("members-dialog"),
    heading: $("members-heading"),
    about: $("members-about"),
    list: $("member-list"),
    status: $("members-status"),
    addForm: $("add-member-form"),
    name: $("member-name"),
    topicForm: $("topic-form"),
    topic: $("topic-text"),
    leave: $("leave-room"),
  };
  #host;
  /** The open room's members, as last fetched: `[user]`. */
  #members = [];
  /**
   * @param {object} host what the page knows: `view()` (the open room:
   *   `{room, abort}` or null), `me()`, `roomInfo(name)`, `roomLabel(name)`,
   *   `refreshRooms()`, `show(dialog, focus)`, `onPeople(list)` (members
   *   fetched), `onGone(view)` (the room is no longer readable), `onLeft(room,
   *   wasPrivate)`.
   */
  constructor(host) {
    this.#host = host;
    const ui = this.#ui;
    ui.button.addEventListener("click", () => {
      const view = host.view();
      if (view === null) return;
      setStatus(ui.status, "");
      setFieldError(ui.name, "");
      this.#render();
      host.show(ui.dialog, ui.dialog.querySelector("[data-close]"));
      this.load(view);
    });
    ui.addForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#add();
    });
    ui.list.addEventListener("click", (event) => {
      const remove = event.target.closest("button[data-remove]");
      if (remove !== null) this.#remove(remove.dataset.remove);
    });
    ui.topicForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#saveTopic();
    });
    ui.leave.addEventListener("click", () => this.#leave());
  }

  /** The open room's members as last fetched. */
  get members() {
    return this.#members;
  }

  /** Forgets the members (another room opens) and closes the dialog. */
  reset() {
    this.#members = [];
    if (this.#ui.dialog.open) this.#ui.dialog.close();
  }

  /** Fetches the members of `view` (the open room). */
  async load(view) {
    const host = this.#host;
    try {
      const list = await api.listMembers(view.room, view.abort.signal);
      if (host.view() !== view) return;
      this.#members = list;
      host.onPeople(list);
      if (this.#ui.dialog.open) this.#render();
    } catch (err) {
      if (err.name === "AbortError" || host.view() !== view) return;
      if (err.status === 404) host.onGone(view);
    }
  }

  /** Shows the list again if it is open (the room list changed, say). */
  refresh() {
    if (this.#ui.dialog.open) this.#render();
  }

  /** Whether you may manage the room's members and topic: an admin, or its owner. */
  #mayManage(info) {
    const me = this.#host.me();
    if (me === null || info === null) return false;
    return me.role === "admin" || (typeof info.owner === "string" && info.owner === me.username);
  }

  #render() {
    const host = this.#host;
    const ui = this.#ui;
    const view = host.view();
    const me = host.me();
    if (view === null || me === null) return;
    const info = host.roomInfo(view.room);
    const manage = this.#mayManage(info);
    ui.heading.textContent = `Members of ${host.roomLabel(view.room)}`;
    ui.about.textContent =
      info?.visibility === "direct"
        ? "A direct message: only these people can read it, and nobody can be added or removed."
        : info?.visibility === "private"
          ? "A private room: only its members can find and read it."
          : "A public room: anyone signed in can read it; people who join or post are members.";
    const items = this.#members.map((user) => {
      const item = document.createElement("li");
      const name = document.createElement("span");
      name.className = "member-name";
      name.textContent = user.display_name;
      const handle = document.createElement("span");
      handle.className = "field-help";
      handle.textContent = ` @${user.username}${user.id === me.id ? " (you)" : ""}`;
      item.append(host.presenceDot(user.id), name, handle);
      if (manage && user.id !== me.id && user.username !== info?.owner) {
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "plain-button";
        remove.dataset.remove = user.username;
        remove.textContent = "Remove";
        remove.setAttribute("aria-label", `Remove ${user.display_name} (@${user.username})`);
        item.append(remove);
      }
      return item;
    });
    ui.list.replaceChildren(...items);
    ui.addForm.hidden = !manage || info?.visibility !== "private";
    ui.topicForm.hidden = !manage;
    if (!ui.topicForm.hidden && document.activeElement !== ui.topic) ui.topic.value = info?.topic ?? "";
    ui.leave.hidden = !this.#members.some((m) => m.id === me.id) || info?.visibility === "direct";
  }

  async #add() {
    const ui = this.#ui;
    const username = ui.name.value.trim().replace(/^@/, "").toLowerCase();
    if (!checkFields([[ui.name, username === "" ? "Type the username of the person to add." : api.usernameError(username)]])) return;
    const view = this.#host.view();
    if (view === null) return;
    if (this.#members.some((m) => m.username === username)) {
      setFieldError(ui.name, `@${username} is already a member of #${view.room}.`);
      ui.name.focus();
      return;
    }
    try {
      await api.addMember(view.room, username);
      ui.name.value = "";
      await this.load(view); // the list first, then the news: nothing moves after it is said
      setStatus(ui.status, `@${username} can now see #${view.room}.`);
    } catch (err) {
      setFieldError(ui.name, err.status === 404 ? `There is no account named @${username}.` : `Not added: ${describeError(err)}`);
    }
    ui.name.focus();
  }

  async #remove(username) {
    const ui = this.#ui;
    const view = this.#host.view();
    if (view === null) return;
    try {
      await api.removeMember(view.room, username);
      await this.load(view);
      setStatus(ui.status, `@${username} is no longer a member of #${view.room}.`);
    } catch (err) {
      setStatus(ui.status, `@${username} was not removed: ${describeError(err)}`, { error: true });
    }
    (ui.list.querySelector("button") ?? ui.dialog.querySelector("[data-close]")).focus();
  }

  async #saveTopic() {
    const ui = this.#ui;
    const view = this.#host.view();
    if (view === null) return;
    const topic = ui.topic.value.trim();
    const tooLong = [...topic].length > api.MAX_TOPIC_CHARS;
    if (!checkFields([[ui.topic, tooLong ? `A topic is at most ${api.MAX_TOPIC_CHARS} characters.` : null]])) return;
    try {
      await api.setTopic(view.room, topic);
      setStatus(ui.status, topic === "" ? "The topic is cleared." : "The topic is saved.");
      await this.#host.refreshRooms();
    } catch (err) {
      setFieldError(ui.topic, `Not saved: ${describeError(err)}`);
    }
  }

  async #leave() {
    const host = this.#host;
    const view = host.view();
    const me = host.me();
    if (view === null || me === null) return;
    const room = view.room;
    try {
      await api.removeMember(room, me.username);
    } catch (err) {
      setStatus(
        this.#ui.status,
        err.status === 409 ? `You own #${room}, so you cannot leave it.` : `You did not leave #${room}: ${describeError(err)}`,
        { error: true },
      );
      return;
    }
    this.#ui.dialog.close();
    const wasPrivate = host.roomInfo(room)?.visibility === "private";
    await host.refreshRooms();
    host.onLeft(room, wasPrivate);
  }
}
