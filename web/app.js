// The chat page: rooms, history, the live stream and the composer, wired to
// the v1 API. The current room lives in the URL (`/?room=<name>`).

import * as api from "./api.js";
import { RoomStream } from "./stream.js";
import { Timeline } from "./timeline.js";

const DEFAULT_ROOM = "general";
/** Pixels from the top of the log at which older history is fetched. */
const LOAD_OLDER_MARGIN = 300;
/** Pixels from the bottom within which the log follows new messages. */
const STICK_MARGIN = 60;
/** The counter appears once a message is this close to the limit. */
const COUNTER_FROM = Math.floor(api.MAX_TEXT_CHARS * 0.9);

const $ = (id) => document.getElementById(id);
const ui = {
  app: $("app"),
  menuButton: $("menu-button"),
  sidebar: $("sidebar"),
  scrim: $("scrim"),
  roomName: $("room-name"),
  connection: $("connection"),
  connectionText: $("connection-text"),
  reconnect: $("reconnect"),
  auth: $("auth"),
  authForm: $("auth-form"),
  authError: $("auth-error"),
  authUsername: $("auth-username"),
  authPassword: $("auth-password"),
  authDisplayName: $("auth-display-name"),
  createAccount: $("create-account"),
  meName: $("me-name"),
  meUsername: $("me-username"),
  signOut: $("sign-out"),
  privateForm: $("private-form"),
  privateRoom: $("private-room"),
  privateHelp: $("private-help"),
  memberForm: $("member-form"),
  memberName: $("member-name"),
  memberHelp: $("member-help"),
  roomList: $("room-list"),
  joinForm: $("join-form"),
  joinRoom: $("join-room"),
  joinHelp: $("join-help"),
  notice: $("notice"),
  log: $("log"),
  loadOlder: $("load-older"),
  historyStart: $("history-start"),
  historyRoom: $("history-room"),
  historyError: $("history-error"),
  messages: $("messages"),
  empty: $("empty"),
  jump: $("jump"),
  composer: $("composer"),
  text: $("composer-text"),
  send: $("send"),
  status: $("composer-status"),
  counter: $("composer-counter"),
};

const timeline = new Timeline(ui.messages);
/** Sends not yet stored, by client_id: `{clientId, room, author, text, at, state}`. */
const pending = new Map();
/** The open room: `{room, stream, abort, lastSeq, loaded, hasMore, loadingOlder}`. */
let view = null;
let knownRooms = [];
const narrow = window.matchMedia("(max-width: 47.99rem)");

// ---- Who you are, signing in and out ------------------------------------

/** The signed-in user: `{id, username, display_name, role}`, or null. */
let me = null;

function showAuthError(text) {
  ui.authError.textContent = text;
  ui.authError.hidden = text === "";
}

/** Shows the sign-in screen; the URL (and so `?room=`) stays as it is. */
function showSignIn(message = "") {
  me = null;
  if (view !== null) {
    view.stream.stop();
    view.abort.abort();
    view = null;
  }
  timeline.clear();
  ui.app.hidden = true;
  ui.auth.hidden = false;
  document.title = "Sign in · Palaver";
  showAuthError(message);
  ui.authUsername.focus();
}

function signedIn(user) {
  me = user;
  ui.auth.hidden = true;
  ui.app.hidden = false;
  ui.authPassword.value = "";
  ui.meName.textContent = user.display_name;
  ui.meUsername.textContent = `@${user.username}`;
  enterRoom(roomFromUrl());
  refreshRooms();
  ui.text.focus();
}

async function authenticate(create) {
  const username = ui.authUsername.value.trim();
  const password = ui.authPassword.value;
  if (username === "" || password === "") {
    showAuthError("Type your username and password.");
    (username === "" ? ui.authUsername : ui.authPassword).focus();
    return;
  }
  try {
    const user = create
      ? await api.register(username, password, ui.authDisplayName.value.trim())
      : await api.login(username, password);
    showAuthError("");
    signedIn(user);
  } catch (err) {
    showAuthError(err.message);
    ui.authUsername.focus();
  }
}

ui.authForm.addEventListener("submit", (event) => {
  event.preventDefault();
  authenticate(false);
});
ui.createAccount.addEventListener("click", () => authenticate(true));
ui.signOut.addEventListener("click", async () => {
  try {
    await api.logout();
  } finally {
    showSignIn("You are signed out.");
  }
});

// ---- Drawer (narrow screens) ----------------------------------------------

function openDrawer() {
  if (!narrow.matches) return;
  ui.app.classList.add("drawer-open");
  ui.menuButton.setAttribute("aria-expanded", "true");
  ui.scrim.hidden = false;
}

function closeDrawer({ focusMenu = false } = {}) {
  if (!ui.app.classList.contains("drawer-open")) return;
  ui.app.classList.remove("drawer-open");
  ui.menuButton.setAttribute("aria-expanded", "false");
  ui.scrim.hidden = true;
  if (focusMenu) ui.menuButton.focus();
}

ui.menuButton.addEventListener("click", () => {
  if (ui.app.classList.contains("drawer-open")) {
    closeDrawer();
  } else {
    openDrawer();
    ui.signOut.focus();
  }
});
ui.scrim.addEventListener("click", () => closeDrawer({ focusMenu: true }));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && ui.app.classList.contains("drawer-open")) closeDrawer({ focusMenu: true });
});
narrow.addEventListener("change", () => closeDrawer());

// ---- Rooms ----------------------------------------------------------------

function roomUrl(room) {
  return `/?room=${encodeURIComponent(room)}`;
}

function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = text === "";
}

/** The room the URL names; an invalid name falls back to the default. */
function roomFromUrl() {
  const asked = new URLSearchParams(location.search).get("room");
  if (asked === null || asked === "") return DEFAULT_ROOM;
  if (api.roomError(asked) === null) return asked;
  showNotice(`“${asked}” is not a valid room name, so this is #${DEFAULT_ROOM}. ${api.roomError(asked)}`);
  history.replaceState(null, "", roomUrl(DEFAULT_ROOM));
  return DEFAULT_ROOM;
}

function renderRooms() {
  const names = new Set(knownRooms.map((r) => r.name));
  if (view !== null) names.add(view.room);
  const items = [...names].sort().map((name) => {
    const link = document.createElement("a");
    link.href = roomUrl(name);
    link.dataset.room = name;
    link.className = "room-link";
    const hash = document.createElement("span");
    hash.className = "room-hash";
    hash.setAttribute("aria-hidden", "true");
    hash.textContent = "#";
    link.append(hash, name);
    if (knownRooms.some((r) => r.name === name && r.visibility === "private")) {
      const badge = document.createElement("span");
      badge.className = "room-private";
      badge.textContent = " (private)";
      link.append(badge);
    }
    if (view !== null && name === view.room) link.setAttribute("aria-current", "page");
    const item = document.createElement("li");
    item.append(link);
    return item;
  });
  ui.roomList.replaceChildren(...items);
}

async function refreshRooms() {
  if (me === null) return;
  try {
    knownRooms = await api.listRooms();
    renderRooms();
    showMemberForm();
  } catch (err) {
    if (err instanceof api.ApiError && err.status === 401) showSignIn("Your session has ended; sign in again.");
    // Otherwise keep the last list; the connection state already tells the story.
  }
}

/** The add-member form shows in a private room its owner (or an admin) may manage. */
function showMemberForm() {
  const room = view === null ? null : knownRooms.find((r) => r.name === view.room);
  ui.memberForm.hidden = room === undefined || room === null || room.visibility !== "private";
}

ui.privateForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = ui.privateRoom.value.trim();
  const error = name === "" ? "Type a room name." : api.roomError(name);
  if (error !== null) {
    ui.privateHelp.textContent = error;
    ui.privateRoom.setAttribute("aria-invalid", "true");
    ui.privateRoom.focus();
    return;
  }
  try {
    await api.createRoom(name, "private");
    ui.privateRoom.value = "";
    ui.privateRoom.setAttribute("aria-invalid", "false");
    ui.privateHelp.textContent = `#${name} is private: add members below.`;
    await refreshRooms();
    navigate(name);
  } catch (err) {
    ui.privateHelp.textContent = err.message;
    ui.privateRoom.focus();
  }
});

ui.memberForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = ui.memberName.value.trim();
  if (username === "" || view === null) return;
  try {
    await api.addMember(view.room, username);
    ui.memberName.value = "";
    ui.memberHelp.textContent = `${username} can now see #${view.room}.`;
  } catch (err) {
    ui.memberHelp.textContent = err.message;
  }
  ui.memberName.focus();
});

function navigate(room) {
  showNotice("");
  if (view === null || room !== view.room) {
    history.pushState(null, "", roomUrl(room));
    enterRoom(room);
  }
  closeDrawer();
  ui.text.focus();
}

ui.roomList.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-room]");
  if (link === null || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
    return; // let the browser open it in a new tab or window
  }
  event.preventDefault();
  navigate(link.dataset.room);
});

const JOIN_HELP = ui.joinHelp.textContent;
function checkJoin({ quiet = false } = {}) {
  const name = ui.joinRoom.value.trim();
  const error = name === "" ? "Type a room name." : api.roomError(name);
  const shown = error !== null && !quiet;
  ui.joinRoom.setAttribute("aria-invalid", String(shown));
  ui.joinHelp.textContent = shown ? error : JOIN_HELP;
  ui.joinHelp.classList.toggle("field-error", shown);
  return error;
}
ui.joinRoom.addEventListener("input", () => checkJoin({ quiet: ui.joinRoom.value === "" }));
ui.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (checkJoin() !== null) {
    ui.joinRoom.focus();
    return;
  }
  const room = ui.joinRoom.value.trim();
  ui.joinRoom.value = "";
  navigate(room);
});

window.addEventListener("popstate", () => {
  showNotice("");
  const room = roomFromUrl();
  if (view === null || room !== view.room) enterRoom(room);
});

// ---- Connection state -----------------------------------------------------

const STATE_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

function showConnection(state) {
  ui.connection.dataset.state = state;
  ui.connectionText.textContent = STATE_TEXT[state];
  ui.reconnect.hidden = state === "connected" || state === "connecting";
  if (state === "connected") refreshRooms();
}

ui.reconnect.addEventListener("click", () => view?.stream.retryNow());

// ---- History and the live stream ------------------------------------------

function atBottom() {
  return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight <= STICK_MARGIN;
}

function scrollToBottom() {
  ui.log.scrollTop = ui.log.scrollHeight;
  ui.jump.hidden = true;
}

function showHistoryEdge() {
  const loaded = view.loaded;
  ui.loadOlder.hidden = !loaded || !view.hasMore;
  ui.loadOlder.disabled = view.loadingOlder;
  ui.loadOlder.textContent = view.loadingOlder ? "Loading older messages…" : "Load older messages";
  ui.historyStart.hidden = !loaded || view.hasMore || timeline.size === 0;
  ui.empty.hidden = !loaded || ui.messages.childElementCount > 0;
}

/** Shows one stored message, replacing its pending copy if this page sent it. */
function showStored(message, { follow = false } = {}) {
  const mine = message.client_id !== null && pending.has(message.client_id);
  const stick = follow || mine || atBottom();
  if (mine) {
    pending.delete(message.client_id);
    timeline.removePending(message.client_id);
  }
  if (!timeline.add(message)) return;
  ui.empty.hidden = true;
  if (stick) scrollToBottom();
  else ui.jump.hidden = false;
}

/** The newest page; runs (and is retried) before the stream first connects. */
async function loadLatest(current) {
  const page = await api.fetchPage(current.room, {}, current.abort.signal);
  if (view !== current) return;
  for (const message of page.messages) timeline.add(message);
  const newest = page.messages[0]?.seq ?? 0;
  current.lastSeq = Math.max(current.lastSeq, newest);
  current.hasMore = page.has_more;
  current.loaded = true;
  ui.historyError.hidden = true;
  showHistoryEdge();
  scrollToBottom();
  fillViewport(current);
}

/** Older pages until the log can scroll, so scrolling up is possible at all. */
function fillViewport(current) {
  if (view === current && current.hasMore && ui.log.scrollHeight <= ui.log.clientHeight + LOAD_OLDER_MARGIN) {
    loadOlder();
  }
}

async function loadOlder() {
  const current = view;
  if (current === null || !current.loaded || !current.hasMore || current.loadingOlder) return;
  const before = timeline.oldestSeq;
  if (before === null) return;
  current.loadingOlder = true;
  ui.log.setAttribute("aria-busy", "true");
  showHistoryEdge();
  let page = null;
  try {
    page = await api.fetchPage(current.room, { before }, current.abort.signal);
  } catch (err) {
    if (err.name !== "AbortError" && view === current) {
      ui.historyError.textContent = `Older messages could not be loaded: ${err.message}`;
      ui.historyError.hidden = false;
    }
  }
  current.loadingOlder = false;
  if (view !== current) return;
  // Keep what the reader sees in place: everything added above (messages and
  // the history edge changing) grows the scroll height by its own height.
  const height = ui.log.scrollHeight;
  const top = ui.log.scrollTop;
  if (page !== null) {
    for (const message of page.messages) timeline.add(message); // newest first
    current.hasMore = page.has_more;
    ui.historyError.hidden = true;
  }
  showHistoryEdge();
  ui.log.scrollTop = top + (ui.log.scrollHeight - height);
  ui.log.removeAttribute("aria-busy");
  if (page !== null) fillViewport(current);
}

ui.loadOlder.addEventListener("click", () => loadOlder());
ui.log.addEventListener(
  "scroll",
  () => {
    if (ui.log.scrollTop < LOAD_OLDER_MARGIN) loadOlder();
    if (atBottom()) ui.jump.hidden = true;
  },
  { passive: true },
);
ui.jump.addEventListener("click", () => {
  scrollToBottom();
  ui.text.focus();
});

function enterRoom(room) {
  if (view !== null) {
    view.stream.stop();
    view.abort.abort();
  }
  timeline.clear();
  const current = {
    room,
    abort: new AbortController(),
    lastSeq: 0,
    loaded: false,
    hasMore: false,
    loadingOlder: false,
    stream: null,
  };
  view = current;
  ui.roomName.textContent = room;
  ui.historyRoom.textContent = `#${room}`;
  ui.log.setAttribute("aria-label", `Messages in #${room}`);
  ui.text.placeholder = `Message #${room}`;
  ui.historyError.hidden = true;
  ui.jump.hidden = true;
  document.title = `#${room} · Palaver`;
  for (const send of pending.values()) {
    if (send.room === room) {
      timeline.addPending(send);
      if (send.state === "failed") showFailure(send);
    }
  }
  showHistoryEdge();
  renderRooms();
  showMemberForm();

  current.stream = new RoomStream(room, {
    since: () => current.lastSeq,
    prepare: () => loadLatest(current),
    onMessage: (message) => {
      if (view !== current || message.room !== room) return;
      // The stream is in seq order and gapless: what it delivered is the resume point.
      current.lastSeq = Math.max(current.lastSeq, message.seq);
      showStored(message);
    },
    onState: (state, reason) => {
      if (view !== current) return;
      if (state === "ended") {
        if (reason === "removed") {
          showNotice(`You are no longer a member of #${room}.`);
          showConnection("offline");
        } else {
          showSignIn(reason === "suspended" ? "This account is suspended." : "You are signed out.");
        }
        return;
      }
      showConnection(state);
    },
  });
  current.stream.start();
}

// ---- Sending --------------------------------------------------------------

function describeFailure(err) {
  if (err.status === 0) return "the server could not be reached.";
  if (err.status === 429) {
    return err.retryAfter ? `too many messages; try again in ${err.retryAfter} s.` : "too many messages; wait a moment.";
  }
  return err.message;
}

function showFailure(send) {
  timeline.setFailed(send.clientId, describeFailure(send.error), {
    // The server may have stored a retryable failure: only the same
    // client_id may try again, and nothing else may be sent in its place.
    retry: send.error.retryable,
    edit: !send.error.retryable,
  });
}

async function deliver(send) {
  send.state = "sending";
  timeline.setSending(send.clientId);
  try {
    const message = await api.sendMessage(send.room, send);
    if (view !== null && view.room === send.room) {
      showStored(message, { follow: pending.has(send.clientId) });
      showHistoryEdge();
    }
    pending.delete(send.clientId);
    if (!knownRooms.some((r) => r.name === send.room)) refreshRooms();
  } catch (err) {
    if (!pending.has(send.clientId)) return; // the stream delivered it meanwhile
    send.state = "failed";
    send.error = err;
    if (view !== null && view.room === send.room) showFailure(send);
  }
}

function showComposerStatus(text) {
  ui.status.textContent = text;
  ui.status.classList.toggle("field-error", text !== "");
}

function updateCounter() {
  const length = api.textLength(ui.text.value);
  const over = length > api.MAX_TEXT_CHARS;
  ui.counter.hidden = length < COUNTER_FROM;
  ui.counter.textContent = over
    ? `${length.toLocaleString()} / ${api.MAX_TEXT_CHARS.toLocaleString()}: ${(length - api.MAX_TEXT_CHARS).toLocaleString()} too many`
    : `${length.toLocaleString()} / ${api.MAX_TEXT_CHARS.toLocaleString()}`;
  ui.counter.classList.toggle("field-error", over);
  ui.text.setAttribute("aria-invalid", String(over));
  ui.send.disabled = over;
  if (!over && ui.status.classList.contains("field-error")) showComposerStatus("");
}

function submit() {
  if (me === null) return;
  const error = api.textError(ui.text.value);
  if (error !== null) {
    showComposerStatus(error);
    return;
  }
  showComposerStatus("");
  const send = {
    clientId: api.newClientId(),
    room: view.room,
    author: me.display_name,
    text: ui.text.value.trim(),
    at: new Date(),
    state: "sending",
    error: null,
  };
  pending.set(send.clientId, send);
  timeline.addPending(send);
  ui.empty.hidden = true;
  scrollToBottom();
  ui.text.value = "";
  updateCounter();
  deliver(send);
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
  ui.text.focus();
});
ui.text.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
    event.preventDefault();
    if (!ui.send.disabled) submit();
  }
});
ui.text.addEventListener("input", updateCounter);

ui.messages.addEventListener("click", (event) => {
  const control = event.target.closest("button[data-action]");
  if (control === null) return;
  const send = pending.get(control.dataset.clientId);
  if (!send) return;
  switch (control.dataset.action) {
    case "retry":
      deliver(send); // the same client_id: stored at most once
      break;
    case "edit":
      pending.delete(send.clientId);
      timeline.removePending(send.clientId);
      ui.text.value = ui.text.value.trim() === "" ? send.text : `${ui.text.value}\n${send.text}`;
      updateCounter();
      ui.text.focus();
      break;
    case "discard":
      pending.delete(send.clientId);
      timeline.removePending(send.clientId);
      showHistoryEdge();
      ui.text.focus();
      break;
  }
});

// ---- Start ----------------------------------------------------------------

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refreshRooms();
});
// Rooms are created by their first message, anywhere: look for new ones now and then.
setInterval(() => {
  if (document.visibilityState === "visible") refreshRooms();
}, 60_000);
api.me().then(
  (user) => (user === null ? showSignIn() : signedIn(user)),
  () => showSignIn("The server could not be reached; try signing in."),
);
