// The sidebar's room lists: the rooms you joined (and the open one), and the
// direct rooms named by their people; each link marks the open room and
// carries an unread badge whose accessible text is "N unread".

import { directLabel, othersIn } from "./directs.js";

/** Where a room opens. */
export function roomUrl(room) {
  return `/?room=${encodeURIComponent(room)}`;
}

/** An unread badge whose accessible text is "N unread". */
function unreadBadge(unread) {
  const badge = document.createElement("span");
  badge.className = "unread-badge";
  const count = document.createElement("span");
  count.setAttribute("aria-hidden", "true");
  count.textContent = unread > 99 ? "99+" : String(unread);
  const label = document.createElement("span");
  label.className = "visually-hidden";
  label.textContent = ` ${unread} unread`;
  badge.append(count, label);
  return badge;
}

/** One link: the open room marked current (and never badged), others with their unread count. */
function roomLink(info, name, current, content) {
  const link = document.createElement("a");
  link.href = roomUrl(name);
  link.dataset.room = name;
  link.className = "room-link";
  link.append(...content);
  const unread = name === current ? 0 : (info?.unread ?? 0);
  if (unread > 0) {
    link.classList.add("room-link--unread");
    link.append(unreadBadge(unread));
  }
  if (name === current) link.setAttribute("aria-current", "page");
  const item = document.createElement("li");
  item.append(link);
  return item;
}

/**
 * Fills `roomList` with `names` (sorted) and `directList` with the direct
 * rooms of `rooms`; `current` is the open room (or null), `dot(userId)` a
 * presence dot. Returns the people of the direct rooms (for their presence).
 */
export function renderSidebar({ roomList, directList }, { rooms, names, current, me, dot }) {
  const info = (name) => rooms.find((r) => r.name === name) ?? null;
  roomList.replaceChildren(
    ...[...names].sort().map((name) => {
      const hash = document.createElement("span");
      hash.className = "room-hash";
      hash.setAttribute("aria-hidden", "true");
      hash.textContent = "#";
      const content = [hash, name];
      if (info(name)?.visibility === "private") {
        const badge = document.createElement("span");
        badge.className = "room-private";
        badge.textContent = " (private)";
        content.push(badge);
      }
      return roomLink(info(name), name, current, content);
    }),
  );
  const directs = rooms.filter((r) => r.visibility === "direct").sort((a, b) => directLabel(a, me).localeCompare(directLabel(b, me)));
  directList.replaceChildren(
    ...directs.map((room) => {
      const others = othersIn(room, me);
      const content = [];
      if (others.length === 1) content.push(dot(others[0].id));
      content.push(directLabel(room, me));
      return roomLink(room, room.name, current, content);
    }),
  );
  return directs.flatMap((room) => othersIn(room, me));
}
