// `@` autocomplete in a textarea: the people whose username or display name
// starts with the word typed after "@" before the caret, in a listbox the
// textarea points at (`aria-activedescendant`); arrows move, Enter or Tab
// inserts `@username `, Escape closes.

const LIMIT = 6;

export class MentionPicker {
  #text;
  #list;
  #candidates;
  #onInsert;
  #active = 0;

  /**
   * @param {HTMLTextAreaElement} text
   * @param {HTMLUListElement} list a `role="listbox"`
   * @param {object} options
   * @param {() => Array<{id, username, display_name}>} options.candidates
   * @param {() => void} [options.onInsert]
   */
  constructor(text, list, { candidates, onInsert = () => {} }) {
    this.#text = text;
    this.#list = list;
    this.#candidates = candidates;
    this.#onInsert = onInsert;
    text.addEventListener("input", () => {
      this.#active = 0;
      this.#show();
    });
    text.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    text.addEventListener("keydown", (event) => this.#key(event));
    list.addEventListener("mousedown", (event) => {
      const option = event.target.closest("[data-username]");
      if (option === null) return;
      event.preventDefault(); // keep the focus in the textarea
      this.#insert(option.dataset.username);
    });
  }

  get open() {
    return !this.#list.hidden;
  }

  close() {
    this.#list.hidden = true;
    this.#list.replaceChildren();
    this.#text.removeAttribute("aria-activedescendant");
  }

  /** The `@word` just before the caret: `{start, word}`, or null. */
  #atCaret() {
    const before = this.#text.value.slice(0, this.#text.selectionStart);
    const match = /(^|\s)@([\p{L}\p{N}_.-]*)$/u.exec(before);
    return match === null ? null : { start: before.length - match[2].length - 1, word: match[2].toLowerCase() };
  }

  #show() {
    const at = this.#atCaret();
    const found =
      at === null
        ? []
        : this.#candidates()
            .filter((m) => m.username.startsWith(at.word) || m.display_name.toLowerCase().startsWith(at.word))
            .slice(0, LIMIT);
    if (found.length === 0) {
      this.close();
      return;
    }
    this.#active = Math.min(this.#active, found.length - 1);
    this.#list.replaceChildren(
      ...found.map((user, i) => {
        const option = document.createElement("li");
        option.id = `${this.#list.id}-${i}`;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", String(i === this.#active));
        option.dataset.username = user.username;
        const name = document.createElement("strong");
        name.textContent = user.display_name;
        option.append(name, ` @${user.username}`);
        return option;
      }),
    );
    this.#list.hidden = false;
    this.#text.setAttribute("aria-activedescendant", `${this.#list.id}-${this.#active}`);
  }

  #insert(username) {
    const at = this.#atCaret();
    if (at === null) return;
    const caret = this.#text.selectionStart;
    const text = `@${username} `;
    this.#text.value = this.#text.value.slice(0, at.start) + text + this.#text.value.slice(caret);
    this.#text.selectionStart = this.#text.selectionEnd = at.start + text.length;
    this.close();
    this.#onInsert();
    this.#text.focus();
  }

  #key(event) {
    if (!this.open) return;
    const options = [...this.#list.children];
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      this.#active = (this.#active + (event.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
      this.#show();
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      this.#insert(options[this.#active].dataset.username);
    } else if (event.key === "Escape") {
      event.preventDefault();
      this.close();
    }
  }
}
