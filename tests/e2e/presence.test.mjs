// Issue 19's UI (DESIGN §5e): the typing line between two people ("Ada is
// typing…", gone about 6 s after the last signal or at once with her
// message, never about yourself) and presence dots, online and offline, in
// the member list and the direct-messages section.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { REMOTE, Server, account, axeViolations, eventually, keepEvidence, launchBrowser, openPage, signUp, waitForState } from "./harness.mjs";

const DESKTOP = { width: 1280, height: 800 };

let browser;
let server;

before(async () => {
  browser = await launchBrowser();
  server = await Server.create("presence");
});

after(async () => {
  await browser?.close();
  await server?.dispose();
});

const message = (page, text) => page.locator("#messages article.msg--stored").filter({ has: page.locator(`.msg-text:text-is("${text}")`) });

test("typing: 'Ada is typing…' for the other person, gone ~6 s after she stops or at once when she sends; presence dots online and offline", { skip: REMOTE !== null && "needs its own server" }, async () => {
  const room = `typing-${Math.random().toString(36).slice(2, 8)}`;
  const contexts = [];
  const pages = [];
  try {
    for (let i = 0; i < 2; i += 1) {
      const context = await browser.newContext({ viewport: DESKTOP, locale: "en-US" });
      contexts.push(context);
      pages.push(await openPage(context));
    }
    const [ada, bob] = pages;
    const owner = await account(server, "Owner");
    assert.equal((await owner.call("POST", "/api/v1/rooms", { name: room, visibility: "public" })).status, 201);
    const adaName = await signUp(ada, server, "Ada", `/?room=${room}`);
    await waitForState(ada, "connected");
    const adaBox = ada.getByRole("textbox", { name: "Message", exact: true });
    await adaBox.fill("first");
    await adaBox.press("Enter");
    await message(ada, "first").waitFor();
    await signUp(bob, server, "Bob", `/?room=${room}`);
    await waitForState(bob, "connected");
    await message(bob, "first").waitFor();

    const line = bob.locator("#typing-line");
    assert.equal(await line.getAttribute("aria-live"), "polite");
    // Ada types: Bob reads it; Ada never sees herself.
    await adaBox.pressSequentially("hello Bob", { delay: 30 });
    await eventually(async () => assert.equal(await line.textContent(), "Ada is typing…"), { timeout: 5_000 });
    const shown = Date.now();
    assert.equal(await ada.locator("#typing-line").textContent(), "", "never yourself");
    // She stops: it goes about 6 s after her last signal.
    await eventually(async () => assert.equal(await line.textContent(), ""), { timeout: 10_000 });
    const lasted = Date.now() - shown;
    assert.ok(lasted > 4_000 && lasted < 9_000, `shown for about 6 s (${lasted} ms)`);

    // She types again and sends: gone at once with her message.
    await adaBox.pressSequentially(" again", { delay: 30 });
    await eventually(async () => assert.equal(await line.textContent(), "Ada is typing…"), { timeout: 5_000 });
    await adaBox.press("Enter");
    await message(bob, "hello Bob again").waitFor();
    assert.equal(await line.textContent(), "", "her message clears it");

    // Presence in the member list: Ada online, with the word for screen readers.
    await bob.getByRole("button", { name: "Members" }).click();
    const members = bob.getByRole("dialog", { name: /Members of/ });
    const adaRow = members.getByRole("listitem").filter({ hasText: `@${adaName}` });
    await eventually(async () => assert.match(await adaRow.locator(".presence-dot").textContent(), /online/), { timeout: 8_000 });
    assert.equal(await adaRow.locator('.presence-dot[data-status="online"]').count(), 1);
    assert.deepEqual(await axeViolations(bob), [], "axe-core: members with presence");
    await members.getByRole("button", { name: "Close" }).click();

    // A direct room: its entry in the sidebar carries Ada's dot too.
    const direct = await bob.evaluate(async (name) => {
      const r = await fetch("/api/v1/dms", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ usernames: [name] }) });
      return r.status;
    }, adaName);
    assert.ok(direct === 201 || direct === 200, `direct room: ${direct}`);
    const entry = bob.getByRole("navigation", { name: "Direct messages" }).getByRole("link", { name: /Ada/ });
    await entry.waitFor({ timeout: 20_000 });
    await eventually(async () => assert.match(await entry.textContent(), /online/), { timeout: 8_000 });

    // Ada leaves (her only stream closes): offline within the contract's 60 s.
    await contexts[0].close();
    contexts.shift();
    await eventually(async () => assert.match(await entry.textContent(), /offline/), { timeout: 70_000 });
    assert.equal(await entry.locator('.presence-dot[data-status="offline"]').count(), 1);
    assert.deepEqual(bob.problems, []);
  } catch (err) {
    for (const [i, page] of pages.entries()) await keepEvidence(page, `presence-${i}`);
    throw err;
  } finally {
    for (const context of contexts) await context.close();
  }
});
