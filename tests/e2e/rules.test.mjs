// The UI checks input before sending; these are the server's rules
// (crates/palaver/src/domain.rs), case for case.

import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_TEXT_CHARS, authorError, roomError, textError, textLength } from "../../web/api.js";

test("room names follow the server's pattern", () => {
  for (const ok of ["general", "a", "0", "a-b_c", "x".repeat(64)]) assert.equal(roomError(ok), null, ok);
  for (const bad of ["", "-a", "_a", "General", "a b", "a/b", "é", "x".repeat(65), "a\0", "a\n"]) {
    assert.notEqual(roomError(bad), null, JSON.stringify(bad));
  }
});

test("a display name is 1-64 characters after trimming, no control characters", () => {
  assert.equal(authorError("  ada "), null);
  assert.notEqual(authorError("   "), null);
  assert.equal(authorError("é".repeat(64)), null);
  assert.equal(authorError("😀".repeat(64)), null, "counted in characters, not UTF-16 units");
  assert.notEqual(authorError("é".repeat(65)), null);
  assert.notEqual(authorError("a\nb"), null);
  assert.notEqual(authorError("a\tb"), null);
});

test("text is 1-4000 characters after trimming; newline and tab are the only control characters", () => {
  assert.equal(MAX_TEXT_CHARS, 4000);
  assert.equal(textError("line\n\tindented"), null);
  assert.notEqual(textError(" \n\t "), null);
  assert.equal(textError(`  ${"x".repeat(4000)}\n`), null);
  assert.notEqual(textError("x".repeat(4001)), null);
  assert.equal(textLength("😀".repeat(4000)), 4000);
  assert.equal(textError("😀".repeat(4000)), null);
  for (const control of ["\u0000", "\u0007", "\u001b", "\u007f", "\u0085", "\r"]) {
    assert.notEqual(textError(`a${control}b`), null, JSON.stringify(control));
  }
});

// Pure pieces of the UI of issues 18 and 19.
const { decodeEntities } = await import("../../web/highlight.js");
const { TypingSignal, typingText } = await import("../../web/typing.js");
const { formatSize } = await import("../../web/files.js");

test("a search highlight's escaped text is decoded, never parsed: the server's five escapes and numeric references", () => {
  assert.equal(decodeEntities("&lt;b&gt;zebra&lt;/b&gt; &amp; &quot;co&quot; &#39;s"), `<b>zebra</b> & "co" 's`);
  assert.equal(decodeEntities("&#x1F993; &#129427;"), "🦓 🦓");
  // Not a reference, or out of range: left as it is.
  assert.equal(decodeEntities("&nosuch; &#xD800; &#0; & ;"), "&nosuch; &#xD800; &#0; & ;");
  // Decoding once only: an escaped reference stays a reference.
  assert.equal(decodeEntities("&amp;lt;"), "&lt;");
});

test("the typing line names one or two people, then says several", () => {
  assert.equal(typingText([]), "");
  assert.equal(typingText(["Ada"]), "Ada is typing…");
  assert.equal(typingText(["Ada", "Grace"]), "Ada and Grace are typing…");
  assert.equal(typingText(["Ada", "Grace", "Linus"]), "Several people are typing…");
});

test("file sizes read as bytes, KB and MB", () => {
  assert.equal(formatSize(77), "77 bytes");
  assert.equal(formatSize(2048), "2.0 KB");
  assert.equal(formatSize(300_000), "293 KB");
  assert.equal(formatSize(25 * 1024 * 1024), "25 MB");
});

test("typing signals: the first keystroke at once, typing inside the 2 s one more when they are over, none after a send", async () => {
  const sent = [];
  const signal = new TypingSignal((frame) => {
    sent.push([frame, Date.now()]);
    return true;
  });
  const start = Date.now();
  signal.typed("a");
  signal.typed("a");
  signal.typed("a");
  assert.equal(sent.length, 1, "one at once");
  assert.deepEqual(sent[0][0], { type: "typing", room: "a" });
  await new Promise((resolve) => setTimeout(resolve, 2300));
  assert.equal(sent.length, 2, "one more when the 2 s are over");
  assert.ok(sent[1][1] - start >= 2000, "not before the server would take it");
  signal.typed("a");
  signal.stop(); // the message went
  await new Promise((resolve) => setTimeout(resolve, 2300));
  assert.equal(sent.length, 2, "nothing after a send");
});
