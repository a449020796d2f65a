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
