// A search highlight (DESIGN §5d) is HTML-escaped text with only <mark>
// added: it is taken apart here into text nodes and <mark> elements, never
// parsed as HTML.

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** Text with its character references (`&amp;`, `&#39;`, `&#x27;`…) decoded. */
export function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-z]{2,4});/g, (whole, name) => {
    if (name.startsWith("#")) {
      const code = name[1] === "x" ? Number.parseInt(name.slice(2), 16) : Number.parseInt(name.slice(1), 10);
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name] ?? whole;
  });
}

/** The nodes of a highlight: text, and <mark> for each matched part. */
export function highlightNodes(highlight) {
  const nodes = [];
  // Split on the only two tags the server adds; every other "<" arrives as "&lt;".
  const parts = String(highlight).split(/(<mark>|<\/mark>)/);
  let marked = false;
  for (const part of parts) {
    if (part === "<mark>") marked = true;
    else if (part === "</mark>") marked = false;
    else if (part !== "") {
      const text = decodeEntities(part);
      if (marked) {
        const mark = document.createElement("mark");
        mark.textContent = text;
        nodes.push(mark);
      } else {
        nodes.push(document.createTextNode(text));
      }
    }
  }
  return nodes;
}
