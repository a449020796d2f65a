// One `/api/v1/stream` per tab (DESIGN §5c): two people see each other's
// messages, edits and reactions through it; counts stay right when one of
// them reconnects or reloads mid-way (a replayed message already holds its
// reactions: §5b's `as_of`); other rooms' unread badges are live, and a read
// marker moved in another tab clears the badge here.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { REMOTE, Server, eventually, joinAs, keepEvidence, launchBrowser, openPage, waitForState } from "./harness.mjs";

let browser;
let server;

before(async () => {
  browser = await launchBrowser();
  server = await Server.create("stream");
});

after(async () => {
  await browser?.close();
  await server?.dispose();
});

/** The stored message whose text is `text` (exactly). */
const message = (page, text) => page.locator("#messages article.msg--stored").filter({ has: page.locator(`.msg-text:text-is("${text}")`) });

/** A v1 call made in the page (with its session): `{status, body}`. */
function call(page, method, path, body) {
  return page.evaluate(
    async ([method, path, body]) => {
      const response = await fetch(path, {
        method,
        headers: body === null ? {} : { "Content-Type": "application/json" },
        body: body === null ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text === "" ? null : JSON.parse(text) };
    },
    [method, path, body ?? null],
  );
}

async function post(page, room, text) {
  const { status, body } = await call(page, "POST", `/api/v1/rooms/${room}/messages`, { text });
  assert.equal(status, 201, `post ${text}`);
  return body;
}

async function react(page, room, seq, emoji) {
  const { status } = await call(page, "PUT", `/api/v1/rooms/${room}/messages/${seq}/reactions/${encodeURIComponent(emoji)}`);
  assert.equal(status, 204, `react ${emoji}`);
}

/** The reaction chips of a message, as their accessible names. */
const chips = (page, text) => message(page, text).locator(".chip").allTextContents();

test("one stream per tab: messages, edits and reactions live for two people; counts right after a reconnect and a reload; live badges and read markers", { skip: REMOTE !== null && "needs its own server" }, async () => {
  const room = `live-${Math.random().toString(36).slice(2, 8)}`;
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
    const sockets = new Map(pages.map((p) => [p, []]));
    for (const page of pages) page.on("websocket", (ws) => sockets.get(page).push(ws.url()));
    await joinAs(ada, "Ada");
    await joinAs(bob, "Bob");
    for (const name of [room, side]) assert.equal((await call(ada, "POST", "/api/v1/rooms", { name, visibility: "public" })).status, 201);
    // Bob joins the room (Ada joined both by making them).
    const bobName = (await call(bob, "GET", "/api/v1/me")).body.user.username;
    assert.equal((await call(bob, "PUT", `/api/v1/rooms/${room}/members/${bobName}`)).status, 204);
    for (const page of pages) {
      await page.goto(`${server.url}/?room=${room}`);
      await waitForState(page, "connected");
    }
    sockets.set(ada, []);
    sockets.set(bob, []);
    await ada.reload();
    await waitForState(ada, "connected");

    // Messages and edits, both ways, on the one stream.
    const adaBox = ada.getByRole("textbox", { name: "Message", exact: true });
    await adaBox.fill("hello from ada");
    await adaBox.press("Enter");
    await message(bob, "hello from ada").waitFor();
    await post(bob, room, "hello from bob");
    await message(ada, "hello from bob").waitFor();
    const first = Number(await message(ada, "hello from ada").getAttribute("data-seq"));
    assert.equal((await call(ada, "PATCH", `/api/v1/rooms/${room}/messages/${first}`, { text: "hello again from ada" })).status, 200);
    await message(bob, "hello again from ada").getByText("(edited)").waitFor();
    await react(bob, room, first, "👍");
    for (const page of pages) await eventually(async () => assert.deepEqual(await chips(page, "hello again from ada"), ["👍 1"]));
    assert.deepEqual(sockets.get(ada), [`${server.url.replace("http", "ws")}/api/v1/stream`], "Ada's tab opened exactly one socket, the multiplexed stream");

    // Ada drops off; meanwhile Bob sends a message and reacts to it. On her
    // return the stream replays the message as it is now (with its
    // reaction) and then the reaction event: counted once.
    await contexts[0].setOffline(true);
    await waitForState(ada, "offline");
    const away = await post(bob, room, "sent while you were away");
    await react(bob, room, away.seq, "🎉");
    await react(bob, room, first, "❤️");
    await contexts[0].setOffline(false);
    await waitForState(ada, "connected");
    await message(ada, "sent while you were away").waitFor();
    // A later message marks the end of everything before it.
    await post(bob, room, "marker one");
    await message(ada, "marker one").waitFor();
    assert.deepEqual(await chips(ada, "sent while you were away"), ["🎉 1"], "the replayed reaction is not counted twice");
    assert.deepEqual(await chips(ada, "hello again from ada"), ["👍 1", "❤️ 1"]);

    // Reloaded mid-way: the page holds the reaction already; the stream goes on from the page's `as_of`.
    const late = await post(bob, room, "a late one");
    await react(bob, room, late.seq, "👀");
    await ada.reload();
    await waitForState(ada, "connected");
    await post(bob, room, "marker two");
    await message(ada, "marker two").waitFor();
    assert.deepEqual(await chips(ada, "a late one"), ["👀 1"], "a reaction inside the page is not added again");
    assert.deepEqual(await chips(ada, "sent while you were away"), ["🎉 1"]);

    // Another room Ada joined: its badge is live from the same socket.
    await post(bob, side, "over in the side room");
    const badge = ada.locator(`#room-list a[data-room="${side}"]`);
    await badge.getByText("1 unread").waitFor({ timeout: 4_000 });
    await post(bob, side, "and another");
    await badge.getByText("2 unread").waitFor({ timeout: 4_000 });

    // Ada reads the side room in a second tab: the first tab's badge goes (a `read` frame).
    const second = await openPage(contexts[0], `${server.url}/?room=${side}`);
    pages.push(second);
    await message(second, "and another").waitFor();
    await eventually(async () => assert.equal(await badge.locator(".unread-badge").count(), 0, "the badge went with the other tab's read marker"), { timeout: 8_000 });

    // The open room's read marker follows what Ada saw.
    await eventually(async () => {
      const { body } = await call(ada, "GET", "/api/v1/rooms");
      const info = body.rooms.find((r) => r.name === room);
      assert.ok(info.read_seq >= info.last_seq - 0, `read_seq ${info.read_seq} reached last_seq ${info.last_seq}`);
    });
    for (const page of pages) assert.deepEqual(page.problems, [], "no script error or CSP violation");
  } catch (err) {
    for (const [i, page] of pages.entries()) await keepEvidence(page, `stream-${i}`);
    throw err;
  } finally {
    for (const context of contexts) await context.close();
  }
});
