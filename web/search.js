// Search (DESIGN §5d): the results of "Search messages" in a dialog, newest
// first, with "More results"; each one opens its room at that message.
// Each highlight becomes text and <mark> nodes (highlight.js).

import { searchMessages } from "./api.js";
import { describeError, setStatus } from "./forms.js";
import { highlightNodes } from "./highlight.js";

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class SearchResults {
  #ui;
  #roomLabel;
  #onJump;
  #query = "";
  #next = null;
  #abort = null;

  /**
   * @param {object} ui `{dialog, status, results, more}`
   * @param {(room: string) => string} roomLabel how a room is named (a direct room by its people)
   * @param {(room: string, seq: number) => void} onJump opens the room at the message
   */
  constructor(ui, roomLabel, onJump) {
    this.#ui = ui;
    this.#roomLabel = roomLabel;
    this.#onJump = onJump;
    ui.more.addEventListener("click", () => this.#load());
    ui.results.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-seq]");
      if (link === null || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      ui.dialog.close();
      this.#onJump(link.dataset.room, Number(link.dataset.seq));
    });
  }

  /** Searches for `query` and shows the first results. */
  search(query) {
    this.#query = query;
    this.#next = null;
    this.#ui.results.replaceChildren();
    this.#ui.more.hidden = true;
    if (!this.#ui.dialog.open) this.#ui.dialog.showModal();
    this.#ui.dialog.querySelector("[data-close]").focus();
    this.#load();
  }

  async #load() {
    this.#abort?.abort();
    const abort = new AbortController();
    this.#abort = abort;
    const first = this.#next === null;
    setStatus(this.#ui.status, "Searching…");
    this.#ui.more.disabled = true;
    try {
      const page = await searchMessages(this.#query, { before: this.#next }, abort.signal);
      if (this.#abort !== abort) return;
      const items = (page.results ?? []).map((result) => this.#render(result));
      this.#ui.results.append(...items);
      this.#next = page.next ?? null;
      this.#ui.more.hidden = this.#next === null;
      const count = this.#ui.results.childElementCount;
      setStatus(
        this.#ui.status,
        count === 0
          ? `No messages match “${this.#query}”.`
          : `${count} ${count === 1 ? "message matches" : "messages match"} “${this.#query}”${this.#next === null ? "." : " so far."}`,
      );
      // After "More results", focus goes to the first new result.
      if (!first) items[0]?.querySelector("a")?.focus();
    } catch (err) {
      if (err.name === "AbortError") return;
      setStatus(this.#ui.status, err.status === 400 ? `That search cannot be run: ${err.message}` : `Search failed: ${describeError(err)}`, { error: true });
    } finally {
      this.#ui.more.disabled = false;
    }
  }

  #render({ message, highlight }) {
    const item = el("li", "search-result");
    const link = el("a", "search-link");
    link.href = `/?room=${encodeURIComponent(message.room)}`;
    link.dataset.room = message.room;
    link.dataset.seq = String(message.seq);
    const meta = el("span", "search-meta");
    const at = new Date(message.sent_at);
    const time = el("time", "", timeFormat.format(at));
    time.dateTime = at.toISOString();
    meta.append(el("span", "search-room", this.#roomLabel(message.room)), " · ", el("span", "search-author", message.author), " · ", time);
    const text = el("span", "search-text");
    text.append(...(typeof highlight === "string" ? highlightNodes(highlight) : [document.createTextNode(message.text ?? "")]));
    link.append(meta, text);
    item.append(link);
    return item;
  }
}
