// A stored message's actions (DESIGN §5e's names): Reply (the composer
// quotes it), Add reaction (a picker of emoji buttons), reaction chips that
// toggle your own, Edit in place (yours), and Delete after a confirmation.

import * as api from "./api.js";
import { editInPlace } from "./editor.js";
import { describeError } from "./forms.js";

const $ = (id) => document.getElementById(id);
const EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "✅"];

export class MessageActions {
  #ui = {
    messages: $("messages"),
    text: $("composer-text"),
    reply: $("composer-reply"),
    replyText: $("composer-reply-text"),
    replyCancel: $("composer-reply-cancel"),
    deleteDialog: $("delete-dialog"),
    deleteConfirm: $("delete-confirm"),
    reactDialog: $("react-dialog"),
    reactChoices: $("react-choices"),
  };
  #timeline;
  #host;
  /** The message a send will reply to: `{seq}`, or null. */
  #replyTo = null;
  /** The message a dialog (delete, react) is about: `{room, seq}`. */
  #actingOn = null;

  /**
   * @param {import("./timeline.js").Timeline} timeline
   * @param {object} host `room()` (the open room, or null), `show(dialog,
   *   focus)`, `notice(text)`, `enterSaves()` (Enter saves an edit: not on touch)
   */
  constructor(timeline, host) {
    this.#timeline = timeline;
    this.#host = host;
    const ui = this.#ui;
    ui.replyCancel.addEventListener("click", () => {
      this.setReply(null);
      ui.text.focus();
    });
    ui.messages.addEventListener("click", (event) => {
      const control = event.target.closest("button[data-msg-action]");
      if (control !== null) this.#act(control);
    });
    ui.reactChoices.addEventListener("click", (event) => {
      const choice = event.target.closest("button[data-emoji]");
      if (choice !== null) this.#pick(choice.dataset.emoji);
    });
    ui.deleteConfirm.addEventListener("click", () => this.#delete());
  }

  /** The seq the next send replies to, or null. */
  get replyTo() {
    return this.#replyTo?.seq ?? null;
  }

  /** Quotes message `seq` above the composer (null: no reply). */
  setReply(seq) {
    const ui = this.#ui;
    this.#replyTo = seq === null ? null : { seq };
    ui.reply.hidden = seq === null;
    if (seq !== null) {
      const item = this.#timeline.item(seq);
      const text = (item?.querySelector(":scope > .msg-text")?.textContent ?? "").split("\n")[0].slice(0, 80);
      ui.replyText.textContent = `Replying to ${item?.dataset.author ?? "a message"}: ${text}`;
    }
  }

  /** Edits your message `seq` in place; saving applies the stored edit at once (the stream's copy changes nothing). */
  startEdit(seq) {
    const timeline = this.#timeline;
    const item = timeline.item(seq);
    const room = this.#host.room();
    if (item === undefined || room === null) return;
    editInPlace(item, {
      enterSaves: () => this.#host.enterSaves(),
      save: async (text) => {
        const problem = api.textError(text);
        if (problem !== null) return problem;
        try {
          const message = await api.editMessage(room, seq, text.trim());
          timeline.apply({ type: "edit", target: seq, text: message.text, mentions: message.mentions ?? [] });
          return null;
        } catch (err) {
          return `Not saved: ${describeError(err)}`;
        }
      },
    });
  }

  async #act(control) {
    const ui = this.#ui;
    const room = this.#host.room();
    if (room === null) return;
    const seq = Number(control.dataset.seq);
    switch (control.dataset.msgAction) {
      case "reply":
        this.setReply(seq);
        ui.text.focus();
        break;
      case "edit":
        this.startEdit(seq);
        break;
      case "delete":
        this.#actingOn = { room, seq };
        this.#host.show(ui.deleteDialog, ui.deleteDialog.querySelector("[data-close]"));
        break;
      case "react":
        this.#actingOn = { room, seq };
        ui.reactChoices.replaceChildren(
          ...EMOJI.map((emoji) => {
            const choice = document.createElement("button");
            choice.type = "button";
            choice.className = "emoji-choice";
            choice.textContent = emoji;
            choice.dataset.emoji = emoji;
            return choice;
          }),
        );
        this.#host.show(ui.reactDialog, ui.reactChoices.querySelector("button"));
        break;
      case "chip": {
        const mine = control.getAttribute("aria-pressed") === "true";
        try {
          await api.react(room, seq, control.dataset.emoji, !mine);
        } catch (err) {
          this.#host.notice(`The reaction was not changed: ${describeError(err)}`);
        }
        break;
      }
    }
  }

  async #pick(emoji) {
    if (this.#actingOn === null) return;
    const { room, seq } = this.#actingOn;
    this.#ui.reactDialog.close();
    const already = this.#timeline.reactions(seq).some((r) => r.emoji === emoji && r.me);
    try {
      if (!already) await api.react(room, seq, emoji, true);
    } catch (err) {
      this.#host.notice(`The reaction was not added: ${describeError(err)}`);
    }
    this.#timeline.item(seq)?.focus();
  }

  async #delete() {
    if (this.#actingOn === null) return;
    const { room, seq } = this.#actingOn;
    this.#ui.deleteDialog.close();
    try {
      await api.deleteMessage(room, seq);
      if (this.#host.room() === room) this.#timeline.apply({ type: "delete", target: seq });
    } catch (err) {
      this.#host.notice(`The message was not deleted: ${describeError(err)}`);
    }
    this.#ui.text.focus();
  }
}
