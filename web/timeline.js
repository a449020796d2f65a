// The message list: stored messages ordered by seq, each shown once, then the
// sends still pending. User text only ever becomes text nodes (markup.js).

import { renderFiles } from "./files.js";
import { renderText } from "./markup.js";

const GROUP_WINDOW_MS = 5 * 60 * 1000;

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

function dayLabel(date) {
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (date.toDateString() === today.toDateString()) return "Today";
  if (date.toDateString() === yesterday.toDateString()) return "Yesterday";
  return date.toLocaleDateString(undefined, {
    weekday: "long",
    month: "long",
    day: "numeric",
    year: date.getFullYear() === today.getFullYear() ? undefined : "numeric",
  });
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(label, action, clientId) {
  const node = el("button", "link-button", label);
  node.type = "button";
  node.dataset.action = action;
  node.dataset.clientId = clientId;
  return node;
}

/** Who wrote a message: the account when known, else the name (anonymous seed API). */
function authorKey(authorId, author) {
  return authorId ? `id:${authorId}` : `name:${author}`;
}

/** One of eight author colours, stable for an account (or, without one, a name). */
function hue(key) {
  let hash = 0;
  for (const ch of key) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 8;
}

/** A small action button on a stored message (shown on hover and focus). */
function action(label, name, seq) {
  const node = el("button", "msg-action", label);
  node.type = "button";
  node.dataset.msgAction = name;
  node.dataset.seq = String(seq);
  return node;
}

/** The reaction chips of a message: buttons named by emoji and count, pressed when one is yours. */
function renderReactions(item, reactions) {
  let row = item.querySelector(":scope > .msg-reactions");
  if (reactions.length === 0) {
    row?.remove();
    return;
  }
  if (row === null) {
    row = el("div", "msg-reactions");
    (item.querySelector(":scope > .msg-files") ?? item.querySelector(":scope > .msg-text")).after(row);
  }
  row.replaceChildren(
    ...reactions.map((r) => {
      const chip = el("button", "chip", `${r.emoji} ${r.count}`);
      chip.type = "button";
      chip.dataset.msgAction = "chip";
      chip.dataset.seq = item.dataset.seq;
      chip.dataset.emoji = r.emoji;
      chip.setAttribute("aria-pressed", String(r.me));
      return chip;
    }),
  );
}

function render({ author, authorId = null, text, at, seq = null, clientId = null, files = [] }) {
  const key = authorKey(authorId, author);
  // An <article> (role "article"), reachable by Up and Down in the log.
  const item = el("article", `msg hue-${hue(key)}`);
  item.tabIndex = -1;
  item.dataset.author = author;
  item.dataset.authorKey = key;
  item.dataset.at = String(at.getTime());
  if (seq !== null) item.dataset.seq = String(seq);
  if (clientId !== null) item.dataset.clientId = clientId;

  const meta = el("div", "msg-meta");
  meta.append(el("span", "msg-author", author), " ");
  const handle = el("span", "msg-username");
  meta.append(handle, " ");
  const time = el("time", "msg-time", timeFormat.format(at));
  time.dateTime = at.toISOString();
  time.title = fullFormat.format(at);
  meta.append(time);

  const body = el("div", "msg-text");
  renderText(text, body);
  item.append(meta, body);
  const attached = renderFiles(files);
  if (attached !== null) item.append(attached);
  return item;
}

export class Timeline {
  #list;
  /** The viewer: `{id, role}` (whose messages may be edited and deleted here). */
  viewer = null;
  #bySeq = new Map();
  #pending = new Map();
  /** Per stored message: `{reactions: [{emoji, count, me}], reply}`. */
  #state = new Map();
  /** Display name → the author keys shown under it. */
  #names = new Map();
  /** Author key → username, as far as known. */
  #usernames = new Map();

  /** @param {HTMLElement} list */
  constructor(list) {
    this.#list = list;
  }

  clear() {
    this.#state.clear();
    this.#bySeq.clear();
    this.#pending.clear();
    this.#names.clear();
    this.#list.replaceChildren();
  }

  /** Records who is who (`[{id, username}]`) and shows the @usernames now known. */
  addPeople(users) {
    let changed = false;
    for (const user of users) {
      const key = authorKey(user.id, "");
      if (this.#usernames.get(key) !== user.username) {
        this.#usernames.set(key, user.username);
        changed = true;
      }
    }
    if (changed) for (const item of this.#list.children) this.#identify(item);
  }

  /** Author ids shown whose username is not known yet. */
  get unknownAuthors() {
    const ids = new Set();
    for (const keys of this.#names.values()) {
      for (const key of keys) if (key.startsWith("id:") && !this.#usernames.has(key)) ids.add(key.slice(3));
    }
    return ids;
  }

  /** Notes the item's name and account; if the name is now shared, every item of that name shows who it is. */
  #track(item) {
    const { author, authorKey: key } = item.dataset;
    let keys = this.#names.get(author);
    if (keys === undefined) {
      keys = new Set();
      this.#names.set(author, keys);
    }
    const grew = !keys.has(key);
    keys.add(key);
    if (grew && keys.size > 1) {
      for (const other of this.#list.children) if (other.dataset.author === author) this.#identify(other);
    } else {
      this.#identify(item);
    }
  }

  /** The @username beside the name: always there for hover and focus, shown outright when the name is shared. */
  #identify(item) {
    const { author, authorKey: key } = item.dataset;
    const username = this.#usernames.get(key);
    const handle = item.querySelector(".msg-username");
    if (handle === null) return;
    const shared = (this.#names.get(author)?.size ?? 0) > 1;
    if (username !== undefined) handle.textContent = `@${username}`;
    else if (key.startsWith("name:")) handle.textContent = "(no account)";
    else handle.textContent = shared ? `(account ${key.slice(3, 9)})` : "";
    item.classList.toggle("msg--shared-name", shared);
  }

  get size() {
    return this.#bySeq.size;
  }

  get oldestSeq() {
    const first = this.#list.querySelector(".msg[data-seq]");
    return first === null ? null : Number(first.dataset.seq);
  }

  has(seq) {
    return this.#bySeq.has(seq);
  }

  /**
   * Inserts a stored message in seq order; false if it is already shown.
   * Its `as_of` is the room seq its state is as of: every event up to it is
   * already applied, so those are not applied to it again.
   */
  add(message) {
    if (this.#bySeq.has(message.seq)) return false;
    if (message.author_id && message.author_username) this.#usernames.set(authorKey(message.author_id, ""), message.author_username);
    const item = render({
      author: message.author,
      authorId: message.author_id ?? null,
      text: message.text,
      at: new Date(message.sent_at),
      seq: message.seq,
      clientId: message.client_id,
      files: message.deleted ? [] : (message.files ?? []),
    });
    item.classList.add("msg--stored");
    const asOf = Number.isInteger(message.as_of) ? message.as_of : 0;
    this.#state.set(message.seq, {
      reactions: (message.reactions ?? []).map((r) => ({ ...r })),
      reply: message.reply_to ?? null,
      asOf,
    });
    if (message.reply_to !== null && message.reply_to !== undefined) item.prepend(this.#replyQuote(message.reply_to));
    if (message.deleted) this.#tombstone(item);
    else if (message.edited_at) this.#markEdited(item);
    if (this.viewer !== null && (message.mentions ?? []).includes(this.viewer.id)) item.classList.add("msg--mention");
    renderReactions(item, this.#state.get(message.seq).reactions);
    if (!message.deleted) this.#addActions(item, message);
    const first = this.#list.firstElementChild;
    let next = null;
    if (first !== null && first.dataset.seq !== undefined && Number(first.dataset.seq) > message.seq) {
      next = first; // an older page, inserted newest first
    } else {
      // Usually the newest: walk back from the end past pending sends and newer seqs.
      for (let node = this.#list.lastElementChild; node !== null; node = node.previousElementSibling) {
        if (node.dataset.seq !== undefined && Number(node.dataset.seq) < message.seq) break;
        next = node;
      }
    }
    this.#list.insertBefore(item, next);
    this.#bySeq.set(message.seq, item);
    this.#track(item);
    this.#decorate(item);
    if (item.nextElementSibling) this.#decorate(item.nextElementSibling);
    return true;
  }

  /** Shows a send that is not stored yet, after everything stored. */
  addPending({ clientId, author, authorId, text, at, files = [] }) {
    const item = render({ author, authorId, text: text.trim(), at, clientId, files });
    item.classList.add("msg--pending");
    item.append(el("div", "msg-status"));
    this.#list.append(item);
    this.#pending.set(clientId, item);
    this.#track(item);
    this.#decorate(item);
    this.setSending(clientId);
  }

  setSending(clientId, text = "Sending…") {
    const item = this.#pending.get(clientId);
    if (!item) return;
    item.classList.remove("msg--failed");
    item.querySelector(".msg-status").replaceChildren(el("span", "", text));
  }

  /** A send that will be tried again by itself once the server is back. */
  setWaiting(clientId, reason) {
    const item = this.#pending.get(clientId);
    if (!item) return;
    item.classList.remove("msg--failed");
    const status = item.querySelector(".msg-status");
    status.replaceChildren(el("span", "msg-waiting", `Not sent yet: ${reason} It is sent by itself once the server answers.`));
    status.append(" ", button("Send now", "retry", clientId), " ", button("Discard", "discard", clientId));
  }

  /** Marks a send as failed, with its reason and what the user can do. */
  setFailed(clientId, reason, { retry, edit }) {
    const item = this.#pending.get(clientId);
    if (!item) return;
    item.classList.add("msg--failed");
    const status = item.querySelector(".msg-status");
    status.replaceChildren(el("span", "msg-error", `Not sent: ${reason}`));
    if (retry) status.append(" ", button("Retry", "retry", clientId));
    if (edit) status.append(" ", button("Edit", "edit", clientId));
    status.append(" ", button("Discard", "discard", clientId));
  }

  removePending(clientId) {
    const item = this.#pending.get(clientId);
    if (!item) return;
    this.#pending.delete(clientId);
    const next = item.nextElementSibling;
    item.remove();
    if (next) this.#decorate(next);
  }

  /** A "New messages" divider above the first message by someone else after `readSeq` (one at a time). */
  markNew(readSeq) {
    this.#list.querySelector(".new-divider")?.remove();
    for (const item of this.#list.querySelectorAll(".msg--stored")) {
      const own = this.viewer !== null && item.dataset.authorKey === `id:${this.viewer.id}`;
      if (Number(item.dataset.seq) > readSeq && !own) {
        const divider = el("div", "new-divider", "New messages");
        divider.setAttribute("role", "separator");
        const day = item.querySelector(":scope > .day-divider");
        if (day !== null) day.after(divider);
        else item.prepend(divider);
        return;
      }
    }
  }

  /** Marks `seq` as the message jumped to (one at a time); its item, or undefined. */
  highlight(seq) {
    for (const node of this.#list.querySelectorAll(".msg--highlight")) node.classList.remove("msg--highlight");
    const item = this.#bySeq.get(seq);
    item?.classList.add("msg--highlight");
    return item;
  }

  /** The stored message item of `seq`, or undefined. */
  item(seq) {
    return this.#bySeq.get(seq);
  }

  /** Reactions of a shown message. */
  reactions(seq) {
    return this.#state.get(seq)?.reactions ?? [];
  }

  /**
   * Applies an edit, delete or reaction frame (a second time changes
   * nothing). An event the message's state already includes (its seq at or
   * below the message's `as_of`) is skipped, and an applied one moves
   * `as_of` to it: a replayed message comes as it is stored now, and its
   * later events still follow it (DESIGN §5b, `as_of` in the README's
   * contract). A frame without a seq is this page's own change, applied now.
   */
  apply(frame) {
    const item = this.#bySeq.get(frame.target);
    if (item === undefined) return;
    const state = this.#state.get(frame.target);
    if (Number.isInteger(frame.seq)) {
      if (frame.seq <= state.asOf) return;
      state.asOf = frame.seq;
    }
    if (frame.type === "edit") {
      if (item.classList.contains("msg--deleted")) return;
      const body = el("div", "msg-text");
      renderText(frame.text, body);
      item.querySelector(":scope > .msg-text").replaceWith(body);
      item.classList.toggle("msg--mention", this.viewer !== null && (frame.mentions ?? []).includes(this.viewer.id));
      this.#markEdited(item);
    } else if (frame.type === "delete") {
      this.#tombstone(item);
    } else if (frame.type === "reaction") {
      const mine = this.viewer !== null && frame.user_id === this.viewer.id;
      let entry = state.reactions.find((r) => r.emoji === frame.emoji);
      if (mine && entry !== undefined && entry.me === frame.on) return; // already applied
      if (frame.on) {
        if (entry === undefined) {
          entry = { emoji: frame.emoji, count: 0, me: false };
          state.reactions.push(entry);
        }
        entry.count += 1;
        if (mine) entry.me = true;
      } else if (entry !== undefined) {
        entry.count = Math.max(0, entry.count - 1);
        if (mine) entry.me = false;
        if (entry.count === 0) state.reactions.splice(state.reactions.indexOf(entry), 1);
      }
      renderReactions(item, state.reactions);
    }
  }

  #markEdited(item) {
    const meta = item.querySelector(":scope > .msg-meta");
    if (meta.querySelector(".msg-edited") === null) meta.append(" ", el("span", "msg-edited", "(edited)"));
  }

  #tombstone(item) {
    item.classList.add("msg--deleted");
    item.querySelector(":scope > .msg-text").replaceChildren(el("em", "", "This message was deleted."));
    item.querySelector(":scope > .msg-actions")?.remove();
    item.querySelector(":scope > .msg-reactions")?.remove();
    item.querySelector(":scope > .msg-files")?.remove();
    item.querySelector(":scope > .msg-meta .msg-edited")?.remove();
  }

  /** A quote of the message replied to (its first line), or a note that it is not loaded. */
  #replyQuote(seq) {
    const quote = el("div", "msg-reply");
    const target = this.#bySeq.get(seq);
    if (target === undefined) {
      quote.textContent = "Reply to an earlier message";
    } else {
      const text = target.classList.contains("msg--deleted")
        ? "a deleted message"
        : (target.querySelector(":scope > .msg-text")?.textContent ?? "").split("\n")[0].slice(0, 120);
      quote.append(el("span", "msg-reply-author", target.dataset.author), " ", el("span", "", text));
    }
    return quote;
  }

  #addActions(item, message) {
    const bar = el("div", "msg-actions");
    bar.append(action("Reply", "reply", message.seq), action("Add reaction", "react", message.seq));
    const mine = this.viewer !== null && message.author_id === this.viewer.id;
    if (mine) bar.append(action("Edit", "edit", message.seq));
    if (mine || this.viewer?.role === "admin") bar.append(action("Delete", "delete", message.seq));
    item.append(bar);
  }

  /** Your newest stored message that is not deleted, or undefined. */
  get lastOwn() {
    if (this.viewer === null) return undefined;
    const own = [...this.#list.querySelectorAll(`.msg--stored[data-author-key="id:${CSS.escape(this.viewer.id)}"]:not(.msg--deleted)`)];
    return own.at(-1);
  }

  /** Day separators and grouping of consecutive messages by one author. */
  #decorate(item) {
    const prev = item.previousElementSibling;
    const at = new Date(Number(item.dataset.at));
    const newDay = prev === null || new Date(Number(prev.dataset.at)).toDateString() !== at.toDateString();
    const continued =
      !newDay &&
      prev.dataset.author === item.dataset.author &&
      prev.dataset.authorKey === item.dataset.authorKey &&
      Math.abs(at - Number(prev.dataset.at)) < GROUP_WINDOW_MS &&
      !prev.classList.contains("msg--failed");
    item.classList.toggle("msg--continued", continued);
    let divider = item.querySelector(":scope > .day-divider");
    if (newDay) {
      if (divider === null) {
        divider = el("div", "day-divider");
        divider.setAttribute("role", "separator");
        item.prepend(divider);
      }
      divider.textContent = dayLabel(at);
    } else if (divider !== null) {
      divider.remove();
    }
  }
}
