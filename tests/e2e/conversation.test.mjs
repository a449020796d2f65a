// The conversation features of issue 17 (DESIGN §5b, §5c, the UI names of
// §5e): message actions on hover and focus, edit in place, delete with a
// confirmation, reactions, replies, mentions and unread badges, seen by two
// people at once.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  REMOTE,
  Server,
  axeViolations,
  eventually,
  joinAs,
  keepEvidence,
  launchBrowser,
  openPage,
  waitForState,
} from "./harness.mjs";

let browser;
let server;

before(async () => {
  browser = await launchBrowser();
  server = await Server.create("conversation");
});

after(async () => {
  await browser?.close();
  await server?.dispose();
});

/** The stored message whose text is `text` (exactly). */
const message = (page, text) => page.locator("#messages article.msg--stored").filter({ has: page.locator(`.msg-text:text-is("${text}")`) });

test("edit, delete, react and reply, live for two people; mentions and unread badges", { skip: REMOTE !== null && "needs its own server" }, async () => {
  const room = `talk-${Math.random().toString(36).slice(2, 8)}`;
  const side = `side-${Math.random().toString(36).slice(2, 8)}`;
  const contexts = [];
  const pages = [];
  try {
    for (let i = 0; i < 2; i += 1) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
      contexts.push(context);
      pages.push(await openPage(context, `${server.url}/`));
    }
    const [ada, bob] = pages;
    const adaName = await joinAs(ada, "Ada");
    await joinAs(bob, "Bob");
    // Ada makes the rooms (she joins them by creating them) and both go to one.
    for (const name of [room, side]) {
      const status = await ada.evaluate(async (n) => (await fetch("/api/v1/rooms", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: n, visibility: "public" }) })).status, name);
      assert.equal(status, 201);
    }
    for (const page of [ada, bob]) {
      await page.goto(`${server.url}/?room=${room}`);
      await waitForState(page, "connected");
    }

    const adaBox = ada.getByRole("textbox", { name: "Message", exact: true });
    await adaBox.fill("the first draft");
    await adaBox.press("Enter");
    await message(bob, "the first draft").waitFor();

    // Edit in place from the message's actions: "(edited)" for both.
    const own = message(ada, "the first draft");
    await own.hover();
    await own.getByRole("button", { name: "Edit" }).click();
    const editor = ada.getByRole("textbox", { name: "Edit message" });
    await editor.fill("the second draft");
    await ada.getByRole("button", { name: "Save" }).click();
    await eventually(async () => assert.equal(await editor.count(), 0, "the editor closes once saved"));
    for (const page of [ada, bob]) {
      const edited = message(page, "the second draft");
      await edited.waitFor();
      await edited.getByText("(edited)").waitFor();
    }
    assert.equal(await message(bob, "the second draft").getByRole("button", { name: "Edit" }).count(), 0, "no Edit on someone else's message");

    // Up arrow in the empty composer edits the last own message; Escape cancels.
    await adaBox.focus();
    await ada.keyboard.press("ArrowUp");
    await editor.waitFor();
    await ada.keyboard.press("Escape");
    await eventually(async () => assert.equal(await editor.count(), 0));

    // Bob reacts with the picker; Ada's chip toggles her own reaction.
    const theirs = message(bob, "the second draft");
    await theirs.hover();
    await theirs.getByRole("button", { name: "Add reaction" }).click();
    await bob.getByRole("dialog", { name: "Add reaction" }).getByRole("button", { name: "👍" }).click();
    for (const page of [ada, bob]) await page.getByRole("button", { name: "👍 1" }).waitFor();
    await ada.getByRole("button", { name: "👍 1" }).click();
    for (const page of [ada, bob]) await page.getByRole("button", { name: "👍 2" }).waitFor();
    assert.equal(await ada.getByRole("button", { name: "👍 2" }).getAttribute("aria-pressed"), "true");
    await ada.getByRole("button", { name: "👍 2" }).click();
    for (const page of [ada, bob]) await page.getByRole("button", { name: "👍 1" }).waitFor();

    // Bob replies, mentioning Ada: a quote above it, highlighted for her.
    await theirs.hover();
    await theirs.getByRole("button", { name: "Reply" }).click();
    await bob.getByText(/Replying to Ada: the second draft/).waitFor();
    // "@ad" offers the room's members; Enter takes the highlighted one, the next Enter sends.
    const bobBox = bob.getByRole("textbox", { name: "Message", exact: true });
    await bobBox.fill("agreed @ad");
    await bob.getByRole("listbox", { name: "People to mention" }).getByRole("option", { name: `Ada @${adaName}` }).waitFor();
    await bobBox.press("Enter");
    assert.equal(await bobBox.inputValue(), `agreed @${adaName} `);
    await bobBox.press("Enter");
    const reply = message(ada, `agreed @${adaName}`);
    await reply.waitFor();
    await reply.locator(".msg-reply").getByText("the second draft").waitFor();
    await eventually(async () => assert.match(await reply.getAttribute("class"), /msg--mention/));
    assert.deepEqual(await axeViolations(ada), [], "axe-core: the conversation with actions, chips, a reply and a mention");

    // Delete, confirmed in a dialog: a tombstone for both.
    const second = message(ada, "the second draft");
    await second.hover();
    await second.getByRole("button", { name: "Delete" }).click();
    await ada.getByRole("dialog", { name: "Delete this message?" }).getByRole("button", { name: "Delete" }).click();
    for (const page of [ada, bob]) await page.getByText("This message was deleted.").waitFor();

    // A message in another room Ada joined: a badge "1 unread", kept live.
    const post = await bob.evaluate(async (n) => (await fetch(`/api/v1/rooms/${n}/messages`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: "over here" }) })).status, side);
    assert.equal(post, 201);
    // Live from the watching stream: well before the room list's 15 s poll.
    await ada.locator(`#room-list a[data-room="${side}"]`).getByText("1 unread").waitFor({ timeout: 4_000 });
    assert.match(await ada.locator(`#room-list a[data-room="${side}"]`).getAttribute("class"), /room-link--unread/);

    // Reading it moves the marker; what came after shows under "New messages".
    await ada.locator(`#room-list a[data-room="${side}"]`).click();
    await message(ada, "over here").waitFor();
    await eventually(async () => {
      const rooms = await ada.evaluate(async () => (await (await fetch("/api/v1/rooms")).json()).rooms);
      assert.ok(rooms.find((r) => r.name === side).read_seq > 0, "the read marker moved");
    });
    await ada.locator(`#room-list a[data-room="${room}"]`).click();
    await waitForState(ada, "connected");
    const again = await bob.evaluate(async (n) => (await fetch(`/api/v1/rooms/${n}/messages`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: "and here again" }) })).status, side);
    assert.equal(again, 201);
    await ada.locator(`#room-list a[data-room="${side}"]`).getByText("1 unread").waitFor({ timeout: 25_000 });
    await ada.locator(`#room-list a[data-room="${side}"]`).click();
    const fresh = message(ada, "and here again");
    await fresh.getByRole("separator").filter({ hasText: "New messages" }).waitFor();
    assert.equal(await message(ada, "over here").locator(".new-divider").count(), 0);

    for (const page of pages) assert.deepEqual(page.problems, [], "no script error or CSP violation");
  } catch (err) {
    await Promise.all(pages.map((page, i) => keepEvidence(page, `conversation-${i}`)));
    throw err;
  } finally {
    for (const context of contexts) await context.close();
  }
});
