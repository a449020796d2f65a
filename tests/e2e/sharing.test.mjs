// Issue 18's UI (DESIGN §5d, the UI names of §5e): direct messages between
// two people that a third cannot see, "Search messages" with highlighted
// results that jump to the message, and files attached by the button, by
// paste and as a PDF chip; axe-core on each new view.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import {
  REMOTE,
  SCREENSHOTS,
  Server,
  account,
  axeViolations,
  eventually,
  keepEvidence,
  launchBrowser,
  openPage,
  signUp,
  waitForState,
} from "./harness.mjs";

const DESKTOP = { width: 1280, height: 800 };
/** The upload limit of this file's server, so that a "too large" file is small. */
const MAX_FILE_BYTES = 300_000;
const REFUSAL = "This room is private or does not exist";

let browser;
let server;

before(async () => {
  browser = await launchBrowser();
  server = await Server.create("sharing", { args: ["--max-file-bytes", String(MAX_FILE_BYTES)] });
});

after(async () => {
  await browser?.close();
  await server?.dispose();
});

/** The stored message whose text is `text` (exactly). */
const message = (page, text) => page.locator("#messages article.msg--stored").filter({ has: page.locator(`.msg-text:text-is("${text}")`) });

/** Runs `body` with one page per person (`names`), each its own browser context; evidence kept on failure. */
async function withPages(names, body) {
  const contexts = [];
  const pages = [];
  let failed = true;
  try {
    for (const name of names) {
      const context = await browser.newContext({ viewport: DESKTOP, locale: "en-US" });
      contexts.push(context);
      pages.push(await openPage(context));
    }
    await body(...pages);
    failed = false;
  } finally {
    if (failed) for (const [i, page] of pages.entries()) await keepEvidence(page, `sharing-${names[i]}`);
    for (const [i, page] of pages.entries()) assert.deepEqual(page.problems, [], `${names[i]}: no script error or CSP violation`);
    for (const context of contexts) await context.close();
  }
}

test("a direct message between two people: found as you type, named by its people, live for the other, invisible to a third", { skip: REMOTE !== null && "needs its own server" }, async () => {
  await withPages(["ada", "bob", "carol"], async (ada, bob, carol) => {
    await signUp(ada, server, "Ada Lovelace");
    const bobName = await signUp(bob, server, "Bob Marley");
    await signUp(carol, server, "Carol Danvers");
    for (const page of [ada, bob, carol]) await waitForState(page, "connected");

    await ada.getByRole("button", { name: "New direct message" }).click();
    const dialog = ada.getByRole("dialog", { name: "New direct message" });
    await dialog.getByLabel("Find people").fill("Bob");
    await dialog.getByRole("button", { name: `Add Bob Marley (@${bobName})` }).click();
    await dialog.getByRole("list", { name: "With" }).getByText("Bob Marley").waitFor();
    assert.deepEqual(await axeViolations(ada), [], "axe-core: the new direct message dialog");
    // Starting with nobody is refused; with Bob, the room opens, named by him.
    await dialog.getByRole("button", { name: "Start conversation" }).click();
    await ada.getByRole("heading", { level: 1, name: "Bob Marley" }).waitFor();
    await waitForState(ada, "connected");
    const directs = ada.getByRole("navigation", { name: "Direct messages" });
    await directs.getByRole("link", { name: /Bob Marley/ }).waitFor();
    const room = new URL(ada.url()).searchParams.get("room");
    assert.ok(room, "the direct room is in the URL");

    const box = ada.getByRole("textbox", { name: "Message", exact: true });
    await box.fill("psst, just between us");
    await box.press("Enter");
    await message(ada, "psst, just between us").waitFor();

    // Bob: listed under Direct messages without a reload, named "Ada Lovelace", with its badge.
    const bobDirects = bob.getByRole("navigation", { name: "Direct messages" });
    const link = bobDirects.getByRole("link", { name: /Ada Lovelace/ });
    await link.waitFor({ timeout: 8_000 });
    await link.getByText("1 unread").waitFor({ timeout: 8_000 });
    await link.click();
    await message(bob, "psst, just between us").waitFor();
    assert.deepEqual(await axeViolations(bob), [], "axe-core: a direct room open");

    // Carol: not listed, and its link is refused.
    const rooms = await carol.evaluate(async () => (await (await fetch("/api/v1/rooms")).json()).rooms.map((r) => r.name));
    assert.ok(!rooms.includes(room), "a third person's room list leaves it out");
    assert.equal(await carol.getByRole("navigation", { name: "Direct messages" }).getByRole("link").count(), 0);
    await carol.goto(`${server.url}/?room=${room}`);
    await carol.getByRole("heading", { name: REFUSAL }).waitFor();
    assert.equal(await carol.getByText("psst, just between us").count(), 0);

    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await bob.getByRole("textbox", { name: "Message", exact: true }).fill("Deal. See you at the release.");
    await bob.screenshot({ path: path.join(SCREENSHOTS, "direct-messages.png") });
  });
});

test("search: highlighted results with room, author and time, More results, and a jump that highlights the message", { skip: REMOTE !== null && "needs its own server" }, async () => {
  const room = `notes-${Math.random().toString(36).slice(2, 8)}`;
  await withPages(["ada"], async (page) => {
    await signUp(page, server, "Ada");
    const grace = await account(server, "Grace Hopper");
    assert.equal((await grace.call("POST", "/api/v1/rooms", { name: room, visibility: "public" })).status, 201);
    const target = await grace.post(room, "the zebra crossing is on the left");
    for (let i = 1; i <= 60; i += 1) await grace.post(room, `filler ${i}`);
    await grace.post(room, "<b>zebra</b> & stripes, not markup");
    for (let i = 1; i <= 22; i += 1) await grace.post(room, `zebra count ${i}`);
    await waitForState(page, "connected");

    const field = page.getByRole("searchbox", { name: "Search messages" });
    await field.fill("zebra");
    await field.press("Enter");
    const dialog = page.getByRole("dialog", { name: "Search results" });
    const results = dialog.getByRole("listitem");
    await eventually(async () => assert.equal(await results.count(), 20, "the first page: 20 results"));
    const newest = results.first();
    assert.match(await newest.textContent(), new RegExp(`#${room}.*Grace Hopper`));
    assert.equal(await newest.locator("time").count(), 1, "each result shows its time");
    assert.equal(await newest.locator("mark").first().textContent(), "zebra", "the match is highlighted");
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, "search-results.png") });
    await dialog.getByRole("button", { name: "More results" }).click();
    await eventually(async () => assert.equal(await results.count(), 24, "More results brings the rest"));
    assert.equal(await dialog.getByRole("button", { name: "More results" }).isVisible(), false, "no more after the last page");
    // Escaped text stays text: the <b> of the message is shown, not applied.
    const markup = results.filter({ hasText: "stripes" });
    assert.match(await markup.textContent(), /<b>zebra<\/b> & stripes/);
    assert.equal(await markup.locator("b").count(), 0, "no element from the message's text");
    assert.equal(await markup.locator("mark").count(), 1);
    assert.deepEqual(await axeViolations(page), [], "axe-core: search results");

    // The oldest result is 80 messages back: the jump opens the room around it, highlighted and focused.
    await results.filter({ hasText: "crossing" }).getByRole("link").click();
    const jumped = message(page, "the zebra crossing is on the left");
    await jumped.waitFor();
    await eventually(async () => assert.match(await jumped.getAttribute("class"), /msg--highlight/));
    assert.equal(await jumped.evaluate((el) => el === document.activeElement), true, "the message has the focus");
    assert.equal(Number(await jumped.getAttribute("data-seq")), target.seq);
    assert.ok(await jumped.isVisible(), "scrolled into view");
    // The rest of the room follows it, in order, once.
    await message(page, "zebra count 22").waitFor();
    const seqs = await page.locator("#messages .msg[data-seq]").evaluateAll((items) => items.map((i) => Number(i.dataset.seq)));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in seq order");
    assert.equal(new Set(seqs).size, seqs.length, "each once");
  });
});

/** A PNG of `width` × `height` drawn in the page. */
async function png(page, width, height) {
  const data = await page.evaluate(
    ([w, h]) => {
      const canvas = document.createElement("canvas");
      canvas.width = w;
      canvas.height = h;
      const g = canvas.getContext("2d");
      const gradient = g.createLinearGradient(0, 0, w, h);
      gradient.addColorStop(0, "#2f5bd3");
      gradient.addColorStop(1, "#1d8a4e");
      g.fillStyle = gradient;
      g.fillRect(0, 0, w, h);
      g.fillStyle = "#ffffff";
      g.font = "bold 28px sans-serif";
      g.fillText("Q3 chart", 24, h / 2);
      return canvas.toDataURL("image/png").split(",")[1];
    },
    [width, height],
  );
  return Buffer.from(data, "base64");
}

const PDF = Buffer.from("%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");

/** Picks `files` with the "Attach file" button's file chooser. */
async function attachByButton(page, files) {
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.getByRole("button", { name: "Attach file" }).click()]);
  await chooser.setFiles(files);
}

test("files: an image by the button and by paste shown inline, a PDF as a chip, a file too large refused; both people see them", { skip: REMOTE !== null && "needs its own server" }, async () => {
  const room = `files-${Math.random().toString(36).slice(2, 8)}`;
  await withPages(["ada", "bob"], async (ada, bob) => {
    const owner = await account(server, "Owner");
    assert.equal((await owner.call("POST", "/api/v1/rooms", { name: room, visibility: "public" })).status, 201);
    await signUp(ada, server, "Ada", `/?room=${room}`);
    await signUp(bob, server, "Bob", `/?room=${room}`);
    const box = ada.getByRole("textbox", { name: "Message", exact: true });
    await waitForState(ada, "connected");
    await box.fill("files coming");
    await box.press("Enter");
    await message(ada, "files coming").waitFor();
    await bob.reload();
    await waitForState(bob, "connected");
    await message(bob, "files coming").waitFor();

    // An image by the button: uploaded at once, listed with its state, then sent.
    await attachByButton(ada, [{ name: "chart.png", mimeType: "image/png", buffer: await png(ada, 320, 180) }]);
    const tray = ada.getByRole("list", { name: "Files to send" });
    await tray.getByText("ready").waitFor();
    assert.deepEqual(await axeViolations(ada), [], "axe-core: a file ready to send");
    await box.fill("here is the chart");
    await box.press("Enter");
    for (const page of [ada, bob]) {
      const image = message(page, "here is the chart").getByRole("img", { name: "chart.png" });
      await image.waitFor();
      await eventually(async () => assert.ok(await image.evaluate((img) => img.complete && img.naturalWidth === 320), "the image loads from the site (CSP img-src 'self')"));
      assert.equal(await image.getAttribute("loading"), "lazy");
      const href = await message(page, "here is the chart").getByRole("link").getAttribute("href");
      assert.match(href, /^\/api\/v1\/files\/[^/]+$/);
    }
    assert.equal(await tray.isVisible(), false, "the tray empties once sent");

    // A pasted image, sent without text: the message carries its name.
    const pasted = (await png(ada, 200, 120)).toString("base64");
    await box.focus();
    await ada.evaluate((data) => {
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], "clipboard.png", { type: "image/png" }));
      document.getElementById("composer-text").dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true }));
    }, pasted);
    await tray.getByText("clipboard.png").waitFor();
    await tray.getByText("ready").waitFor();
    await box.press("Enter");
    await message(bob, "clipboard.png").getByRole("img", { name: "clipboard.png" }).waitFor();

    // A PDF: a chip with its name, size and type that downloads it.
    await attachByButton(ada, [{ name: "report.pdf", mimeType: "application/pdf", buffer: PDF }]);
    await tray.getByText("ready").waitFor();
    await box.fill("the report");
    await box.press("Enter");
    const chip = message(bob, "the report").getByRole("link", { name: /report\.pdf/ });
    await chip.waitFor();
    assert.match(await chip.textContent(), /report\.pdf.*\d+ bytes · application\/pdf/);
    const response = await bob.evaluate(async (href) => {
      const r = await fetch(href);
      return { status: r.status, disposition: r.headers.get("content-disposition") };
    }, await chip.getAttribute("href"));
    assert.equal(response.status, 200);
    assert.match(response.disposition ?? "", /attachment/);
    assert.deepEqual(await axeViolations(bob), [], "axe-core: messages with attachments");

    // Too large: refused with the reason, nothing sent.
    await attachByButton(ada, [{ name: "huge.bin", mimeType: "application/octet-stream", buffer: Buffer.alloc(MAX_FILE_BYTES + 1000, 7) }]);
    await tray.getByText(/Not uploaded: too large/).waitFor();
    await tray.getByRole("button", { name: "Remove huge.bin" }).click();
    assert.equal(await tray.isVisible(), false);

    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await message(bob, "here is the chart").scrollIntoViewIfNeeded();
    await bob.screenshot({ path: path.join(SCREENSHOTS, "attachments.png") });
  });
});
