// Message text as DOM nodes: a small, safe Markdown subset (code blocks,
// quotes, inline code, bold, italic) and links. Every piece of user text
// becomes a text node; nothing is ever parsed as HTML.

const FENCE = "```";
/** http(s) URLs; trailing punctuation is left out of the link. */
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;
/** Inline spans, tried in this order at each position. */
const INLINE = [
  { open: "`", close: "`", tag: "code" },
  { open: "**", close: "**", tag: "strong" },
  { open: "__", close: "__", tag: "strong" },
  { open: "*", close: "*", tag: "em" },
  { open: "_", close: "_", tag: "em" },
];

function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

/** Text with its URLs as links that open in a new tab. */
function linkify(text, into) {
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let url = match[0];
    const trailing = url.match(TRAILING);
    if (trailing) url = url.slice(0, -trailing[0].length);
    if (url.length <= "https://".length) continue;
    into.append(text.slice(last, match.index));
    const link = el("a", "msg-link");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    link.textContent = url;
    into.append(link);
    last = match.index + url.length;
  }
  into.append(text.slice(last));
}

/** Whether a marker at `i` may open a span (not inside a word for `_`, not followed by a space). */
function opens(text, i, marker) {
  const next = text[i + marker.length];
  if (next === undefined || /\s/.test(next)) return false;
  if (marker[0] === "_" && i > 0 && /[\p{L}\p{N}]/u.test(text[i - 1])) return false;
  return true;
}

function findClose(text, from, marker) {
  for (let j = text.indexOf(marker, from); j !== -1; j = text.indexOf(marker, j + 1)) {
    if (j > from && !/\s/.test(text[j - 1])) {
      const after = text[j + marker.length];
      if (marker[0] === "_" && after !== undefined && /[\p{L}\p{N}]/u.test(after)) continue;
      return j;
    }
  }
  return -1;
}

/** Inline Markdown and links within one line (or paragraph). */
function inline(text, into, depth = 0) {
  let plain = "";
  let i = 0;
  const flush = () => {
    if (plain !== "") linkify(plain, into);
    plain = "";
  };
  while (i < text.length) {
    const span = depth < 3 ? INLINE.find((s) => text.startsWith(s.open, i) && opens(text, i, s.open)) : undefined;
    if (span !== undefined) {
      const start = i + span.open.length;
      const end = findClose(text, start, span.close);
      if (end !== -1) {
        flush();
        const node = el(span.tag);
        const inner = text.slice(start, end);
        if (span.tag === "code") node.textContent = inner;
        else inline(inner, node, depth + 1);
        into.append(node);
        i = end + span.close.length;
        continue;
      }
    }
    plain += text[i];
    i += 1;
  }
  flush();
}

/** Lines (no fences) as text with quotes grouped into blockquotes. */
function blocks(lines, into) {
  let quote = null;
  let first = true;
  for (const line of lines) {
    const quoted = /^>\s?/.exec(line);
    if (quoted) {
      if (quote === null) {
        quote = el("blockquote", "msg-quote");
        into.append(quote);
      } else {
        quote.append("\n");
      }
      inline(line.slice(quoted[0].length), quote);
      first = false;
      continue;
    }
    if (quote !== null) {
      quote = null;
    } else if (!first) {
      into.append("\n");
    }
    inline(line, into);
    first = false;
  }
}

/** Appends `text` to `into` as formatted nodes. */
export function renderText(text, into) {
  const parts = text.split(FENCE);
  // An unclosed fence is literal text.
  const closed = parts.length % 2 === 1 ? parts.length : parts.length - 1;
  for (let k = 0; k < parts.length; k += 1) {
    if (k % 2 === 1 && k < closed) {
      const pre = el("pre", "msg-code");
      const code = el("code");
      // An optional language word on the fence line, then the code.
      code.textContent = parts[k].replace(/^[\w+-]*\n/, "").replace(/\n$/, "");
      pre.append(code);
      into.append(pre);
      continue;
    }
    let chunk = k >= closed && k > 0 ? FENCE + parts[k] : parts[k];
    if (k > 0 && k % 2 === 0) chunk = chunk.replace(/^\n/, "");
    if (k + 1 < closed) chunk = chunk.replace(/\n$/, "");
    if (chunk !== "") blocks(chunk.split("\n"), into);
  }
}
