// The chat page: rooms, history, the live stream and the composer, wired to
// the v1 API. The current room lives in the URL (`/?room=<name>`).

import * as api from "./api.js";
import { MessageActions } from "./actions.js";
import { MentionPicker } from "./autocomplete.js";
import { BrowseDialog } from "./browse.js";
import { MembersPanel } from "./members.js";
import { Outbox } from "./outbox.js";
import { DirectPicker, directLabel } from "./directs.js";
import { closeDrawer } from "./drawer.js";
import { Attachments } from "./files.js";
import { checkFields, describeError, setFieldError, setStatus } from "./forms.js";
import { Presence } from "./presence.js";
import { ProfileDialog, notifyMention } from "./profile.js";
import { SearchResults } from "./search.js";
import { renderSidebar, roomUrl } from "./sidebar.js";
import { SignInForm } from "./signin.js";
import { Stream, frameSeq } from "./stream.js";
import { Timeline } from "./timeline.js";
import { TypingLine, TypingSignal } from "./typing.js";

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
  roomName: $("room-name"),
  connection: $("connection"),
  connectionText: $("connection-text"),
  reconnect: $("reconnect"),
  meButton: $("me-button"),
  meName: $("me-name"),
  meUsername: $("me-username"),
  signOut: $("sign-out"),
  signOutDialog: $("signout-dialog"),
  signOutConfirm: $("signout-confirm"),
  privateForm: $("private-form"),
  privateRoom: $("private-room"),
  privateHelp: $("private-help"),
  roomVisibility: $("room-visibility"),
  roomTopic: $("room-topic"),
  membersButton: $("members-button"),
  refusal: $("refusal"),
  refusalDetail: $("refusal-detail"),
  refusalBack: $("refusal-back"),
  refusalCreate: $("refusal-create"),
  refusalError: $("refusal-error"),
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
  composerHelp: $("composer-help"),
  mentionList: $("mention-list"),
  directList: $("direct-list"),
  newDirect: $("new-direct"),
  searchForm: $("search-form"),
  searchText: $("search-text"),
  typingLine: $("typing-line"),
  attachments: $("attachments"),
  attachButton: $("attach-button"),
  attachInput: $("attach-input"),
};

const timeline = new Timeline(ui.messages);
const typing = new TypingLine(ui.typingLine);
const presence = new Presence();
/**
 * The open room: `{room, abort, lastSeq, loaded, hasMore, loadingOlder,
 * readable, refused, early, retry, tries}`. `lastSeq` is the last event seq
 * applied to the timeline; `early` holds its frames that came before its
 * first page did.
 */
let view = null;
/** Frames of the open room held while its first page loads; more than this reloads the room. */
const MAX_EARLY_FRAMES = 5000;
let knownRooms = [];

// ---- Who you are, signing in and out ------------------------------------

/** The signed-in user: `{id, username, display_name, role}`, or null. */
let me = null;
const signInForm = new SignInForm((user) => signedIn(user));

/** Shows the sign-in screen; the URL (and so `?room=`) stays as it is. `info` is neutral news. */
function showSignIn(info = "", { error = "" } = {}) {
  me = null;
  if (view !== null) {
    view.abort.abort();
    clearTimeout(view.retry);
    view = null;
  }
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  stream.stop();
  socketState = "connecting";
  presence.clear();
  attachments.clear();
  typing.clear();
  closeDrawer();
  timeline.clear();
  ui.app.hidden = true;
  signInForm.show(info, error);
}

function showMe() {
  ui.meName.textContent = me.display_name;
  ui.meUsername.textContent = `@${me.username}`;
}

function signedIn(user) {
  me = user;
  timeline.viewer = { id: user.id, role: user.role };
  signInForm.hide();
  ui.app.hidden = false;
  showMe();
  stream.start();
  enterRoom(roomFromUrl());
  refreshRooms();
  ui.text.focus();
}

/** A modal panel: focus stays inside while it is open; Escape or a "Close" button closes it. */
function openDialog(dialog, focus) {
  closeDrawer();
  if (!dialog.open) dialog.showModal();
  (focus ?? dialog.querySelector("input, button"))?.focus();
}
for (const dialog of document.querySelectorAll("dialog")) {
  dialog.addEventListener("click", (event) => {
    if (event.target.closest("[data-close]") !== null) dialog.close();
  });
}

ui.signOut.addEventListener("click", () => openDialog(ui.signOutDialog, ui.signOutDialog.querySelector("[data-close]")));
ui.signOutConfirm.addEventListener("click", async () => {
  ui.signOutDialog.close();
  try {
    await api.logout();
  } finally {
    showSignIn("You are signed out.");
  }
});

// ---- Profile --------------------------------------------------------------

const profile = new ProfileDialog(
  () => me,
  (user) => {
    me = user;
    showMe();
  },
  () => showSignIn("", { error: "Your session has ended; sign in again." }),
);
ui.meButton.addEventListener("click", () => profile.open(openDialog));

// ---- Rooms ----------------------------------------------------------------

function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = text === "";
}

/** The room the URL names (tidied: `#Random` is `random`); an invalid name falls back to the default. */
function roomFromUrl() {
  const raw = new URLSearchParams(location.search).get("room");
  if (raw === null || raw === "") return DEFAULT_ROOM;
  const asked = api.tidyRoom(raw);
  if (api.roomError(asked) === null) {
    if (asked !== raw) history.replaceState(null, "", roomUrl(asked));
    return asked;
  }
  showNotice(`“${raw}” is not a valid room name, so this is #${DEFAULT_ROOM}. ${api.roomError(asked)}`);
  history.replaceState(null, "", roomUrl(DEFAULT_ROOM));
  return DEFAULT_ROOM;
}

const roomInfo = (name) => knownRooms.find((r) => r.name === name) ?? null;
/** Whether the server says which rooms you joined (the `joined` field). */
const tracksJoined = () => knownRooms.some((r) => typeof r.joined === "boolean");

/** How a room is named for people: `#name`, or a direct room's other members. */
function roomLabel(name) {
  const info = roomInfo(name);
  return info?.visibility === "direct" ? directLabel(info, me) : `#${name}`;
}

/**
 * The sidebar: the rooms you joined (or, from a server without `joined`,
 * every room you may see) and the open one; direct rooms in their own
 * section, named by their people, with a presence dot for a one-to-one room.
 */
function renderRooms() {
  // The default room (where `/` leads) is always there, joined or not.
  const listed = tracksJoined() ? knownRooms.filter((r) => r.joined || r.name === DEFAULT_ROOM) : knownRooms;
  const names = new Set(listed.filter((r) => r.visibility !== "direct").map((r) => r.name));
  if (view !== null && view.readable && roomInfo(view.room)?.visibility !== "direct") names.add(view.room);
  const people = renderSidebar(ui, { rooms: knownRooms, names, current: view?.room ?? null, me, dot: (id) => presence.dot(id) });
  presence.load(people);
  showRoomHead();
  followJoined();
}

/**
 * The stream follows every room you joined (for its unread badge) from its
 * last seq in the room list, and the open room (which the view follows
 * itself); it lets go of the rest.
 */
function followJoined() {
  if (me === null) return;
  const joined = tracksJoined() ? knownRooms.filter((r) => r.joined) : [];
  const wanted = new Set(joined.map((r) => r.name));
  for (const room of stream.rooms) if (!wanted.has(room) && room !== view?.room) stream.unfollow(room);
  for (const info of joined) if (info.name !== view?.room) stream.follow(info.name, info.last_seq ?? 0);
}

/** A frame of a room that is not open here: a new message by someone else adds to its badge. */
function otherRoomFrame(frame) {
  const info = roomInfo(frame.room);
  const seq = frameSeq(frame);
  if (info === null || seq === null || frame.type === "caught_up") return;
  // Counted already: the room list's counts include every event up to its `last_seq`.
  if (seq <= (info.last_seq ?? 0)) return;
  info.last_seq = seq;
  if (frame.type !== "message") return;
  const message = frame.message;
  notifyMention(message, me, roomLabel(message.room));
  if (message.author_id === me?.id || message.deleted) return;
  info.unread = (info.unread ?? 0) + 1;
  if (me !== null && (message.mentions ?? []).includes(me.id)) info.mentions = (info.mentions ?? 0) + 1;
  renderRooms();
}

/** Another session of yours moved a read marker. */
function readElsewhere(frame) {
  const info = roomInfo(frame.room);
  if (info === null || !Number.isInteger(frame.read_seq)) return;
  info.read_seq = Math.max(info.read_seq ?? 0, frame.read_seq);
  if (info.read_seq >= (info.last_seq ?? 0)) {
    info.unread = 0;
    info.mentions = 0;
    renderRooms();
  } else {
    refreshRooms(); // read part way: only the server can count what is left
  }
}

/** The connection as the socket last reported it (stream.js states). */
let socketState = "connecting";

/** What the header says: the open room is "Connected" once the stream is live on it. */
function displayState() {
  if (view === null || view.refused) return "none";
  if (socketState !== "open") return socketState;
  return view.loaded && stream.isLive(view.room) ? "connected" : "connecting";
}

const stream = new Stream({
  onFrame: (frame) => {
    if (frame.type === "rooms_changed") refreshRooms();
    else if (frame.type === "read") readElsewhere(frame);
    else if (frame.type === "presence") presence.update(frame);
    else if (typeof frame.room !== "string") return;
    else if (view !== null && frame.room === view.room) viewFrame(view, frame);
    else otherRoomFrame(frame);
  },
  onState: (state, reason) => {
    if (state === "ended") {
      if (reason === "suspended") showSignIn("", { error: "This account is suspended." });
      else showSignIn("You are signed out.");
      return;
    }
    const reopened = state === "open" && socketState !== "open";
    socketState = state;
    if (reopened) {
      refreshRooms(); // counts may have moved while the socket was away
      if (view !== null && !view.loaded && !view.refused) loadLatest(view);
    }
    showConnection(displayState());
  },
});

let refreshing = null;
async function refreshRooms() {
  if (me === null) return;
  if (refreshing !== null) return refreshing;
  refreshing = (async () => {
    try {
      const before = knownRooms;
      knownRooms = await api.listRooms();
      renderRooms();
      // The open room left the list (access withdrawn, say): check it is still readable.
      const current = view;
      if (current?.readable && before.some((r) => r.name === current.room) && roomInfo(current.room) === null) {
        api.fetchPage(current.room, { limit: 1 }, current.abort.signal).catch((err) => {
          if (err.status === 404) refuse(current, `You are no longer a member of #${current.room}.`);
        });
      }
      browse.refresh();
    } catch (err) {
      if (err instanceof api.ApiError && err.status === 401) showSignIn("", { error: "Your session has ended; sign in again." });
      // Otherwise keep the last list; the connection state already tells the story.
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** The header: name, visibility, topic and the Members button (not for a room you cannot read). */
function showRoomHead() {
  if (view === null) return;
  const info = roomInfo(view.room);
  const readable = view.readable;
  const VISIBILITY = { private: "Private", public: "Public", direct: "Direct message" };
  ui.roomVisibility.textContent = !readable || info === null ? "" : (VISIBILITY[info.visibility] ?? "");
  ui.roomTopic.textContent = readable && info?.topic ? info.topic : "";
  ui.membersButton.hidden = !readable;
  // A direct room is named by its people rather than its name.
  const direct = readable && info?.visibility === "direct";
  const label = direct ? directLabel(info, me) : `#${view.room}`;
  ui.roomName.textContent = direct ? label : view.room;
  ui.roomName.previousElementSibling.hidden = direct;
  ui.log.setAttribute("aria-label", `Messages in ${label}`);
  ui.historyRoom.textContent = direct ? `your conversation with ${label}` : label;
  if (!ui.text.disabled) ui.text.placeholder = `Message ${label}`;
  document.title = `${label} · Palaver`;
}

/** The room name typed in `input`, tidied, or null after showing why it is not one. */
function typedRoom(input) {
  const name = api.tidyRoom(input.value);
  const error = name === "" ? "Type a room name." : api.roomError(name);
  if (error !== null) {
    setRoomFormError(input, error);
    input.focus();
    return null;
  }
  input.value = name;
  return name;
}

/** Room forms show their help, or their error in its place (one style for both forms). */
const ROOM_HELP = new Map([
  [ui.joinRoom, [ui.joinHelp, ui.joinHelp.textContent]],
  [ui.privateRoom, [ui.privateHelp, ui.privateHelp.textContent]],
]);
function setRoomFormError(input, text) {
  const [help, normal] = ROOM_HELP.get(input);
  input.setAttribute("aria-invalid", String(text !== ""));
  help.textContent = text === "" ? normal : text;
  help.classList.toggle("field-error", text !== "");
}
for (const input of ROOM_HELP.keys()) input.addEventListener("input", () => setRoomFormError(input, ""));

ui.privateForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = typedRoom(ui.privateRoom);
  if (name === null) return;
  try {
    await api.createRoom(name, "private");
    ui.privateRoom.value = "";
    setRoomFormError(ui.privateRoom, "");
    ui.privateHelp.textContent = `#${name} is private: add members with the Members button.`;
    await refreshRooms();
    navigate(name);
  } catch (err) {
    setRoomFormError(
      ui.privateRoom,
      err.status === 409 ? `A room named #${name} exists already: choose another name.` : `Not created: ${describeError(err)}`,
    );
    ui.privateRoom.focus();
  }
});

/** Opens `room` (at message `seq`, from a search result, when given). */
function navigate(room, { seq = null } = {}) {
  showNotice("");
  if (view === null || room !== view.room) {
    history.pushState(null, "", roomUrl(room));
    enterRoom(room, { seq });
  } else if (seq !== null) {
    // In this room already: shown if loaded, else the room opens around it.
    if (timeline.has(seq)) showMessage(view, seq);
    else enterRoom(room, { seq });
  }
  closeDrawer();
  if (seq === null) ui.text.focus();
}

ui.directList.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-room]");
  if (link === null || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(link.dataset.room);
});

const directPicker = new DirectPicker(
  {
    dialog: $("direct-dialog"),
    form: $("direct-form"),
    query: $("direct-query"),
    results: $("direct-results"),
    chosen: $("direct-chosen"),
    status: $("direct-status"),
  },
  () => me,
  async (room) => {
    await refreshRooms();
    navigate(room.name);
  },
);
const searchResults = new SearchResults(
  { dialog: $("search-dialog"), status: $("search-status"), results: $("search-results"), more: $("search-more") },
  roomLabel,
  (room, seq) => navigate(room, { seq }),
);
ui.searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const query = ui.searchText.value.trim();
  if (query === "") {
    ui.searchText.focus();
    return;
  }
  closeDrawer();
  searchResults.search(query);
});

ui.newDirect.addEventListener("click", () => {
  closeDrawer();
  directPicker.open();
});

ui.roomList.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-room]");
  if (link === null || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
    return; // let the browser open it in a new tab or window
  }
  event.preventDefault();
  navigate(link.dataset.room);
});

/** Joins a public room (kept on the server, so every device lists it); a missing one is created. */
async function joinRoom(name) {
  const info = roomInfo(name);
  if (info === null) {
    try {
      await api.createRoom(name, "public");
    } catch (err) {
      if (err.status !== 409) throw err; // 409: it exists (perhaps private: the room view says so)
    }
  } else if (info.joined === false) {
    try {
      await api.addMember(name, me.username);
    } catch (err) {
      // A server that does not let members join by themselves (403) still
      // lets everyone read a public room: open it all the same.
      if (err.status !== 403 || info.visibility !== "public") throw err;
    }
  }
  await refreshRooms();
}

ui.joinForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const room = typedRoom(ui.joinRoom);
  if (room === null) return;
  setRoomFormError(ui.joinRoom, "");
  try {
    await joinRoom(room);
  } catch (err) {
    setRoomFormError(ui.joinRoom, `Could not join #${room}: ${describeError(err)}`);
    ui.joinRoom.focus();
    return;
  }
  ui.joinRoom.value = "";
  navigate(room);
});

ui.refusalCreate.addEventListener("click", async () => {
  if (view === null) return;
  const room = view.room;
  ui.refusalError.hidden = true;
  try {
    await api.createRoom(room, "public");
  } catch (err) {
    ui.refusalError.textContent =
      err.status === 409 ? `#${room} exists but is private: ask its owner to add you.` : `Not created: ${describeError(err)}`;
    ui.refusalError.hidden = false;
    return;
  }
  await refreshRooms();
  enterRoom(room);
  ui.text.focus();
});
ui.refusalBack.addEventListener("click", (event) => {
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(DEFAULT_ROOM);
});

// ---- Browse rooms ---------------------------------------------------------

const browse = new BrowseDialog({
  rooms: () => knownRooms,
  me: () => me,
  roomUrl,
  open: (room) => navigate(room),
  refreshRooms,
  show: openDialog,
});

// ---- Members --------------------------------------------------------------

const membersPanel = new MembersPanel({
  view: () => view,
  me: () => me,
  roomInfo,
  roomLabel,
  refreshRooms,
  show: openDialog,
  presenceDot: (userId) => presence.dot(userId),
  onPeople: (list) => {
    timeline.addPeople(list);
    presence.load(list);
  },
  onGone: (current) => refuse(current, ""),
  onLeft: (room, wasPrivate) => {
    if (wasPrivate) navigate(DEFAULT_ROOM);
    showNotice(`You left #${room}.`);
  },
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
  const changed = ui.connection.dataset.state !== state;
  ui.connection.dataset.state = state;
  ui.connection.hidden = state === "none";
  ui.connectionText.textContent = STATE_TEXT[state] ?? "";
  ui.reconnect.hidden = state !== "reconnecting" && state !== "offline";
  if (state === "connected" && changed) {
    // Rooms may have come or gone while the stream was away; sends that
    // waited for the server go now (their client_id stores each at most once).
    refreshRooms();
    outbox.retryWaiting();
  }
}

ui.reconnect.addEventListener("click", () => {
  stream.retryNow();
  if (view !== null && !view.loaded && !view.refused) loadLatest(view);
});

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
  const mine = outbox.has(message.client_id);
  const stick = follow || mine || atBottom();
  if (mine) outbox.settle(message.client_id);
  if (!timeline.add(message)) return;
  ui.empty.hidden = true;
  if (stick) scrollToBottom();
  else ui.jump.hidden = false;
  markRead();
}

/** Moves the read marker to the newest event seen, at most once a second, while the newest messages are in view. */
let readTimer = null;
function markRead() {
  if (readTimer !== null || view === null || !view.readable) return;
  readTimer = setTimeout(() => {
    readTimer = null;
    const current = view;
    if (current === null || !current.readable || document.visibilityState !== "visible" || !atBottom()) return;
    if (current.lastSeq <= (current.readSeq ?? 0)) return;
    current.readSeq = current.lastSeq;
    api.markRead(current.room, current.lastSeq).catch(() => {
      current.readSeq = 0; // try again with the next message
    });
  }, 1000);
}

/**
 * The newest page, then the stream from after it: retried with backoff
 * while the server cannot be reached; a 404 shows the refusal.
 */
async function loadLatest(current) {
  clearTimeout(current.retry);
  current.retry = null;
  let page;
  try {
    page =
      current.target === null
        ? await api.fetchPage(current.room, {}, current.abort.signal)
        : await api.fetchAround(current.room, current.target, api.PAGE_SIZE, current.abort.signal);
  } catch (err) {
    if (err.name === "AbortError" || view !== current || current.loaded) return;
    if (err instanceof api.ApiError && err.status === 404) {
      refuse(current, "");
      return;
    }
    if (err instanceof api.ApiError && err.status === 401) {
      showSignIn("", { error: "Your session has ended; sign in again." });
      return;
    }
    current.tries += 1;
    const delay = Math.min(15_000, 500 * 2 ** (current.tries - 1)) * (0.5 + Math.random() / 2);
    current.retry = setTimeout(() => {
      if (view === current && !current.loaded) loadLatest(current);
    }, delay);
    return;
  }
  if (view !== current || current.loaded) return;
  current.readable = true;
  ui.connection.hidden = false;
  // Where you stopped reading, from the room list (when it is there yet).
  const readSeq = roomInfo(current.room)?.read_seq;
  renderRooms();
  membersPanel.load(current);
  for (const message of page.messages) timeline.add(message);
  const seqs = page.messages.map((m) => m.seq);
  const newest = seqs.length === 0 ? 0 : Math.max(...seqs);
  // The page was read with the room's head: each message's `as_of`.
  const asOf = Math.max(0, ...page.messages.map((m) => (Number.isInteger(m.as_of) ? m.as_of : 0)));
  if (current.target === null) {
    // The newest page is the room as of its `as_of` (every event up to it
    // applied); the stream goes on from there.
    current.lastSeq = Math.max(current.lastSeq, asOf, newest);
    current.hasMore = page.has_more;
  } else {
    // Around a search result (oldest first): the stream replays everything
    // after its newest message, so the rest of the room follows in order;
    // events the page's messages already show are skipped by their `as_of`.
    current.lastSeq = Math.max(current.lastSeq, newest);
    current.hasMore = seqs.length > 0 && Math.min(...seqs) > 1;
  }
  current.loaded = true;
  ui.historyError.hidden = true;
  if (current.target === null && typeof readSeq === "number" && readSeq > 0) timeline.markNew(readSeq);
  showHistoryEdge();
  if (current.target === null) scrollToBottom();
  else showMessage(current, current.target);
  // What came meanwhile (from a subscription the room already had), then live from here.
  const early = current.early;
  current.early = [];
  for (const frame of early) viewFrame(current, frame);
  stream.follow(current.room, current.lastSeq, { restart: true });
  showConnection(displayState());
  fillViewport(current);
}

/** Shows message `seq` of the open room: highlighted, scrolled to and focused. */
function showMessage(current, seq) {
  if (view !== current) return;
  const item = timeline.highlight(seq);
  if (item === undefined) {
    showNotice("That message is no longer there (it may have been deleted).");
    return;
  }
  item.scrollIntoView({ block: "center" });
  item.focus({ preventScroll: true });
  ui.jump.hidden = atBottom();
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
    if (atBottom()) {
      ui.jump.hidden = true;
      markRead();
    }
  },
  { passive: true },
);
ui.jump.addEventListener("click", () => {
  scrollToBottom();
  ui.text.focus();
});

/**
 * A room you cannot read: it says so, offers a way back, opens no stream, is
 * not listed, and takes no messages. `detail` says why when it is known.
 */
function refuse(current, detail) {
  if (view !== current) return;
  current.readable = false;
  current.refused = true;
  current.early = [];
  clearTimeout(current.retry);
  if (!roomInfo(current.room)?.joined) stream.unfollow(current.room);
  current.abort.abort();
  timeline.clear();
  membersPanel.reset();
  ui.log.hidden = true;
  ui.jump.hidden = true;
  ui.refusal.hidden = false;
  ui.refusalError.hidden = true;
  ui.refusalDetail.textContent =
    detail ||
    `Either no room is named #${current.room}, or it is private and you are not one of its members. Its owner can add you.`;
  ui.refusalBack.hidden = current.room === DEFAULT_ROOM;
  ui.refusalCreate.hidden = detail !== "";
  ui.refusalCreate.textContent = `Create #${current.room} as a public room`;
  showConnection("none");
  setComposerEnabled(false);
  renderRooms();
  refreshRooms();
}

function setComposerEnabled(enabled) {
  ui.text.disabled = !enabled;
  ui.send.disabled = !enabled;
  ui.attachButton.disabled = !enabled;
  if (!enabled) ui.text.placeholder = "You cannot write here";
}

function enterRoom(room, { seq = null } = {}) {
  if (view !== null) leaveView(view);
  timeline.clear();
  typing.clear();
  typingSignal.stop();
  attachments.clear();
  membersPanel.reset();
  const current = {
    room,
    abort: new AbortController(),
    lastSeq: 0,
    loaded: false,
    hasMore: false,
    loadingOlder: false,
    readable: false,
    refused: false,
    early: [],
    retry: null,
    tries: 0,
    target: seq,
  };
  view = current;
  ui.refusal.hidden = true;
  ui.log.hidden = false;
  ui.connection.hidden = false;
  ui.text.disabled = false;
  ui.attachButton.disabled = false;
  updateCounter();
  ui.roomName.textContent = room;
  ui.historyRoom.textContent = `#${room}`;
  ui.log.setAttribute("aria-label", `Messages in #${room}`);
  ui.text.placeholder = `Message #${room}`;
  ui.historyError.hidden = true;
  ui.jump.hidden = true;
  document.title = `#${room} · Palaver`;
  outbox.showIn(room);
  showHistoryEdge();
  renderRooms();
  showConnection(displayState());
  loadLatest(current);
}

/** Lets go of the open room: its requests stop; the stream keeps it only if you joined it (for its badge). */
function leaveView(current) {
  current.abort.abort();
  clearTimeout(current.retry);
  const info = roomInfo(current.room);
  if (info !== null && info.joined) {
    // Everything up to here was seen in the open room: no badge for it.
    info.last_seq = Math.max(info.last_seq ?? 0, current.lastSeq);
    info.unread = 0;
    info.mentions = 0;
  } else {
    stream.unfollow(current.room);
  }
}

/**
 * A frame of the open room. Until its first page is in, frames wait in
 * `early`; then each event is applied once, in seq order: the page is the
 * room as of `lastSeq`, the stream replays what came after, and a frame at
 * or below `lastSeq` is already shown (the old subscription and the replay
 * overlap).
 */
function viewFrame(current, frame) {
  if (frame.type === "typing") {
    if (frame.user && frame.user.id !== me?.id) typing.show(frame.user);
    return;
  }
  if (!current.loaded) {
    if (current.refused) return;
    current.early.push(frame);
    if (current.early.length > MAX_EARLY_FRAMES) enterRoom(current.room);
    return;
  }
  if (frame.type === "error") {
    if (frame.code === "removed") {
      refuse(current, `You are no longer a member of #${current.room}: its owner or an admin removed you.`);
    } else if (frame.code === "not_found") {
      refuse(current, "");
    } else {
      // Refused for now (unavailable, too many rooms): follow it again shortly.
      clearTimeout(current.retry);
      current.retry = setTimeout(() => {
        if (view === current) stream.follow(current.room, current.lastSeq, { restart: true });
      }, 2000);
    }
    return;
  }
  const seq = frameSeq(frame);
  if (seq === null) return;
  if (frame.type === "caught_up") {
    current.lastSeq = Math.max(current.lastSeq, seq);
    const info = roomInfo(current.room);
    if (info !== null) info.last_seq = Math.max(info.last_seq ?? 0, seq);
    markRead();
    showConnection(displayState());
    return;
  }
  if (seq <= current.lastSeq) return;
  current.lastSeq = seq;
  const info = roomInfo(current.room);
  if (info !== null) info.last_seq = Math.max(info.last_seq ?? 0, seq);
  if (frame.type === "message") {
    showStored(frame.message);
    notifyMention(frame.message, me, roomLabel(frame.message.room));
    typing.stop(frame.message.author_id);
  } else {
    timeline.apply(frame);
    markRead();
  }
}

// ---- Sending --------------------------------------------------------------

const outbox = new Outbox(
  timeline,
  {
    room: () => view?.room ?? null,
    connected: () => ui.connection.dataset.state === "connected",
    stored: (message, options) => {
      showStored(message, options);
      showHistoryEdge();
    },
    gone: (room) => {
      // The room went away under us (removed, say): the stream will say so too.
      if (view?.room === room && view.readable) membersPanel.load(view);
    },
    unknown: (room) => {
      if (!knownRooms.some((r) => r.name === room)) refreshRooms();
    },
    restore: (text) => {
      ui.text.value = ui.text.value.trim() === "" ? text : `${ui.text.value}\n${text}`;
      updateCounter();
      ui.text.focus();
    },
    changed: () => {
      showHistoryEdge();
      ui.text.focus();
    },
  },
  ui.messages,
);

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
  ui.send.disabled = over || ui.text.disabled;
  if (!over && ui.status.classList.contains("field-error")) showComposerStatus("");
}

function submit() {
  if (me === null || view === null || !view.readable) return;
  if (attachments.busy) {
    showComposerStatus("Wait for the upload to finish, or remove it.");
    return;
  }
  const files = attachments.ready;
  // A message always has text: files sent alone carry their names.
  const text = ui.text.value.trim() === "" && files.length > 0 ? files.map((f) => f.name).join(", ") : ui.text.value;
  const error = api.textError(text);
  if (error !== null) {
    showComposerStatus(error);
    return;
  }
  showComposerStatus("");
  const send = {
    clientId: api.newClientId(),
    room: view.room,
    author: me.display_name,
    authorId: me.id,
    text: text.trim(),
    files,
    at: new Date(),
    state: "sending",
    error: null,
    replyTo: actions.replyTo,
  };
  actions.setReply(null);
  attachments.clear();
  typingSignal.stop();
  outbox.add(send);
  ui.empty.hidden = true;
  scrollToBottom();
  ui.text.value = "";
  updateCounter();
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
  ui.text.focus();
});
/** On touch screens Enter is a new line (there is no Shift key to hand); the Send button sends. */
const touch = window.matchMedia("(pointer: coarse)");
const onTouch = () => touch.matches || (navigator.maxTouchPoints > 0 && window.matchMedia("(hover: none)").matches);
function showComposerHelp() {
  ui.composerHelp.textContent = onTouch() ? "Enter for a new line · Send to send" : "Enter to send · Shift+Enter for a new line";
}
touch.addEventListener("change", showComposerHelp);
showComposerHelp();
ui.text.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || onTouch() || mentionPicker.open) return;
  if (!event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
    event.preventDefault();
    if (!ui.send.disabled) submit();
  }
});

// Up and Down move between messages in the log; each shows its time when focused.
ui.log.addEventListener("keydown", (event) => {
  if (event.key !== "ArrowUp" && event.key !== "ArrowDown" && event.key !== "Home" && event.key !== "End") return;
  const items = [...ui.messages.querySelectorAll(":scope > .msg")];
  if (items.length === 0) return;
  const at = items.indexOf(document.activeElement);
  let next;
  if (event.key === "Home") next = 0;
  else if (event.key === "End") next = items.length - 1;
  else if (at === -1) next = event.key === "ArrowUp" ? items.length - 1 : 0;
  else next = Math.max(0, Math.min(items.length - 1, at + (event.key === "ArrowUp" ? -1 : 1)));
  event.preventDefault();
  items[next].focus();
});
ui.text.addEventListener("input", () => {
  updateCounter();
  if (view === null || !view.readable) return;
  if (ui.text.value.trim() === "") typingSignal.stop();
  else typingSignal.typed(view.room);
});

// ---- Typing ----------------------------------------------------------------

const typingSignal = new TypingSignal((frame) => stream.send(frame));

// ---- Attachments: the button, dropped files and pasted images ---------------

const attachments = new Attachments(ui.attachments, () => updateCounter());

function attach(files) {
  if (view === null || !view.readable || files.length === 0) return;
  showComposerStatus(attachments.add(view.room, files));
}

ui.attachButton.addEventListener("click", () => ui.attachInput.click());
ui.attachInput.addEventListener("change", () => {
  attach([...ui.attachInput.files]);
  ui.attachInput.value = "";
  ui.text.focus();
});
ui.text.addEventListener("paste", (event) => {
  const files = [...(event.clipboardData?.files ?? [])].filter((f) => f.type.startsWith("image/"));
  if (files.length === 0) return; // text pastes as text
  event.preventDefault();
  attach(files);
});
const dropZone = document.getElementById("chat");
dropZone.addEventListener("dragover", (event) => {
  if (![...(event.dataTransfer?.types ?? [])].includes("Files") || view === null || !view.readable) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
  dropZone.classList.add("chat--drop");
});
dropZone.addEventListener("dragleave", (event) => {
  if (event.target === dropZone || !dropZone.contains(event.relatedTarget)) dropZone.classList.remove("chat--drop");
});
dropZone.addEventListener("drop", (event) => {
  dropZone.classList.remove("chat--drop");
  if (!event.dataTransfer?.files?.length) return;
  event.preventDefault();
  attach([...event.dataTransfer.files]);
  ui.text.focus();
});

// ---- @ autocomplete of the room's members ----------------------------------

const mentionPicker = new MentionPicker(ui.text, ui.mentionList, {
  candidates: () => membersPanel.members.filter((m) => m.id !== me?.id),
  onInsert: () => updateCounter(),
});

// ---- Message actions: reply, react, edit, delete ---------------------------

const actions = new MessageActions(timeline, {
  room: () => view?.room ?? null,
  show: openDialog,
  notice: showNotice,
  enterSaves: () => !onTouch(),
});

// Up arrow in an empty composer edits your last message.
ui.text.addEventListener("keydown", (event) => {
  if (event.key !== "ArrowUp" || mentionPicker.open || ui.text.value !== "" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
  const last = timeline.lastOwn;
  if (last === undefined) return;
  event.preventDefault();
  actions.startEdit(Number(last.dataset.seq));
});

// ---- Start ----------------------------------------------------------------

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refreshRooms();
});
// `rooms_changed` (watch.js) says when you were added or removed at once;
// rooms made elsewhere and changed counts are picked up every 15 s.
setInterval(() => {
  if (document.visibilityState === "visible") refreshRooms();
}, 15_000);
api.me().then(
  (user) => (user === null ? showSignIn() : signedIn(user)),
  () => showSignIn("", { error: "The server could not be reached; try signing in." }),
);
