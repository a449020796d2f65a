// The sign-in screen: "Sign in" and "Create account" as two modes of one
// form, the documented rules checked before sending, and each refusal as a
// sentence beside the field it concerns.

import * as api from "./api.js";
import { checkFields, setFieldError, setStatus } from "./forms.js";

const $ = (id) => document.getElementById(id);

export class SignInForm {
  #ui = {
    screen: $("auth"),
    form: $("auth-form"),
    error: $("auth-error"),
    info: $("auth-info"),
    heading: $("auth-heading"),
    username: $("auth-username"),
    password: $("auth-password"),
    displayName: $("auth-display-name"),
    displayField: $("auth-display-field"),
    submit: $("auth-submit"),
    switch: $("auth-switch"),
    switchText: $("auth-switch-text"),
  };
  /** Whether the form creates an account rather than signing in. */
  #creating = false;
  #onSignedIn;

  /** @param {(user: object) => void} onSignedIn */
  constructor(onSignedIn) {
    this.#onSignedIn = onSignedIn;
    const ui = this.#ui;
    ui.switch.addEventListener("click", () => {
      this.#setMode(!this.#creating);
      setStatus(ui.info, "");
      ui.username.focus();
    });
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#authenticate();
    });
  }

  /** Shows the screen in sign-in mode; `info` is neutral news, `error` a failure. */
  show(info = "", error = "") {
    const ui = this.#ui;
    ui.screen.hidden = false;
    this.#setMode(false);
    setStatus(ui.info, info);
    this.#showError(error);
    ui.password.value = "";
    ui.username.focus();
  }

  /** Hides the screen (signed in), forgetting the password typed. */
  hide() {
    this.#ui.screen.hidden = true;
    this.#ui.password.value = "";
    setStatus(this.#ui.info, "");
  }

  #showError(text) {
    this.#ui.error.textContent = text;
    this.#ui.error.hidden = text === "";
  }

  #setMode(create) {
    const ui = this.#ui;
    this.#creating = create;
    ui.heading.textContent = create ? "Create account" : "Sign in";
    ui.submit.textContent = create ? "Create account" : "Sign in";
    ui.displayField.hidden = !create;
    ui.switchText.textContent = create ? "Have an account?" : "New here?";
    ui.switch.textContent = create ? "I already have an account" : "Create an account";
    ui.password.autocomplete = create ? "new-password" : "current-password";
    for (const id of ["auth-username-help", "auth-password-help"]) $(id).hidden = !create;
    for (const input of [ui.username, ui.password, ui.displayName]) setFieldError(input, "");
    this.#showError("");
    document.title = `${create ? "Create account" : "Sign in"} · Palaver`;
  }

  /** A server refusal, as `[field or null, sentence]`. */
  #failure(err) {
    const ui = this.#ui;
    const creating = this.#creating;
    if (err.status === 0) return [null, "The server could not be reached. Check your connection and try again."];
    if (err.status === 429) {
      const wait = err.retryAfter ? ` Try again in ${err.retryAfter} seconds.` : " Wait a moment, then try again.";
      return [null, `Too many attempts.${wait}`];
    }
    if (!creating && err.status === 401) return [ui.password, "That username and password do not match an account."];
    if (creating && err.status === 409) return [ui.username, "That username is taken: choose another one."];
    if (creating && err.status === 403) return [null, "This server does not allow new accounts; ask its administrator."];
    if (err.status === 403) return [null, "This account cannot sign in (it may be suspended)."];
    if (err.code === "invalid_username") return [ui.username, api.usernameError(ui.username.value) ?? "The server refused this username."];
    if (err.code === "invalid_password") return [ui.password, api.passwordError(ui.password.value) ?? "The server refused this password."];
    if (err.code === "invalid_author") return [ui.displayName, api.authorError(ui.displayName.value) ?? "The server refused this display name."];
    return [null, `That did not work (${err.message}).`];
  }

  async #authenticate() {
    const ui = this.#ui;
    const create = this.#creating;
    const username = ui.username.value.trim();
    const password = ui.password.value;
    const displayName = ui.displayName.value.trim();
    setStatus(ui.info, "");
    this.#showError("");
    const valid = create
      ? checkFields([
          [ui.username, api.usernameError(username)],
          [ui.password, api.passwordError(password)],
          [ui.displayName, displayName === "" ? null : api.authorError(displayName)],
        ])
      : checkFields([
          [ui.username, username === "" ? "Type your username." : null],
          [ui.password, password === "" ? "Type your password." : null],
        ]);
    if (!valid) return;
    ui.submit.disabled = true;
    try {
      const user = create ? await api.register(username, password, displayName) : await api.login(username, password);
      this.#onSignedIn(user);
    } catch (err) {
      const [field, sentence] = this.#failure(err);
      ui.password.value = "";
      if (field === null) {
        this.#showError(sentence);
        ui.password.focus();
      } else {
        setFieldError(field, sentence);
        field.focus();
      }
    } finally {
      ui.submit.disabled = false;
    }
  }
}
