// The v1 HTTP API and the input rules the server applies, checked here first
// so the user sees a problem before the server refuses.

export const ROOM_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const MAX_TEXT_CHARS = 4000;
export const MAX_AUTHOR_CHARS = 64;
export const PAGE_SIZE = 50;

// The server counts Unicode scalar values after trimming; so do we.
const chars = (s) => [...s].length;
// Control characters (Unicode Cc); the server allows only newline and tab in text.
const TEXT_CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;
const NAME_CONTROL = /[\u0000-\u001F\u007F-\u009F]/;

/** The canonical form of a typed room name: no leading "#", no spaces around, lower case. */
export function tidyRoom(raw) {
  return raw.trim().replace(/^#+/, "").trim().toLowerCase();
}

export const USERNAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{1,31}$/;
export const MIN_PASSWORD_CHARS = 10;
export const MAX_PASSWORD_CHARS = 1024;
export const MAX_TOPIC_CHARS = 250;

/** Returns an error sentence for a username the server would refuse, or null. */
export function usernameError(raw) {
  const name = raw.trim();
  if (name === "") return "Type a username.";
  if (USERNAME_PATTERN.test(name)) return null;
  if (name !== name.toLowerCase() && USERNAME_PATTERN.test(name.toLowerCase())) {
    return "Usernames are lower case: use only a–z, 0–9, “.”, “_” and “-”.";
  }
  if (chars(name) < 2) return "A username has at least 2 characters.";
  if (chars(name) > 32) return `A username has at most 32 characters (this one has ${chars(name)}).`;
  return "A username uses only a–z, 0–9, “.”, “_” and “-”, and starts with a letter or digit.";
}

/** Returns an error sentence for a new password the server would refuse, or null. */
export function passwordError(raw) {
  if (raw === "") return "Type a password.";
  if (chars(raw) < MIN_PASSWORD_CHARS) {
    return `A password has at least ${MIN_PASSWORD_CHARS} characters (this one has ${chars(raw)}).`;
  }
  if (chars(raw) > MAX_PASSWORD_CHARS) return `A password has at most ${MAX_PASSWORD_CHARS} characters.`;
  if (NAME_CONTROL.test(raw)) return "A password cannot contain control characters.";
  return null;
}

/** Returns an error message for an invalid room name, or null. */
export function roomError(name) {
  return ROOM_PATTERN.test(name)
    ? null
    : "Room names are 1–64 characters of a–z, 0–9, “_” and “-”, starting with a letter or digit.";
}

/** Returns an error message for an invalid display name, or null. */
export function authorError(raw) {
  const name = raw.trim();
  if (name === "") return "Choose a display name.";
  if (chars(name) > MAX_AUTHOR_CHARS) {
    return `A display name is at most ${MAX_AUTHOR_CHARS} characters (this one is ${chars(name)}).`;
  }
  if (NAME_CONTROL.test(name)) return "A display name cannot contain control characters.";
  return null;
}

/** Characters the server will count for `raw` (after trimming). */
export function textLength(raw) {
  return chars(raw.trim());
}

/** Returns an error message for message text the server would refuse, or null. */
export function textError(raw) {
  const length = textLength(raw);
  if (length === 0) return "Type a message first.";
  if (length > MAX_TEXT_CHARS) {
    return `Messages are at most ${MAX_TEXT_CHARS} characters; this one is ${length}.`;
  }
  if (TEXT_CONTROL.test(raw.trim())) return "The message contains control characters.";
  return null;
}

/** An idempotency key for one send (kept across its retries). */
export function newClientId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // randomUUID needs a secure context; plain HTTP on a LAN address is not one.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A failed request: `status` is 0 when the server could not be reached. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  /** Whether sending the same request again may succeed. */
  get retryable() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

async function request(path, { method = "GET", body, signal, empty = false } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      signal,
      headers: body === undefined ? { Accept: "application/json" } : {
        Accept: "application/json",
        "Content-Type": "application/json",
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "The server could not be reached.");
  }
  if (empty && response.ok) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): handled below by status.
  }
  if (response.ok && payload !== null) return payload;
  const error = payload?.error ?? {};
  const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  throw new ApiError(
    response.status,
    error.code ?? "http_" + response.status,
    error.message ?? `The server answered ${response.status}.`,
    Number.isFinite(retryAfter) ? retryAfter : null,
  );
}

const roomPath = (room) => `/api/v1/rooms/${encodeURIComponent(room)}`;

/** `[{name, last_seq, visibility}]`, by name. */
export async function listRooms(signal) {
  const { rooms } = await request("/api/v1/rooms", { signal });
  return rooms;
}

/**
 * A page of history, newest first: the latest page, or the page before `before`.
 * A room that is missing, or private and not yours, is an ApiError with status 404.
 */
export async function fetchPage(room, { before = null, limit = PAGE_SIZE } = {}, signal) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (before !== null) query.set("before", String(before));
  return request(`${roomPath(room)}/messages?${query}`, { signal });
}

/** Stores a message (its author is the signed-in user); a repeated `client_id` returns the stored one. */
export function sendMessage(room, { text, clientId, replyTo = null, files = [] }) {
  const body = { text, client_id: clientId };
  if (replyTo !== null) body.reply_to = replyTo;
  if (files.length > 0) body.files = files.map((f) => f.id);
  return request(`${roomPath(room)}/messages`, { method: "POST", body });
}

/** Your own message's new text; the message. */
export function editMessage(room, seq, text) {
  return request(`${roomPath(room)}/messages/${seq}`, { method: "PATCH", body: { text } });
}

export async function deleteMessage(room, seq) {
  await request(`${roomPath(room)}/messages/${seq}`, { method: "DELETE", empty: true });
}

/** Adds (`on`) or takes back your reaction `emoji`. */
export async function react(room, seq, emoji, on) {
  await request(`${roomPath(room)}/messages/${seq}/reactions/${encodeURIComponent(emoji)}`, {
    method: on ? "PUT" : "DELETE",
    empty: true,
  });
}

/** Moves your read marker forward to `seq`. */
export async function markRead(room, seq) {
  await request(`${roomPath(room)}/read`, { method: "PUT", body: { seq }, empty: true });
}

/** The signed-in user, or null when signed out. */
export async function me() {
  try {
    return (await request("/api/v1/me")).user;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

export async function login(username, password) {
  return (await request("/api/v1/auth/login", { method: "POST", body: { username, password } })).user;
}

export async function register(username, password, displayName) {
  const body = { username, password };
  if (displayName !== "") body.display_name = displayName;
  return (await request("/api/v1/auth/register", { method: "POST", body })).user;
}

export async function logout() {
  const response = await fetch("/api/v1/auth/logout", { method: "POST", cache: "no-store" });
  return response.status;
}

/** Creates a room; `{name, last_seq, visibility}`. */
export async function createRoom(name, visibility) {
  return (await request("/api/v1/rooms", { method: "POST", body: { name, visibility } })).room;
}

const memberPath = (room, username) => `${roomPath(room)}/members/${encodeURIComponent(username)}`;

/** The room's members: `[user]`, by username. */
export async function listMembers(room, signal) {
  return (await request(`${roomPath(room)}/members`, { signal })).members;
}

/** Adds `username` to `room` (owner or admin); naming yourself joins a public room. */
export async function addMember(room, username) {
  await request(memberPath(room, username), { method: "PUT", empty: true });
}

/** Removes `username` from `room` (owner or admin); naming yourself leaves it. */
export async function removeMember(room, username) {
  await request(memberPath(room, username), { method: "DELETE", empty: true });
}

/** Sets a room's topic (owner or admin); the room. */
export async function setTopic(room, topic) {
  return (await request(roomPath(room), { method: "PATCH", body: { topic } })).room;
}

/** Changes your display name; the user. */
export async function setDisplayName(displayName) {
  return (await request("/api/v1/me", { method: "PATCH", body: { display_name: displayName } })).user;
}

/** Changes your password; every other session of yours is signed out. */
export async function changePassword(currentPassword, newPassword) {
  await request("/api/v1/me/password", {
    method: "POST",
    body: { current_password: currentPassword, new_password: newPassword },
    empty: true,
  });
}

/** People whose username or display name starts with `query`: `[user]`. */
export async function findPeople(query, signal) {
  const params = new URLSearchParams({ query, limit: "20" });
  return (await request(`/api/v1/users?${params}`, { signal })).users;
}

/** The direct room of you and `usernames` (1 to 8 others), made if needed: the room. */
export async function openDirect(usernames) {
  return (await request("/api/v1/dms", { method: "POST", body: { usernames } })).room;
}

/** `{results: [{message, highlight}], next}`: messages matching `q`, newest first, after the cursor `before`. */
export function searchMessages(q, { before = null, room = null } = {}, signal) {
  const params = new URLSearchParams({ q, limit: "20" });
  if (before !== null) params.set("before", String(before));
  if (room !== null) params.set("room", room);
  return request(`/api/v1/search?${params}`, { signal });
}

/** Up to `limit` messages around `seq` (itself included), oldest first. */
export function fetchAround(room, seq, limit = PAGE_SIZE, signal) {
  const query = new URLSearchParams({ around: String(seq), limit: String(limit) });
  return request(`${roomPath(room)}/messages?${query}`, { signal });
}

/** `{username: {status, last_seen}}` for at most 200 usernames. */
export async function fetchPresence(usernames, signal) {
  const query = new URLSearchParams({ users: usernames.join(",") });
  return (await request(`/api/v1/presence?${query}`, { signal })).presence ?? {};
}

/** Where a stored file is served. */
export const fileUrl = (id) => `/api/v1/files/${encodeURIComponent(id)}`;

/**
 * Uploads `blob` as a file of `room` named `name` (raw body); resolves to
 * `{id, name, size, content_type, width?, height?}`. `onProgress(sent, total)`
 * follows the upload (XMLHttpRequest: fetch cannot report it).
 */
export function uploadFile(room, blob, name, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${roomPath(room)}/files?${new URLSearchParams({ name })}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress?.(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => {
      const payload = xhr.response;
      if (xhr.status === 201 && payload?.file) {
        resolve(payload.file);
        return;
      }
      const error = payload?.error ?? {};
      const retryAfter = Number.parseInt(xhr.getResponseHeader("Retry-After") ?? "", 10);
      reject(
        new ApiError(
          xhr.status,
          error.code ?? "http_" + xhr.status,
          error.message ?? `The server answered ${xhr.status}.`,
          Number.isFinite(retryAfter) ? retryAfter : null,
        ),
      );
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", "The server could not be reached.")));
    xhr.addEventListener("abort", () => {
      const err = new Error("aborted");
      err.name = "AbortError";
      reject(err);
    });
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(blob);
  });
}
