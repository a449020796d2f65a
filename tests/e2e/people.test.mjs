// The UI as people meet it (issue 22): one test per finding, each written to
// fail on the UI before the fix. Accounts are made through the API (in the
// page, so the browser holds the session) so that every test reaches the
// finding it is about, whatever the sign-in form looks like.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import {
  PASSWORD,
  REMOTE,
  SCREENSHOTS,
  Server,
  account,
  axeViolations,
  eventually,
  keepEvidence,
  launchBrowser,
  openPage,
  shownTexts,
  signUp,
  waitForState,
} from "./harness.mjs";

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true };

let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** A fresh server per test: its first account (made by `admin()`) is the admin. */
async function withServer(name, body) {
  const server = await Server.create(name);
  try {
    await body(server);
  } finally {
    await server.dispose();
  }
}

/** A browser context per person; screenshots of its pages on failure; no script error or CSP violation. */
async function person(name, options = {}) {
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-US", ...options });
  const pages = [];
  return {
    context,
    async open(url) {
      const page = await openPage(context, url);
      pages.push(page);
      return page;
    },
    async close(failed) {
      if (failed) {
        await Promise.all(pages.map((page, i) => keepEvidence(page, `${name}-${i}`)));
        for (const page of pages) if (page.problems.length > 0) console.error(name, page.problems);
      }
      for (const page of pages) assert.deepEqual(page.problems, [], `${name}: no script error or CSP violation`);
      await context.close();
    },
  };
}

/** Runs `body` with the people named; closes their contexts, keeping evidence on failure. */
async function withPeople(names, body, options = {}) {
  const people = [];
  for (const name of names) people.push(await person(name, options[name] ?? options.all ?? {}));
  let failed = true;
  try {
    await body(...people);
    failed = false;
  } finally {
    for (const p of people) await p.close(failed);
  }
}

/** A private room owned by `owner` with `others` added. */
async function privateRoom(owner, others = []) {
  const name = `secret-${Math.random().toString(36).slice(2, 8)}`;
  assert.equal((await owner.call("POST", "/api/v1/rooms", { name, visibility: "private" })).status, 201);
  for (const other of others) {
    assert.equal((await owner.call("PUT", `/api/v1/rooms/${name}/members/${other.username}`)).status, 204);
  }
  return name;
}

const REFUSAL = "This room is private or does not exist";

test("1. a private room's link says it cannot be read: no stream, not listed, no composer; a removed member's tabs switch to it at once", { skip: REMOTE !== null && "needs its own server" }, async () => {
  await withServer("refusal", async (server) => {
    const admin = await account(server, "Admin");
    const room = await privateRoom(admin);
    await admin.post(room, "only for members");
    await withPeople(["guest"], async (guest) => {
      const page = await guest.open();
      const sockets = [];
      const sent = [];
      page.on("websocket", (ws) => {
        sockets.push(ws.url());
        ws.on("framesent", (frame) => sent.push(String(frame.payload)));
      });
      const guestName = await signUp(page, server, "Guest", `/?room=${room}`);
      await page.getByRole("heading", { name: REFUSAL }).waitFor();
      await page.getByRole("link", { name: "Go to #general" }).waitFor();
      // Long enough for the old page to have gone "Reconnecting…" and "Offline".
      await page.waitForTimeout(1500);
      assert.equal(await page.getByText("No messages yet").isVisible(), false);
      assert.ok(!["reconnecting", "offline"].includes(await page.locator("#connection").getAttribute("data-state")), "the server is fine: no connection trouble shown");
      assert.equal(await page.getByRole("button", { name: "Retry now" }).count(), 0);
      assert.deepEqual(sockets.filter((url) => url.includes(room)), [], "no stream attempt");
      assert.deepEqual(sent.filter((payload) => payload.includes(room)), [], "no subscription to it");
      assert.ok(sockets.every((url) => url.endsWith("/api/v1/stream")), `one stream for all rooms: ${sockets}`);
      assert.equal(await page.locator(`#room-list a[data-room="${room}"]`).count(), 0, "not added to the sidebar");
      assert.ok(await page.getByRole("textbox", { name: "Message" }).isDisabled(), "nothing to send to");

      // Added, the guest reads it in two tabs; removed, both switch at once.
      assert.equal((await admin.call("PUT", `/api/v1/rooms/${room}/members/${guestName}`)).status, 204);
      await page.reload();
      const second = await guest.open(`${server.url}/?room=${room}`);
      for (const tab of [page, second]) {
        await tab.getByRole("log").getByText("only for members").waitFor();
        await waitForState(tab, "connected");
        await tab.locator(`#room-list a[data-room="${room}"]`).waitFor();
      }
      assert.equal((await admin.call("DELETE", `/api/v1/rooms/${room}/members/${guestName}`)).status, 204);
      for (const tab of [page, second]) {
        await tab.getByRole("heading", { name: REFUSAL }).waitFor();
        await tab.getByText(`You are no longer a member of #${room}`).waitFor();
        assert.ok(await tab.getByRole("textbox", { name: "Message" }).isDisabled());
        await eventually(async () => assert.equal(await tab.locator(`#room-list a[data-room="${room}"]`).count(), 0));
        assert.notEqual(await tab.locator("#connection").getAttribute("data-state"), "offline");
        assert.equal(await tab.getByText("only for members").count(), 0, "what was read is gone");
      }
    });
  });
});

test("2. the room header opens a member list; only owners and admins see Add and Remove; the owner cannot leave", { skip: REMOTE !== null && "needs its own server" }, async () => {
  await withServer("members", async (server) => {
    const adminPage = { name: null };
    await withPeople(["admin", "bob"], async (adminP, bobP) => {
      // The first account of a fresh server is its admin.
      const page = await adminP.open();
      adminPage.name = await signUp(page, server, "Ada Admin");
      const bobPage = await bobP.open();
      const bob = { username: await signUp(bobPage, server, "Bob") };
      const carol = await account(server, "Carol");
      const room = `team-${Math.random().toString(36).slice(2, 8)}`;
      await page.getByLabel("New private room").fill(room);
      await page.getByLabel("New private room").press("Enter");
      await page.getByRole("heading", { name: room }).waitFor();
      await page.getByText("Private", { exact: true }).waitFor();
      await page.getByRole("button", { name: "Members" }).click();
      const dialog = page.getByRole("dialog", { name: `Members of #${room}` });
      await dialog.waitFor();
      for (const who of [bob, carol]) {
        await dialog.getByLabel("Add a member").fill(who.username);
        await dialog.getByLabel("Add a member").press("Enter");
        await dialog.getByText(`@${who.username} can now see #${room}.`).waitFor();
        await dialog.getByText(`@${who.username}`, { exact: true }).waitFor();
      }
      // Adding again says so, in the field's error.
      await dialog.getByLabel("Add a member").fill(bob.username);
      await dialog.getByLabel("Add a member").press("Enter");
      await dialog.getByText(`@${bob.username} is already a member of #${room}.`).waitFor();
      assert.equal(await dialog.getByLabel("Add a member").getAttribute("aria-invalid"), "true");

      // Bob, a plain member: sees everyone, manages nothing.
      await bobPage.goto(`${server.url}/?room=${room}`);
      await waitForState(bobPage, "connected");
      await bobPage.getByRole("button", { name: "Members" }).click();
      const bobDialog = bobPage.getByRole("dialog", { name: `Members of #${room}` });
      for (const handle of [adminPage.name, bob.username, carol.username]) {
        await bobDialog.getByText(new RegExp(`@${handle}`)).waitFor();
      }
      assert.equal(await bobDialog.getByRole("button", { name: /Remove/ }).count(), 0, "no Remove for a member");
      assert.equal(await bobDialog.getByLabel("Add a member").isVisible(), false, "no Add for a member");
      assert.equal(await bobDialog.getByLabel("Topic").isVisible(), false, "no topic editing for a member");
      await bobDialog.getByRole("button", { name: "Leave this room" }).waitFor();
      await bobPage.keyboard.press("Escape");
      await eventually(async () => assert.equal(await bobDialog.count(), 0));
      // In a room of his own (he is no admin) Bob may add and edit the topic.
      const own = `bobs-${Math.random().toString(36).slice(2, 8)}`;
      await bobPage.getByLabel("New private room").fill(own);
      await bobPage.getByLabel("New private room").press("Enter");
      await bobPage.getByRole("heading", { name: own }).waitFor();
      await waitForState(bobPage, "connected");
      await bobPage.getByRole("button", { name: "Members" }).click();
      const ownDialog = bobPage.getByRole("dialog", { name: `Members of #${own}` });
      await ownDialog.getByLabel("Add a member").waitFor({ state: "visible" });
      await ownDialog.getByLabel("Topic").waitFor({ state: "visible" });
      await bobPage.keyboard.press("Escape");

      // The admin removes Carol from the list.
      await dialog.getByRole("button", { name: `Remove Carol (@${carol.username})` }).click();
      await dialog.getByText(`@${carol.username} is no longer a member of #${room}.`).waitFor();
      await eventually(async () => assert.equal(await dialog.getByText(`@${carol.username}`, { exact: true }).count(), 0));
      // The owner cannot leave: said in a sentence.
      await dialog.getByRole("button", { name: "Leave this room" }).click();
      await dialog.getByText(`You own #${room}, so you cannot leave it.`).waitFor();
    });
  });
});

test("3. two people with one display name: each message shows whose it is, not merged, coloured by account", { skip: REMOTE !== null && "needs its own server" }, async () => {
  await withServer("names", async (server) => {
    const admin = await account(server, "Admin");
    const sam1 = await account(server, "Sam");
    const sam2 = await account(server, "Sam");
    await withPeople(["viewer"], async (viewer) => {
      const page = await viewer.open();
      const viewerName = await signUp(page, server, "Viewer");
      const room = await privateRoom(admin, [sam1, sam2, { username: viewerName }]);
      await sam1.post(room, "first Sam here");
      await sam2.post(room, "second Sam here");
      await sam2.post(room, "second Sam again");
      await page.goto(`${server.url}/?room=${room}`);
      await page.getByRole("log").getByText("second Sam again").waitFor();
      const items = page.locator("#messages .msg[data-seq]");
      const [one, two, three] = [items.nth(0), items.nth(1), items.nth(2)];
      // The second Sam's first message starts a new header: not a follow-on of the first Sam.
      assert.ok(await two.locator(".msg-author").isVisible(), "a header of its own");
      await one.getByText(`@${sam1.username}`).waitFor({ state: "visible" });
      await two.getByText(`@${sam2.username}`).waitFor({ state: "visible" });
      // A follow-on of the same account still groups.
      assert.match(await three.getAttribute("class"), /msg--continued/);
      const hueOf = (id) => {
        let hash = 0;
        for (const ch of `id:${id}`) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
        return `hue-${hash % 8}`;
      };
      assert.match(await one.getAttribute("class"), new RegExp(hueOf(sam1.id)));
      assert.match(await two.getAttribute("class"), new RegExp(hueOf(sam2.id)));
    });
  });
});

test("4. Sign in and Create account are separate; rules are checked before sending; errors sit beside their field", async () => {
  await withServer("forms", async (server) => {
    await withPeople(["newcomer"], async (newcomer) => {
      const page = await newcomer.open(`${server.url}/`);
      let posts = 0;
      page.on("request", (request) => {
        if (request.method() === "POST") posts += 1;
      });
      const form = page.locator("#auth-form");
      await page.getByRole("heading", { name: "Sign in" }).waitFor();
      assert.equal(await form.getByRole("textbox", { name: "Display name" }).count(), 0, "signing in asks no display name");
      await form.getByRole("button", { name: "Create an account" }).click();
      await page.getByRole("heading", { name: "Create account" }).waitFor();
      const user = form.getByLabel("Username");
      const password = form.getByLabel("Password", { exact: true });
      const display = form.getByLabel("Display name");

      // Checked here, before sending: beside the field, marked invalid, focused.
      await user.fill("Ad");
      await password.fill("short");
      await display.fill("x".repeat(65));
      await password.press("Enter");
      await form.getByText("Usernames are lower case: use only a–z, 0–9, “.”, “_” and “-”.").waitFor();
      await form.getByText("A password has at least 10 characters (this one has 5).").waitFor();
      await form.getByText("A display name is at most 64 characters (this one is 65).").waitFor();
      for (const [field, id] of [[user, "auth-username-error"], [password, "auth-password-error"], [display, "auth-display-name-error"]]) {
        assert.equal(await field.getAttribute("aria-invalid"), "true");
        assert.match(await field.getAttribute("aria-describedby"), new RegExp(id));
      }
      assert.ok(await user.evaluate((el) => el === document.activeElement), "focus on the first invalid field");
      assert.equal(posts, 0, "nothing sent");
      // Typing clears a field's error.
      await user.fill("ada-lovelace");
      assert.equal(await user.getAttribute("aria-invalid"), "false");

      // A newcomer who pressed Enter with all three fields filled gets an account.
      await password.fill(PASSWORD);
      await display.fill("Ada");
      await display.press("Enter");
      await waitForState(page, "connected");
      assert.equal(await page.locator("#me-name").textContent(), "Ada");

      // Signing out is news, not an error.
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.locator("#signout-confirm").click();
      const info = page.getByRole("status").getByText("You are signed out.");
      await info.waitFor();
      assert.equal(await page.getByRole("alert").filter({ hasText: "You are signed out." }).count(), 0);
      const [infoColour, errorColour] = await page.evaluate(() => [
        getComputedStyle(document.getElementById("auth-info")).color,
        getComputedStyle(document.getElementById("auth-error")).color,
      ]);
      assert.notEqual(infoColour, errorColour, "information is not styled as an error");

      // A wrong password: a sentence beside it, the password cleared and focused.
      await form.getByLabel("Username").fill("ada-lovelace");
      await form.getByLabel("Password", { exact: true }).fill("not the password");
      await form.getByLabel("Password", { exact: true }).press("Enter");
      await form.getByText("That username and password do not match an account.").waitFor();
      const pw = form.getByLabel("Password", { exact: true });
      assert.equal(await pw.inputValue(), "");
      assert.equal(await pw.getAttribute("aria-invalid"), "true");
      assert.ok(await pw.evaluate((el) => el === document.activeElement));
      // A taken username, when creating: beside the username.
      await form.getByRole("button", { name: "Create an account" }).click();
      await form.getByLabel("Username").fill("ada-lovelace");
      await form.getByLabel("Password", { exact: true }).fill(PASSWORD);
      await form.getByLabel("Password", { exact: true }).press("Enter");
      await page.locator("#auth-username-error").getByText("That username is taken: choose another one.").waitFor();
    });
  });
});

test("5. a send made while the server was away goes by itself once it is back; the state says Reconnecting, not Offline", { skip: REMOTE !== null && "needs a local server to restart" }, async () => {
  await withServer("resend", async (server) => {
    await withPeople(["ada"], async (ada) => {
      const page = await ada.open();
      await signUp(page, server, "Ada", "/?room=general");
      await waitForState(page, "connected");
      await server.stop();
      await waitForState(page, "reconnecting");
      const box = page.getByRole("textbox", { name: "Message" });
      await box.fill("typed while the server was away");
      await box.press("Enter");
      await page.getByText(/Not sent yet: the server could not be reached/).waitFor();
      // The old page said "Offline" after about 6 s: the browser is online all along.
      await page.waitForTimeout(8000);
      assert.equal(await page.locator("#connection").getAttribute("data-state"), "reconnecting");
      await page.getByRole("status").getByText("Reconnecting…").waitFor();
      await server.start();
      await waitForState(page, "connected");
      // No click: the same client_id goes again, stored once.
      await page.locator('#messages .msg[data-seq] .msg-text:text-is("typed while the server was away")').waitFor();
      await eventually(async () => assert.equal(await page.locator("#messages .msg--pending").count(), 0));
      assert.equal((await shownTexts(page)).filter((t) => t === "typed while the server was away").length, 1);
    });
  });
});

test("6. rooms created, opened to you or closed to you appear and disappear without a reload", { skip: REMOTE !== null && "needs its own server" }, async () => {
  await withServer("live-rooms", async (server) => {
    const admin = await account(server, "Admin");
    await withPeople(["bob"], async (bobP) => {
      const page = await bobP.open();
      const bob = await signUp(page, server, "Bob");
      await waitForState(page, "connected");
      const loaded = page.url();
      const room = await privateRoom(admin, [{ username: bob }]);
      // A room Bob creates on another device (the API, not this page) is his: joined.
      const elsewhere = await page.evaluate(async () => (await fetch("/api/v1/rooms", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: "announcements", visibility: "public" }) })).status);
      assert.equal(elsewhere, 201);
      // Well before the old page's minute.
      for (const name of [room, "announcements"]) {
        await page.locator(`#room-list a[data-room="${name}"]`).waitFor({ timeout: 20_000 });
      }
      assert.equal((await admin.call("DELETE", `/api/v1/rooms/${room}/members/${bob}`)).status, 204);
      await eventually(async () => assert.equal(await page.locator(`#room-list a[data-room="${room}"]`).count(), 0), { timeout: 20_000 });
      assert.equal(page.url(), loaded, "no reload");
    });
  });
});

test("7. room forms tidy #Random to random, show errors one way, clear stale ones, and a joined room stays listed", { skip: REMOTE !== null && "needs its own server" }, async () => {
  await withServer("room-forms", async (server) => {
    await withPeople(["ada"], async (ada) => {
      const page = await ada.open();
      await signUp(page, server, "Ada");
      await waitForState(page, "connected");
      const join = page.getByLabel("Join or create a room");
      await join.fill("#Random");
      await join.press("Enter");
      await eventually(async () => assert.equal(new URL(page.url()).searchParams.get("room"), "random"));
      await page.getByRole("heading", { name: "random" }).waitFor();
      await waitForState(page, "connected");
      // Nobody posted, and it stays in the sidebar after leaving it.
      await page.getByRole("link", { name: "general", exact: true }).click();
      await page.getByRole("heading", { name: "general" }).waitFor();
      await page.locator('#room-list a[data-room="random"]').waitFor();

      // A refused name in either form: the same error style, beside the field; typing clears it.
      const priv = page.getByLabel("New private room");
      await priv.fill("general");
      await priv.press("Enter");
      const privError = page.locator("#private-help");
      await privError.getByText("A room named #general exists already: choose another name.").waitFor();
      await join.fill("not a room!");
      await join.press("Enter");
      const joinError = page.locator("#join-help");
      await joinError.getByText(/Room names are 1–64 characters/).waitFor();
      const colours = await page.evaluate(() =>
        ["private-help", "join-help"].map((id) => getComputedStyle(document.getElementById(id)).color),
      );
      assert.equal(colours[0], colours[1], "one colour for form errors");
      assert.equal(await priv.getAttribute("aria-invalid"), "true");
      await priv.fill("g");
      assert.equal(await privError.getByText(/exists already/).count(), 0, "no stale error");
      // `#Random` typed in the URL is tidied too.
      await page.goto(`${server.url}/?room=%23Random`);
      await page.getByRole("heading", { name: "random" }).waitFor();
    });
  });
});

test("8. phone: the menu opens on its first room, keeps Tab inside, Sign out asks first; Enter is a new line on touch", { skip: REMOTE !== null && "needs its own server" }, async () => {
  await withServer("phone", async (server) => {
    await withPeople(
      ["kim"],
      async (kim) => {
        const page = await kim.open();
        await signUp(page, server, "Kim");
        await waitForState(page, "connected");
        const menu = page.getByRole("button", { name: "Rooms and settings" });
        await menu.focus();
        await page.keyboard.press("Enter");
        await eventually(async () =>
          assert.equal(await page.evaluate(() => document.activeElement?.dataset.room ?? document.activeElement?.id), "general"),
        );
        // Tab walks round the open menu, never into the page behind it.
        for (let i = 0; i < 25; i += 1) {
          await page.keyboard.press("Tab");
          const inside = await page.evaluate(
            () => document.getElementById("sidebar").contains(document.activeElement) || document.activeElement?.id === "menu-button",
          );
          assert.ok(inside, `Tab ${i + 1} stays in the menu`);
        }
        for (let i = 0; i < 25; i += 1) {
          await page.keyboard.press("Shift+Tab");
          const inside = await page.evaluate(
            () => document.getElementById("sidebar").contains(document.activeElement) || document.activeElement?.id === "menu-button",
          );
          assert.ok(inside, `Shift+Tab ${i + 1} stays in the menu`);
        }
        // Sign out asks first; Cancel keeps you in.
        await page.getByRole("button", { name: "Sign out" }).focus();
        await page.keyboard.press("Enter");
        const confirm = page.getByRole("dialog", { name: "Sign out of Palaver?" });
        await confirm.waitFor();
        await page.keyboard.press("Enter"); // focus is on Cancel
        await eventually(async () => assert.equal(await confirm.count(), 0));
        assert.equal(await page.evaluate(async () => (await fetch("/api/v1/me")).status), 200, "still signed in");
        await page.keyboard.press("Escape");

        // On a touch screen Enter is a new line, the Send button sends; the hint says so.
        const box = page.getByRole("textbox", { name: "Message" });
        await box.click();
        await page.keyboard.type("line one");
        await page.keyboard.press("Enter");
        await page.keyboard.type("line two");
        assert.equal(await box.inputValue(), "line one\nline two");
        await page.getByText("Enter for a new line · Send to send").waitFor();
        await page.getByRole("button", { name: "Send" }).click();
        await eventually(async () => assert.ok((await shownTexts(page)).includes("line one\nline two")));
      },
      { all: PHONE },
    );
  });
});

test("9. links, a safe Markdown subset and the time of every message on hover and focus", { skip: REMOTE !== null && "needs its own server" }, async () => {
  await withServer("markdown", async (server) => {
    const bob = await account(server, "Bob");
    await bob.post("general", "see https://example.com/a?b=1. it has **bold**, _italic_ and `code`");
    await bob.post("general", "> a quote\nreply below\n```\nfn main() {}\n```");
    await bob.post("general", "**<img src=x onerror=alert(1)>** and `<b>not bold</b>`");
    await withPeople(["ada"], async (ada) => {
      const page = await ada.open();
      await signUp(page, server, "Ada");
      const log = page.getByRole("log");
      await log.getByText("not bold", { exact: false }).waitFor();
      const link = log.getByRole("link", { name: "https://example.com/a?b=1" });
      assert.equal(await link.getAttribute("href"), "https://example.com/a?b=1");
      assert.equal(await link.getAttribute("target"), "_blank");
      assert.equal(await link.getAttribute("rel"), "noopener noreferrer");
      assert.equal(await log.locator("strong").first().textContent(), "bold");
      assert.equal(await log.locator("em").first().textContent(), "italic");
      assert.equal(await log.locator(".msg-text > code").first().textContent(), "code");
      assert.equal(await log.locator("blockquote").textContent(), "a quote");
      assert.equal(await log.locator("pre code").textContent(), "fn main() {}");
      // Markup inside formatting is still text.
      assert.equal(await log.locator("strong").nth(1).textContent(), "<img src=x onerror=alert(1)>");
      assert.equal(await log.locator("#messages img, #messages b").count(), 0);

      // Follow-on messages (same person, within 5 minutes) show their time on hover and on focus.
      const items = page.locator("#messages .msg[data-seq]");
      const second = items.nth(1);
      assert.match(await second.getAttribute("class"), /msg--continued/);
      const meta = second.locator(".msg-meta");
      const width = () => meta.evaluate((el) => el.getBoundingClientRect().width);
      assert.ok((await width()) <= 1, "hidden at rest");
      await second.hover();
      await eventually(async () => assert.ok((await width()) > 10, "shown on hover"));
      await page.mouse.move(0, 0);
      // Keyboard: the log, then Up to a message.
      await page.locator("#log").focus();
      await page.keyboard.press("Home");
      await page.keyboard.press("ArrowDown");
      await eventually(async () => assert.ok(await second.evaluate((el) => el === document.activeElement)));
      await eventually(async () => assert.ok((await width()) > 10, "shown on focus"));
    });
  });
});

test("10. the sign-in page's first Tab stop is its form; the log's focus ring is drawn inside it", async () => {
  await withServer("tabs", async (server) => {
    await withPeople(["ada"], async (ada) => {
      const page = await ada.open(`${server.url}/`);
      await page.getByRole("textbox", { name: "Username" }).waitFor();
      // The first element Tab reaches from the top of the page.
      const first = await page.evaluate(() => {
        const candidates = document.querySelectorAll("a[href], button, input, textarea, select, [tabindex]");
        const stop = [...candidates].find((el) => el.tabIndex >= 0 && !el.disabled && el.checkVisibility());
        return stop?.id || stop?.textContent;
      });
      assert.equal(first, "auth-username");
      // And with the keyboard: nothing comes before the username field (no
      // "Skip to the message box" of the hidden chat page), and Tab goes on
      // through the form.
      assert.equal(await page.evaluate(() => document.activeElement?.id), "auth-username", "the form has the focus on arrival");
      await page.keyboard.press("Shift+Tab");
      const before = await page.evaluate(() => ({ tag: document.activeElement?.tagName, text: document.activeElement?.textContent?.trim().slice(0, 40) }));
      assert.equal(before.tag, "BODY", `no Tab stop before the username field (got ${JSON.stringify(before)})`);
      await page.getByRole("textbox", { name: "Username" }).focus();
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate(() => document.activeElement?.id), "auth-password");
      await signUp(page, server, "Ada");
      await waitForState(page, "connected");
      // Focused from the keyboard (Tab), so :focus-visible applies as it does for people.
      await page.getByRole("textbox", { name: "Message" }).waitFor();
      await page.evaluate(() => document.activeElement?.blur());
      let guard = 0;
      while (!(await page.locator("#log").evaluate((el) => el === document.activeElement)) && guard < 60) {
        await page.keyboard.press("Tab");
        guard += 1;
      }
      assert.ok(guard < 60, "Tab reaches the log");
      const ring = await page.locator("#log").evaluate((el) => {
        const style = getComputedStyle(el);
        return {
          visible: el.matches(":focus-visible"),
          style: style.outlineStyle,
          width: Number.parseFloat(style.outlineWidth),
          offset: Number.parseFloat(style.outlineOffset),
        };
      });
      assert.ok(ring.visible, "the log shows a keyboard focus ring");
      assert.notEqual(ring.style, "none", "the ring is drawn");
      assert.ok(ring.width > 0, `the ring has a width (${ring.width})`);
      // Inside the scrolling box (its overflow would clip a ring drawn outside it).
      assert.ok(ring.offset + ring.width <= 0, `the ring sits inside the log (offset ${ring.offset}, width ${ring.width})`);
    });
  });
});

test("screenshots: the member list, the profile and a private room's refusal", { skip: REMOTE !== null && "needs its own server" }, async () => {
  await withServer("people-screens", async (server) => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await withPeople(["grace", "visitor"], async (graceP, visitorP) => {
      const page = await graceP.open();
      const grace = await signUp(page, server, "Grace Hopper");
      const ada = await account(server, "Ada");
      const linus = await account(server, "Linus");
      const room = "release";
      await page.getByLabel("New private room").fill(room);
      await page.getByLabel("New private room").press("Enter");
      await waitForState(page, "connected");
      for (const who of [ada, linus]) {
        assert.equal((await ada.call("GET", "/api/v1/me")).status, 200);
        await page.evaluate(async ([r, u]) => fetch(`/api/v1/rooms/${r}/members/${u}`, { method: "PUT" }), [room, who.username]);
      }
      await ada.post(room, "The **release notes** are in `docs/release.md`: https://example.com/notes");
      await linus.post(room, "> Did the migration run cleanly?\nYes: 14 ms on the staging copy.");
      await page.getByRole("log").getByText("14 ms on the staging copy").waitFor();
      await page.getByRole("button", { name: "Members" }).click();
      await page.getByRole("dialog").getByText(`@${linus.username}`).waitFor();
      await page.screenshot({ path: path.join(SCREENSHOTS, "members.png") });
      await page.keyboard.press("Escape");

      await page.getByRole("button", { name: /Grace Hopper/ }).click();
      await page.getByRole("dialog", { name: "Your profile" }).waitFor();
      assert.equal(await page.getByRole("dialog").getByLabel("Display name").inputValue(), "Grace Hopper");
      await page.getByLabel("New password").fill("short");
      await page.getByRole("button", { name: "Change password" }).click();
      await page.getByText("A password has at least 10 characters (this one has 5).").waitFor();
      assert.ok(grace);
      await page.screenshot({ path: path.join(SCREENSHOTS, "profile.png") });

      const visitor = await visitorP.open();
      await signUp(visitor, server, "Visitor", `/?room=${room}`);
      await visitor.getByRole("heading", { name: REFUSAL }).waitFor();
      await visitor.screenshot({ path: path.join(SCREENSHOTS, "private-room.png") });
    });
  });
});

test("axe-core: no violations on any view (sign-in, create account with errors, room, members, browse, profile, sign-out, refusal, phone menu)", { skip: REMOTE !== null && "needs its own server" }, async () => {
  await withServer("axe", async (server) => {
    const found = {};
    const check = async (page, view) => {
      const violations = await axeViolations(page);
      if (violations.length > 0) found[view] = violations;
    };
    await withPeople(["ada", "visitor"], async (adaP, visitorP) => {
      const page = await adaP.open(`${server.url}/`);
      await page.getByRole("heading", { name: "Sign in" }).waitFor();
      await check(page, "sign in");
      await page.getByRole("button", { name: "Create an account" }).click();
      await page.getByLabel("Password", { exact: true }).fill("short");
      await page.getByLabel("Password", { exact: true }).press("Enter");
      await page.locator("#auth-username-error").waitFor();
      await check(page, "create account, with errors");

      await signUp(page, server, "Ada");
      await waitForState(page, "connected");
      const bob = await account(server, "Bob");
      await bob.post("general", "**bold**, `code`, https://example.com and\n> a quote\n```\ncode block\n```");
      await page.getByRole("log").getByText("code block").waitFor();
      await check(page, "room with formatted messages");
      const room = `axe-${Math.random().toString(36).slice(2, 8)}`;
      await page.getByLabel("New private room").fill(room);
      await page.getByLabel("New private room").press("Enter");
      await waitForState(page, "connected");
      await page.getByRole("button", { name: "Members" }).click();
      await page.getByRole("dialog").getByText("(you)", { exact: false }).waitFor();
      await check(page, "members");
      await page.keyboard.press("Escape");
      await page.getByRole("button", { name: "Browse rooms" }).click();
      await page.getByRole("dialog", { name: "Browse rooms" }).waitFor();
      await check(page, "browse rooms");
      await page.keyboard.press("Escape");
      await page.getByRole("button", { name: /Ada/ }).click();
      await page.getByRole("dialog", { name: "Your profile" }).getByRole("button", { name: "Change password" }).click();
      await page.locator("#current-password-error").waitFor();
      await check(page, "profile, with errors");
      await page.keyboard.press("Escape");
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByRole("dialog", { name: "Sign out of Palaver?" }).waitFor();
      await check(page, "sign-out confirmation");
      await page.keyboard.press("Escape");

      const visitor = await visitorP.open();
      await signUp(visitor, server, "Visitor", `/?room=${room}`);
      await visitor.getByRole("heading", { name: REFUSAL }).waitFor();
      await check(visitor, "private-room refusal");
      await visitor.setViewportSize({ width: 375, height: 740 });
      await visitor.getByRole("button", { name: "Rooms and settings" }).click();
      await visitor.locator("#room-list a").first().waitFor();
      await check(visitor, "phone menu");
    });
    assert.deepEqual(found, {}, "axe-core violations by view");
  });
});
