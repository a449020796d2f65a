// The web UI end to end: Debian's Chromium (headless, via playwright-core)
// against `palaver serve` processes started here. Run by scripts/test-web.sh.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import {
  PASSWORD,
  REMOTE,
  SCREENSHOTS,
  Server,
  eventually,
  joinAs,
  keepEvidence,
  launchBrowser,
  openPage,
  shownSeqs,
  shownTexts,
  username,
  waitForState,
} from "./harness.mjs";

const DESKTOP = { width: 1280, height: 800 };
const MOBILE = { width: 375, height: 740 };

let browser;
let server;

before(async () => {
  browser = await launchBrowser();
  server = await Server.create("main");
});

after(async () => {
  await browser?.close();
  await server?.dispose();
});

/**
 * Runs `body` with a fresh browser context; on failure keeps a screenshot of
 * each page, and in any case checks no page hit a script error, a CSP
 * violation or a dialog.
 */
async function withContext(name, options, body) {
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-US", ...options });
  const pages = [];
  const open = async (url) => {
    const page = await openPage(context, url);
    pages.push(page);
    return page;
  };
  try {
    await body({ context, open });
    for (const page of pages) {
      assert.deepEqual(page.problems, [], "no script error or CSP violation");
      assert.deepEqual(page.dialogs, [], "no dialog opened");
    }
  } catch (err) {
    await Promise.all(pages.map((page, i) => keepEvidence(page, `${name}-${i}`)));
    throw err;
  } finally {
    await context.close();
  }
}

test("the entry page revalidates and its versioned assets are immutable", async () => {
  const response = await fetch(`${server.url}/`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("cache-control"), "no-cache");
  assert.match(response.headers.get("content-security-policy"), /script-src 'self'/);
  const html = await response.text();
  assert.doesNotMatch(html, /<script>|<style|style=/, "no inline script or style");
  const scripts = [...html.matchAll(/src="(\/assets\/v-[0-9a-f]+\/app\.js)"/g)].map((m) => m[1]);
  assert.equal(scripts.length, 1, "one versioned entry module");
  const asset = await fetch(`${server.url}${scripts[0]}`);
  assert.equal(asset.status, 200);
  assert.match(asset.headers.get("cache-control"), /immutable/);
  assert.match(asset.headers.get("content-type"), /javascript/);
});

test("/ asks a signed-out visitor to sign in, then opens #general with labelled controls, under the CSP", async () => {
  await withContext("general", {}, async ({ open }) => {
    const page = await open(`${server.url}/`);
    // Signed out: the sign-in form, with its labelled fields, focused first;
    // creating an account is a mode of its own.
    await page.getByRole("textbox", { name: "Username" }).waitFor();
    await page.getByLabel("Password", { exact: true }).waitFor();
    assert.equal(await page.getByRole("textbox", { name: "Display name" }).count(), 0, "no display name to sign in");
    await page.getByRole("button", { name: "Sign in", exact: true }).waitFor();
    await page.getByRole("button", { name: "Create an account" }).waitFor();
    await eventually(async () =>
      assert.equal(await page.evaluate(() => document.activeElement?.id), "auth-username"),
    );
    assert.equal(await page.getByRole("log").count(), 0, "no messages before signing in");
    // A wrong password is refused in place, beside the password field.
    await page.getByLabel("Username").fill(username("nobody"));
    await page.getByLabel("Password", { exact: true }).fill("not the password");
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.locator("#auth-password-error").getByText("That username and password do not match an account.").waitFor();

    await joinAs(page, "Ada");
    await assert.doesNotReject(page.getByRole("heading", { name: "general" }).waitFor());
    await page.getByRole("log").waitFor();
    await eventually(async () =>
      assert.equal(await page.evaluate(() => document.activeElement?.id), "composer-text"),
    );
    await page.getByText("@", { exact: false }).first().waitFor();
    assert.equal(await page.locator("#me-name").textContent(), "Ada");
    await page.getByRole("link", { name: "general" }).waitFor();
    assert.equal(await page.getByRole("link", { name: "general" }).getAttribute("aria-current"), "page");
  });
});

test("two people in one room see each other live; other rooms stay out", async () => {
  await withContext("live-ada", {}, async ({ open: openA }) => {
    await withContext("live-bob", {}, async ({ open: openB }) => {
      await server.post("lobby", "carol", "welcome to the lobby");
      const ada = await openA(`${server.url}/?room=lobby`);
      const bob = await openB(`${server.url}/?room=lobby`);
      await joinAs(ada, "ada");
      await joinAs(bob, "bob");

      const adaBox = ada.getByRole("textbox", { name: "Message" });
      await adaBox.fill("Hello from Ada");
      await adaBox.press("Enter");
      await bob.getByRole("log").getByText("Hello from Ada").waitFor();
      // Ada's own copy went from pending to stored, once.
      await ada.locator('#messages .msg[data-seq] .msg-text:text-is("Hello from Ada")').waitFor();
      await eventually(async () => assert.equal(await ada.locator("#messages .msg--pending").count(), 0));

      // Shift+Enter is a new line; Enter sends.
      const bobBox = bob.getByRole("textbox", { name: "Message" });
      await bobBox.click();
      await bob.keyboard.type("line one");
      await bob.keyboard.press("Shift+Enter");
      await bob.keyboard.type("line two");
      await bob.keyboard.press("Enter");
      await eventually(async () => assert.ok((await shownTexts(ada)).includes("line one\nline two")));
      assert.equal(await bobBox.inputValue(), "", "the composer is cleared after sending");

      // A message in another room does not appear; one sent after it here does.
      await server.post("elsewhere", "carol", "not for the lobby");
      await server.post("lobby", "carol", "marker after the other room");
      for (const page of [ada, bob]) {
        await page.getByRole("log").getByText("marker after the other room").waitFor();
        assert.ok(!(await shownTexts(page)).includes("not for the lobby"));
      }
      assert.deepEqual(await shownTexts(ada), await shownTexts(bob), "both see the same conversation");

      // Joining another room by name: an invalid name is refused in place.
      await ada.getByLabel("Join or create a room").fill("Not A Room");
      await ada.getByLabel("Join or create a room").press("Enter");
      await ada.getByText(/Room names are 1–64 characters/).waitFor();
      assert.equal(new URL(ada.url()).searchParams.get("room"), "lobby");
      await ada.getByLabel("Join or create a room").fill("elsewhere");
      await ada.getByRole("button", { name: "Join" }).click();
      await eventually(async () => assert.equal(new URL(ada.url()).searchParams.get("room"), "elsewhere"));
      await ada.getByRole("log").getByText("not for the lobby").waitFor();
      await waitForState(ada, "connected");
      await adaBox.fill("only in elsewhere");
      await adaBox.press("Enter");
      await ada.locator('#messages .msg[data-seq] .msg-text:text-is("only in elsewhere")').waitFor();
      await server.post("lobby", "carol", "second marker");
      await bob.getByRole("log").getByText("second marker").waitFor();
      assert.ok(!(await shownTexts(bob)).includes("only in elsewhere"));

      // Back returns to the lobby, from the URL.
      await ada.goBack();
      await ada.getByRole("log").getByText("second marker").waitFor();
      assert.equal(await ada.locator("#room-name").textContent(), "lobby");
    });
  });
});

test("scrolling up loads 120 messages of history in order, without jumping", async () => {
  const texts = Array.from({ length: 120 }, (_, i) => `history ${String(i + 1).padStart(3, "0")}`);
  for (const [i, text] of texts.entries()) await server.post("history", i % 7 === 0 ? "bob" : "ada", text);

  await withContext("history", {}, async ({ open }) => {
    const page = await open(`${server.url}/?room=history`);
    await joinAs(page, "reader");
    const log = page.getByRole("log");
    await log.getByText("history 120").waitFor();
    assert.equal((await shownSeqs(page)).length, 50, "the newest page first");
    const atBottom = await page.locator("#log").evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
    assert.ok(atBottom < 5, "opens at the newest message");

    for (const expected of [100, 120]) {
      const oldest = (await shownSeqs(page))[0];
      const oldestText = page.locator(`.msg[data-seq="${oldest}"] .msg-text`);
      // Scroll to the top and note where the text of the oldest message shown sits.
      const before = await page.locator("#log").evaluate((el, seq) => {
        el.scrollTop = 0;
        return document.querySelector(`.msg[data-seq="${seq}"] .msg-text`).getBoundingClientRect().top;
      }, oldest);
      await eventually(async () => assert.equal((await shownSeqs(page)).length, expected));
      await eventually(async () => assert.equal(await page.locator("#log").getAttribute("aria-busy"), null));
      const afterTop = await oldestText.evaluate((el) => el.getBoundingClientRect().top);
      assert.ok(Math.abs(afterTop - before) <= 2, `no jump: ${before} -> ${afterTop}`);
    }

    assert.deepEqual(await shownTexts(page), texts, "every message, oldest first");
    assert.deepEqual(await shownSeqs(page), texts.map((_, i) => i + 1));
    await page.getByText("This is the beginning of #history.").waitFor();
    assert.equal(await page.getByRole("button", { name: "Load older messages" }).count(), 0);
  });
});

test("markup in a message is shown as text and never runs", async () => {
  const attack = "<img src=x onerror=alert(1)>";
  await server.post("xss", "eve", "the xss room");
  await withContext("xss", {}, async ({ open }) => {
    const page = await open(`${server.url}/?room=xss`);
    await joinAs(page, "<b>mallory</b>");
    const box = page.getByRole("textbox", { name: "Message" });
    await box.fill(attack);
    await box.press("Enter");
    await server.post("xss", "<script>alert(2)</script>", "<script>alert(3)</script><svg onload=alert(4)>");
    await server.post("xss", "eve", "after the markup");
    await page.getByRole("log").getByText("after the markup").waitFor();

    const texts = await shownTexts(page);
    assert.ok(texts.includes(attack), "the markup is shown literally");
    assert.ok(texts.includes("<script>alert(3)</script><svg onload=alert(4)>"));
    await page.getByRole("log").getByText("<b>mallory</b>").first().waitFor();
    assert.equal(await page.locator("#messages img, #messages script, #messages svg, #messages b").count(), 0);
    // Give an injected handler every chance to fire: the page still answers.
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 250)));
    assert.deepEqual(page.dialogs, []);
  });
});

test("after a server restart the page resumes and shows every message exactly once", { skip: REMOTE !== null && "needs a local server to restart" }, async () => {
  const own = await Server.create("restart");
  try {
    await own.post("ops", "ada", "before the restart 1");
    await own.post("ops", "ada", "before the restart 2");
    await withContext("restart", {}, async ({ context, open }) => {
      const page = await open(`${own.url}/?room=ops`);
      await joinAs(page, "bob");
      await page.getByRole("log").getByText("before the restart 2").waitFor();

      await own.stop();
      await page.locator('#connection:not([data-state="connected"])').waitFor();
      await page.getByRole("status").getByText(/Reconnecting|Offline/).waitFor();

      // A send while the server is down waits visibly, and goes by itself
      // once the stream is back.
      const box = page.getByRole("textbox", { name: "Message" });
      await box.fill("typed while down");
      await box.press("Enter");
      await page.getByText(/Not sent yet: the server could not be reached/).waitFor();

      await own.start();
      const missed = ["missed 1", "missed 2", "missed 3"];
      for (const text of missed) await own.post("ops", "carol", text);
      await waitForState(page, "connected");
      await page.locator('#messages .msg[data-seq] .msg-text:text-is("typed while down")').waitFor();

      // Offline: the state says so, and coming back online resumes from the last seq.
      await context.setOffline(true);
      await waitForState(page, "offline");
      const whileOffline = ["offline 1", "offline 2"];
      for (const text of whileOffline) await own.post("ops", "carol", text);
      await context.setOffline(false);
      await waitForState(page, "connected");

      // A send whose response is lost: pending until then, and the retry
      // (same client_id) is not a second copy.
      let release;
      const held = new Promise((resolve) => (release = resolve));
      await page.route("**/api/v1/rooms/ops/messages", async (route) => {
        if (route.request().method() !== "POST") return route.continue();
        await held;
        await route.fetch(); // the server stores it...
        await route.abort("connectionreset"); // ...and the page never hears back
      });
      await box.fill("response lost");
      await box.press("Enter");
      await page.locator("#messages .msg--pending").getByText("Sending…").waitFor();
      release();
      const stored = page.locator('#messages .msg[data-seq] .msg-text:text-is("response lost")');
      const retry = page.getByRole("button", { name: "Send now" });
      // The stream may deliver the stored copy before the failure shows.
      await eventually(async () => assert.ok((await stored.count()) + (await retry.count()) > 0));
      await page.unroute("**/api/v1/rooms/ops/messages");
      if ((await retry.count()) > 0) await retry.click();
      await stored.waitFor();
      await own.post("ops", "carol", "last one");

      const expected = [
        "before the restart 1",
        "before the restart 2",
        "typed while down",
        ...missed,
        ...whileOffline,
        "response lost",
        "last one",
      ];
      await eventually(async () => {
        const texts = await shownTexts(page);
        for (const text of expected) {
          assert.equal(texts.filter((t) => t === text).length, 1, `"${text}" shown exactly once`);
        }
        assert.equal(texts.length, expected.length);
      });
      const seqs = await shownSeqs(page);
      assert.deepEqual(seqs, seqs.map((_, i) => i + 1), "seqs gapless and in order");
      assert.equal(await page.locator("#messages .msg--pending").count(), 0);
    });
  } finally {
    await own.dispose();
  }
});

test("the composer shows limits before the server refuses; the session and the deep link are kept", async () => {
  await withContext("limits", {}, async ({ open }) => {
    const page = await open(`${server.url}/?room=limits`);
    const box = page.getByRole("textbox", { name: "Message" });

    // An over-long display name is refused at sign-up, beside the field, before sending.
    await server.post("limits", "carol", "the limits room");
    const form = page.locator("#auth-form");
    await form.getByRole("button", { name: "Create an account" }).click();
    await form.getByLabel("Username").fill(username("grace"));
    await form.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await form.getByLabel("Display name").fill("x".repeat(65));
    await form.getByRole("button", { name: "Create account", exact: true }).click();
    await page.locator("#auth-display-name-error").getByText("A display name is at most 64 characters (this one is 65).").waitFor();
    await form.getByLabel("Display name").fill("  grace  ");
    await form.getByRole("button", { name: "Create account", exact: true }).click();
    // The deep link survived signing in.
    await waitForState(page, "connected");
    assert.equal(await page.locator("#room-name").textContent(), "limits");
    let posts = 0;
    page.on("request", (request) => {
      if (request.method() === "POST") posts += 1;
    });
    await box.fill("who am I");
    await box.press("Enter");
    await page.locator('#messages .msg[data-seq] .msg-author:text-is("grace")').waitFor();

    // Over the length limit: counted, refused here, nothing sent.
    await box.fill("y".repeat(4001));
    await page.getByText("4,001 / 4,000: 1 too many").waitFor();
    assert.ok(await page.getByRole("button", { name: "Send" }).isDisabled());
    await box.press("Enter");
    assert.equal(posts, 1);
    assert.equal((await box.inputValue()).length, 4001, "the text is kept");

    // At the limit (after trimming): accepted.
    await box.fill(`  ${"z".repeat(4000)}  `);
    await page.getByText("4,000 / 4,000").waitFor();
    await box.press("Enter");
    await page.locator(`#messages .msg[data-seq] .msg-text:text-is("${"z".repeat(4000)}")`).waitFor();
    assert.equal(posts, 2);

    // Signed in across a reload: the session cookie; the composer is focused.
    await page.reload();
    await waitForState(page, "connected");
    assert.equal(await page.locator("#me-name").textContent(), "grace");
    await eventually(async () =>
      assert.equal(await page.evaluate(() => document.activeElement?.id), "composer-text"),
    );
    // Timestamps are in the viewer's local time.
    const time = page.locator("#messages .msg[data-seq] time").first();
    const iso = await time.getAttribute("datetime");
    const local = await page.evaluate(
      (at) => new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" }).format(new Date(at)),
      iso,
    );
    assert.equal(await time.textContent(), local);

    // An invalid room in the URL falls back to #general and says why.
    await page.goto(`${server.url}/?room=Not%20valid`);
    await page.getByRole("alert").getByText(/is not a valid room name/).waitFor();
    assert.equal(await page.locator("#room-name").textContent(), "general");
  });
});

test("keyboard only at 375 px: the drawer opens, closes and rooms are reachable", async () => {
  await server.post("lobby", "carol", "welcome to the lobby");
  await withContext("mobile-keyboard", { viewport: MOBILE }, async ({ open }) => {
    const page = await open(`${server.url}/?room=lobby`);
    // Signing up by keyboard alone: the username field has the focus; the
    // first Tab stop is not a skip link that does nothing here.
    const user = page.getByRole("textbox", { name: "Username" });
    await eventually(async () => assert.ok(await user.evaluate((el) => el === document.activeElement)));
    await page.keyboard.press("Tab"); // Password
    await page.keyboard.press("Tab"); // Sign in
    await page.keyboard.press("Tab"); // Create an account
    await page.keyboard.press("Enter");
    await eventually(async () => assert.ok(await user.evaluate((el) => el === document.activeElement)));
    await page.keyboard.type(username("kim"));
    await page.keyboard.press("Tab");
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press("Tab");
    await page.keyboard.type("kim");
    await page.keyboard.press("Enter");
    await waitForState(page, "connected");
    const menu = page.getByRole("button", { name: "Rooms and settings" });
    await eventually(async () => assert.equal(await menu.getAttribute("aria-expanded"), "false"));
    await eventually(async () =>
      assert.equal(await page.evaluate(() => document.activeElement?.id), "composer-text"),
    );
    await page.keyboard.type("from my phone");
    await page.keyboard.press("Enter");
    await page.locator('#messages .msg[data-seq] .msg-text:text-is("from my phone")').waitFor();

    await menu.focus();
    await page.keyboard.press("Enter");
    assert.equal(await menu.getAttribute("aria-expanded"), "true");
    await page.getByRole("link", { name: "general" }).focus();
    await page.keyboard.press("Enter");
    await eventually(async () => assert.equal(await page.locator("#room-name").textContent(), "general"));
    assert.equal(await menu.getAttribute("aria-expanded"), "false");
    await menu.focus();
    await page.keyboard.press("Enter");
    await page.keyboard.press("Escape");
    assert.equal(await menu.getAttribute("aria-expanded"), "false");

    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling at 375 px (${overflow} px too wide)`);
  });
});

test("screenshots of the desktop and mobile layouts", async () => {
  const own = await Server.create("screens");
  try {
    const conversation = [
      ["ada", "Morning! The new build is on staging."],
      ["ada", "Release notes are in the usual place."],
      ["grace", "Nice. Did the migration run cleanly?"],
      ["ada", "Yes: 14 ms on the staging copy, no locks held."],
      ["linus", "I'll watch the fan-out lag dashboard during the rollout."],
      ["grace", "Rolling out to production now:\n1. api\n2. gateway\n3. web"],
      ["linus", "Gateways reconnected; every client resumed from its last seq."],
    ];
    for (const [author, text] of conversation) await own.post("general", author, text);
    await own.post("ops", "linus", "pager is quiet");
    await own.post("random", "ada", "coffee?");
    fs.mkdirSync(SCREENSHOTS, { recursive: true });

    const shots = [
      ["desktop.png", { viewport: DESKTOP, colorScheme: "light" }],
      ["desktop-dark.png", { viewport: DESKTOP, colorScheme: "dark" }],
      ["mobile.png", { viewport: MOBILE, colorScheme: "light", deviceScaleFactor: 2, isMobile: true, hasTouch: true }],
    ];
    for (const [file, options] of shots) {
      await withContext(file, options, async ({ context, open }) => {
        const page = await open(`${own.url}/`);
        await joinAs(page, "grace");
        // The sidebar lists the rooms she is a member of: ada (the first
        // account, so an admin) adds her.
        const me = await page.evaluate(async () => (await (await fetch("/api/v1/me")).json()).user.username);
        for (const room of ["ops", "random"]) {
          const response = await fetch(`${own.url}/api/v1/rooms/${room}/members/${me}`, {
            method: "PUT",
            headers: { Cookie: await own.sessionFor("ada") },
          });
          assert.equal(response.status, 204, `add to ${room}`);
        }
        await page.reload();
        await page.getByRole("log").getByText("every client resumed").waitFor();
        await page.locator('a[data-room="random"]').waitFor({ state: "attached" });
        await page.getByRole("textbox", { name: "Message" }).fill("Thanks all, great rollout");
        await page.screenshot({ path: path.join(SCREENSHOTS, file) });
      });
    }
  } finally {
    await own.dispose();
  }
});

test("a private room: hidden from others until they are added, then live; sign-out ends the stream", async () => {
  const own = await Server.create("private");
  try {
    await withContext("private-owner", {}, async ({ open: openA }) => {
      await withContext("private-guest", {}, async ({ open: openB }) => {
        const owner = await openA(`${own.url}/`);
        await joinAs(owner, "Owner");
        if (REMOTE === null) {
          // The first account of a fresh server is its admin.
          const me = await owner.evaluate(async () => (await (await fetch("/api/v1/me")).json()).user);
          assert.equal(me.role, "admin");
        }
        const room = `secret-${Math.random().toString(36).slice(2, 8)}`;
        await owner.getByLabel("New private room").fill(room);
        await owner.getByLabel("New private room").press("Enter");
        await eventually(async () => assert.equal(new URL(owner.url()).searchParams.get("room"), room));
        await owner.getByRole("link", { name: `${room} (private)` }).waitFor();
        await waitForState(owner, "connected");
        const ownerBox = owner.getByRole("textbox", { name: "Message" });
        await ownerBox.fill("before the guest");
        await ownerBox.press("Enter");
        await owner.locator('#messages .msg[data-seq] .msg-text:text-is("before the guest")').waitFor();

        // The guest, signed up in another browser, follows a link to it: it
        // is not listed, and it says it cannot be read.
        const guest = await openB(`${own.url}/?room=${room}`);
        const guestName = await joinAs(guest, "Guest", { state: null });
        await guest.getByRole("heading", { name: "This room is private or does not exist" }).waitFor();
        assert.equal(await guest.locator("#room-name").textContent(), room, "the link survived sign-up");
        await guest.getByRole("link", { name: "general", exact: true }).waitFor();
        assert.equal(await guest.locator(`a[data-room="${room}"]`).count(), 0, "not listed");
        assert.ok(!(await shownTexts(guest)).includes("before the guest"));

        // Added by the owner, the guest reloads and sees new messages live.
        await owner.getByRole("button", { name: "Members" }).click();
        await owner.getByLabel("Add a member").fill(guestName);
        await owner.getByLabel("Add a member").press("Enter");
        await owner.getByText(`@${guestName} can now see #${room}.`).waitFor();
        await owner.getByRole("button", { name: "Close" }).click();
        await guest.reload();
        await waitForState(guest, "connected");
        await guest.getByRole("log").getByText("before the guest").waitFor();
        await guest.getByRole("link", { name: `${room} (private)` }).waitFor();
        await ownerBox.fill("after the guest joined");
        await ownerBox.press("Enter");
        await guest.getByRole("log").getByText("after the guest joined").waitFor();

        // Signing out (confirmed) ends the guest's stream and shows the sign-in form.
        await guest.getByRole("button", { name: "Sign out" }).click();
        await guest.locator("#signout-confirm").click();
        await guest.getByRole("button", { name: "Sign in", exact: true }).waitFor();
        await guest.getByRole("status").getByText("You are signed out.").waitFor();
        assert.equal(await guest.getByRole("log").isVisible(), false);
        const status = await guest.evaluate(async () => (await fetch("/api/v1/me")).status);
        assert.equal(status, 401, "the session is over on the server");
      });
    });
  } finally {
    await own.dispose();
  }
});
