// Files (DESIGN §5d): uploads for the next send, shown in the composer with
// their progress or error, and the attachments of stored messages: images
// inline at their size, anything else as a chip that downloads it.

import { fileUrl, uploadFile } from "./api.js";

/** The types the server serves inline (everything else downloads). */
const INLINE_IMAGES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
/** The most files one message may carry (the server's limit). */
export const MAX_FILES = 10;

/** "12 KB", "3.4 MB": a size for people. */
export function formatSize(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KB", "MB", "GB"];
  let size = bytes / 1024;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size < 10 ? size.toFixed(1) : Math.round(size)} ${units[unit]}`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The attachments of a stored message, or null when it has none. */
export function renderFiles(files) {
  if (!Array.isArray(files) || files.length === 0) return null;
  const list = el("div", "msg-files");
  for (const file of files) {
    if (typeof file?.id !== "string") continue;
    const link = el("a", "");
    link.href = fileUrl(file.id);
    link.target = "_blank";
    link.rel = "noopener";
    if (INLINE_IMAGES.has(file.content_type)) {
      link.className = "attachment-image";
      const img = el("img", "");
      img.src = link.href;
      img.alt = file.name;
      img.loading = "lazy";
      img.decoding = "async";
      if (Number.isInteger(file.width) && Number.isInteger(file.height)) {
        img.width = file.width;
        img.height = file.height;
      }
      link.append(img);
      link.title = `${file.name} (${formatSize(file.size)})`;
    } else {
      link.className = "file-chip";
      // A badge with the file's extension stands for its icon.
      const ext = /\.([a-z0-9]{1,4})$/i.exec(file.name)?.[1] ?? "file";
      const icon = el("span", "file-icon", ext.toUpperCase());
      icon.setAttribute("aria-hidden", "true");
      link.append(icon, el("span", "file-name", file.name), el("span", "file-about", ` ${formatSize(file.size)} · ${file.content_type}`));
    }
    list.append(link);
  }
  return list;
}

/** Why an upload failed, in a sentence. */
function uploadFailure(err, maxBytes) {
  if (err.status === 413) return maxBytes ? `too large (the limit is ${formatSize(maxBytes)}).` : "too large for this server.";
  if (err.status === 0) return "the server could not be reached.";
  if (err.status === 429) return "too many uploads; wait a moment.";
  return err.message;
}

/**
 * The files picked for the next message of the open room, each uploaded at
 * once: `{key, name, size, state: "uploading" | "done" | "failed", file, abort}`.
 * At most `MAX_FILES`; cleared when the room changes or the message is sent.
 */
export class Attachments {
  #tray;
  #items = [];
  #onChange;
  #key = 0;

  /**
   * @param {HTMLElement} tray the list shown above the composer
   * @param {() => void} onChange the set or a state changed
   */
  constructor(tray, onChange) {
    this.#tray = tray;
    this.#onChange = onChange;
    tray.addEventListener("click", (event) => {
      const remove = event.target.closest("button[data-remove-file]");
      if (remove === null) return;
      this.#remove(Number(remove.dataset.removeFile));
    });
  }

  /** Uploads `files` (File or Blob objects) to `room`; returns a sentence when some were left out. */
  add(room, files) {
    let refused = 0;
    for (const blob of files) {
      if (this.#items.length >= MAX_FILES) {
        refused += 1;
        continue;
      }
      const name = blob.name || `pasted-image.${(blob.type.split("/")[1] || "png").replace(/[^a-z0-9]/g, "")}`;
      const item = { key: ++this.#key, room, name, size: blob.size, sent: 0, state: "uploading", file: null, error: "", abort: new AbortController() };
      this.#items.push(item);
      uploadFile(room, blob, name, {
        signal: item.abort.signal,
        onProgress: (sent) => {
          item.sent = sent;
          this.#render();
        },
      }).then(
        (file) => {
          item.state = "done";
          item.file = file;
          this.#changed();
        },
        (err) => {
          if (err.name === "AbortError") return;
          item.state = "failed";
          item.error = uploadFailure(err);
          this.#changed();
        },
      );
    }
    this.#changed();
    return refused > 0 ? `A message carries at most ${MAX_FILES} files; ${refused} left out.` : "";
  }

  /** Whether an upload is still running. */
  get busy() {
    return this.#items.some((i) => i.state === "uploading");
  }

  /** The uploaded files (`[file]`) to send. */
  get ready() {
    return this.#items.filter((i) => i.state === "done").map((i) => i.file);
  }

  /** Forgets every file (sent, or the room changed); running uploads stop. */
  clear() {
    for (const item of this.#items) item.abort.abort();
    this.#items = [];
    this.#changed();
  }

  #remove(key) {
    const item = this.#items.find((i) => i.key === key);
    if (item === undefined) return;
    item.abort.abort();
    this.#items.splice(this.#items.indexOf(item), 1);
    this.#changed();
  }

  #changed() {
    this.#render();
    this.#onChange();
  }

  #render() {
    this.#tray.hidden = this.#items.length === 0;
    this.#tray.replaceChildren(
      ...this.#items.map((item) => {
        const row = el("li", `attachment attachment--${item.state}`);
        row.append(el("span", "file-name", item.name), " ", el("span", "file-about", formatSize(item.size)), " ");
        if (item.state === "uploading") {
          const bar = el("progress", "");
          bar.max = Math.max(1, item.size);
          bar.value = item.sent;
          bar.setAttribute("aria-label", `Uploading ${item.name}`);
          row.append(bar);
        } else if (item.state === "failed") {
          row.append(el("span", "field-error", `Not uploaded: ${item.error}`));
        } else {
          row.append(el("span", "file-about", "ready"));
        }
        const remove = el("button", "link-button", "Remove");
        remove.type = "button";
        remove.dataset.removeFile = String(item.key);
        remove.setAttribute("aria-label", `Remove ${item.name}`);
        row.append(" ", remove);
        return row;
      }),
    );
  }
}
