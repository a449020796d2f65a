// Direct rooms (DESIGN §5d): their names in the sidebar, and the dialog
// "New direct message" that finds people as you type and opens the room of
// you and the 1 to 8 people chosen.

import { findPeople, openDirect } from "./api.js";
import { describeError, setStatus } from "./forms.js";

/** The most people a direct room has besides you. */
export const MAX_OTHERS = 8;
/** Milliseconds of quiet typing before people are looked up. */
const LOOKUP_DELAY_MS = 150;

/** The other members of a direct room (`[user]`), you left out. */
export function othersIn(room, me) {
  return (room.members ?? []).filter((m) => m.id !== me?.id);
}

/** A direct room's name for people: its other members' display names. */
export function directLabel(room, me) {
  const others = othersIn(room, me);
  if (others.length === 0) return "Just you";
  return others.map((m) => m.display_name || m.username).join(", ");
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function personButton(user, label, data) {
  const button = el("button", "plain-button", label);
  button.type = "button";
  button.dataset[data] = user.username;
  button.setAttribute("aria-label", `${label} ${user.display_name} (@${user.username})`);
  return button;
}

export class DirectPicker {
  #ui;
  #me;
  #onOpen;
  /** The people chosen, by username (at most `MAX_OTHERS`). */
  #chosen = new Map();
  /** The last people found, by username. */
  #found = new Map();
  #lookup = null;
  #timer = null;

  /**
   * @param {object} ui `{dialog, form, query, results, chosen, status}`
   * @param {() => object} me the signed-in user
   * @param {(room: object) => void} onOpen the direct room to open
   */
  constructor(ui, me, onOpen) {
    this.#ui = ui;
    this.#me = me;
    this.#onOpen = onOpen;
    ui.query.addEventListener("input", () => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#find(), LOOKUP_DELAY_MS);
    });
    ui.query.addEventListener("keydown", (event) => {
      // Enter in the search field takes the first person found.
      if (event.key !== "Enter") return;
      event.preventDefault();
      const first = this.#found.values().next().value;
      if (first !== undefined) this.#choose(first);
    });
    ui.results.addEventListener("click", (event) => {
      const add = event.target.closest("button[data-add]");
      const user = add && this.#found.get(add.dataset.add);
      if (user) this.#choose(user);
    });
    ui.chosen.addEventListener("click", (event) => {
      const remove = event.target.closest("button[data-unchoose]");
      if (remove === null) return;
      this.#chosen.delete(remove.dataset.unchoose);
      this.#render();
      ui.query.focus();
    });
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#start();
    });
  }

  /** Resets and shows the dialog, focus in the search field. */
  open() {
    this.#chosen.clear();
    this.#found.clear();
    this.#ui.query.value = "";
    setStatus(this.#ui.status, "");
    this.#render();
    if (!this.#ui.dialog.open) this.#ui.dialog.showModal();
    this.#ui.query.focus();
  }

  #choose(user) {
    if (this.#chosen.size >= MAX_OTHERS) {
      setStatus(this.#ui.status, `A direct message has at most ${MAX_OTHERS} people besides you.`, { error: true });
      return;
    }
    this.#chosen.set(user.username, user);
    this.#ui.query.value = "";
    this.#found.clear();
    setStatus(this.#ui.status, `${user.display_name} added.`);
    this.#render();
    this.#ui.query.focus();
  }

  async #find() {
    const query = this.#ui.query.value.trim().replace(/^@/, "");
    this.#lookup?.abort();
    if (query === "") {
      this.#found.clear();
      this.#render();
      return;
    }
    const lookup = new AbortController();
    this.#lookup = lookup;
    try {
      const people = await findPeople(query, lookup.signal);
      if (this.#lookup !== lookup) return;
      const me = this.#me();
      this.#found = new Map(people.filter((p) => p.id !== me?.id && !this.#chosen.has(p.username)).map((p) => [p.username, p]));
      this.#render();
      setStatus(this.#ui.status, this.#found.size === 0 ? `Nobody found for “${query}”.` : "");
    } catch (err) {
      if (err.name !== "AbortError") setStatus(this.#ui.status, `People could not be looked up: ${describeError(err)}`, { error: true });
    }
  }

  #render() {
    this.#ui.results.replaceChildren(
      ...[...this.#found.values()].map((user) => {
        const item = el("li");
        item.append(el("span", "member-name", user.display_name), el("span", "field-help", ` @${user.username} `), personButton(user, "Add", "add"));
        return item;
      }),
    );
    const chosen = [...this.#chosen.values()].map((user) => {
      const item = el("li");
      item.append(el("span", "member-name", user.display_name), el("span", "field-help", ` @${user.username} `), personButton(user, "Remove", "unchoose"));
      return item;
    });
    if (chosen.length === 0) chosen.push(el("li", "field-help", "Nobody yet."));
    this.#ui.chosen.replaceChildren(...chosen);
  }

  async #start() {
    if (this.#chosen.size === 0) {
      setStatus(this.#ui.status, "Choose at least one person first.", { error: true });
      this.#ui.query.focus();
      return;
    }
    try {
      const room = await openDirect([...this.#chosen.keys()]);
      this.#ui.dialog.close();
      this.#onOpen(room);
    } catch (err) {
      setStatus(this.#ui.status, `The conversation could not be started: ${describeError(err)}`, { error: true });
    }
  }
}
