// The profile dialog (your name in the sidebar opens it): the display name
// (`PATCH /api/v1/me`), the password (`POST /api/v1/me/password`, which signs
// your other devices out) and the permission for mention notifications.

import * as api from "./api.js";
import { checkFields, describeError, setFieldError, setStatus } from "./forms.js";

const $ = (id) => document.getElementById(id);

export class ProfileDialog {
  #ui = {
    dialog: $("profile-dialog"),
    username: $("profile-username"),
    nameForm: $("name-form"),
    name: $("profile-name"),
    passwordForm: $("password-form"),
    currentPassword: $("current-password"),
    newPassword: $("new-password"),
    status: $("profile-status"),
    notify: $("notify-button"),
  };
  #me;
  #onRenamed;
  #onSessionEnded;

  /**
   * @param {() => object} me the signed-in user
   * @param {(user: object) => void} onRenamed the user with the new display name
   * @param {() => void} onSessionEnded the server no longer knows this session
   */
  constructor(me, onRenamed, onSessionEnded) {
    this.#me = me;
    this.#onRenamed = onRenamed;
    this.#onSessionEnded = onSessionEnded;
    this.#ui.nameForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#rename();
    });
    this.#ui.passwordForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#changePassword();
    });
    this.#ui.notify.addEventListener("click", () => this.#allowNotifications());
  }

  /** Fills the dialog from the signed-in user; `open` shows it with focus on the name. */
  open(show) {
    const ui = this.#ui;
    const me = this.#me();
    ui.username.textContent = `@${me.username}`;
    ui.name.value = me.display_name;
    for (const input of [ui.name, ui.currentPassword, ui.newPassword]) setFieldError(input, "");
    setStatus(ui.status, "");
    show(ui.dialog, ui.name);
  }

  async #rename() {
    const ui = this.#ui;
    const name = ui.name.value.trim();
    if (!checkFields([[ui.name, api.authorError(name)]])) return;
    try {
      const user = await api.setDisplayName(name);
      this.#onRenamed(user);
      setStatus(ui.status, `Your display name is now ${user.display_name}. New messages carry it.`);
    } catch (err) {
      if (err.status === 401) return this.#onSessionEnded();
      setFieldError(ui.name, err.code === "invalid_author" ? (api.authorError(name) ?? err.message) : `Not saved: ${describeError(err)}`);
      ui.name.focus();
    }
  }

  async #changePassword() {
    const ui = this.#ui;
    const current = ui.currentPassword.value;
    const next = ui.newPassword.value;
    const valid = checkFields([
      [ui.currentPassword, current === "" ? "Type your current password." : null],
      [ui.newPassword, api.passwordError(next) ?? (next === current ? "The new password is the same as the current one." : null)],
    ]);
    if (!valid) return;
    try {
      await api.changePassword(current, next);
      ui.currentPassword.value = "";
      ui.newPassword.value = "";
      setStatus(ui.status, "Your password is changed; your other devices are signed out.");
    } catch (err) {
      ui.currentPassword.value = "";
      ui.newPassword.value = "";
      const field = err.status === 401 ? ui.currentPassword : err.code === "invalid_password" ? ui.newPassword : ui.currentPassword;
      setFieldError(field, err.status === 401 ? "That is not your current password." : `Not changed: ${describeError(err)}`);
      field.focus();
    }
  }

  async #allowNotifications() {
    if (typeof Notification !== "function") {
      setStatus(this.#ui.status, "This browser cannot show notifications.");
      return;
    }
    const permission = await Notification.requestPermission();
    setStatus(
      this.#ui.status,
      permission === "granted"
        ? "You will be notified of mentions while Palaver is in the background."
        : "Notifications are blocked; the browser's site settings can allow them.",
    );
  }
}

/** A browser notification for a message that mentions `me` while the tab is hidden, once allowed; `where` names its room. */
export function notifyMention(message, me, where) {
  if (me === null || !document.hidden || typeof Notification !== "function" || Notification.permission !== "granted") return;
  if (!(message.mentions ?? []).includes(me.id) || message.author_id === me.id) return;
  const note = new Notification(`${message.author} mentioned you in ${where}`, {
    body: message.text.slice(0, 200),
    tag: `${message.room}:${message.seq}`,
  });
  note.addEventListener("click", () => {
    window.focus();
    note.close();
  });
}
