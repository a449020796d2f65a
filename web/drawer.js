// The sidebar as a drawer on narrow screens: the menu button opens it on its
// first room, Tab stays inside while it is open, Escape or the scrim closes it.

const $ = (id) => document.getElementById(id);
const ui = {
  app: $("app"),
  menuButton: $("menu-button"),
  sidebar: $("sidebar"),
  scrim: $("scrim"),
  roomList: $("room-list"),
  browseButton: $("browse-button"),
};
const narrow = window.matchMedia("(max-width: 47.99rem)");

/** What Tab may reach while the drawer is open. */
function drawerStops() {
  return [ui.menuButton, ...ui.sidebar.querySelectorAll("a[href], button:not([disabled]), input:not([disabled])")].filter(
    (node) => node.offsetParent !== null || node === ui.menuButton,
  );
}

export function openDrawer() {
  if (!narrow.matches) return;
  ui.app.classList.add("drawer-open");
  ui.menuButton.setAttribute("aria-expanded", "true");
  ui.scrim.hidden = false;
  // The first room (the current one if listed): one Enter opens a room, never signs out.
  const target = ui.roomList.querySelector('a[aria-current="page"]') ?? ui.roomList.querySelector("a") ?? ui.browseButton;
  target.focus();
}

export function closeDrawer({ focusMenu = false } = {}) {
  if (!ui.app.classList.contains("drawer-open")) return;
  ui.app.classList.remove("drawer-open");
  ui.menuButton.setAttribute("aria-expanded", "false");
  ui.scrim.hidden = true;
  if (focusMenu) ui.menuButton.focus();
}

ui.menuButton.addEventListener("click", () => {
  if (ui.app.classList.contains("drawer-open")) closeDrawer();
  else openDrawer();
});
ui.scrim.addEventListener("click", () => closeDrawer({ focusMenu: true }));
document.addEventListener("keydown", (event) => {
  if (!ui.app.classList.contains("drawer-open")) return;
  if (event.key === "Escape") {
    closeDrawer({ focusMenu: true });
  } else if (event.key === "Tab") {
    // Focus stays in the open drawer (and its menu button).
    const stops = drawerStops();
    const at = stops.indexOf(document.activeElement);
    const next = event.shiftKey ? (at <= 0 ? stops.length - 1 : at - 1) : (at === -1 || at === stops.length - 1 ? 0 : at + 1);
    event.preventDefault();
    stops[next].focus();
  }
});
narrow.addEventListener("change", () => closeDrawer());
