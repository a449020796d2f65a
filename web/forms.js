// Form fields and status lines: errors are sentences beside the field they
// concern (`aria-invalid`, named by the field's `aria-describedby`), and
// information is shown neutrally.

/** The error paragraph of `input`: the element `<input id>-error`. */
function errorOf(input) {
  return document.getElementById(`${input.id}-error`);
}

/** Shows (or with "" clears) the error of one field. */
export function setFieldError(input, text) {
  const box = errorOf(input);
  if (box !== null) {
    box.textContent = text;
    box.hidden = text === "";
  }
  input.setAttribute("aria-invalid", String(text !== ""));
}

/** Shows each `[input, error]` and focuses the first invalid field; true when all are fine. */
export function checkFields(checks) {
  let first = null;
  for (const [input, error] of checks) {
    setFieldError(input, error ?? "");
    if (error && first === null) first = input;
  }
  first?.focus();
  return first === null;
}

/** A status line for information (neutral) or a failure (in the error colour). */
export function setStatus(node, text, { error = false } = {}) {
  node.textContent = text;
  node.classList.toggle("field-error", error && text !== "");
}

/** A failed request (an `ApiError`) as the end of a sentence. */
export function describeError(err) {
  if (err.status === 0) return "the server could not be reached.";
  if (err.status === 429) return "too many requests; wait a moment.";
  if (err.status === 404 || err.status === 405) return "this server does not offer that yet.";
  return err.message.endsWith(".") ? err.message : `${err.message}.`;
}

// Typing in a field clears its error.
document.addEventListener("input", (event) => {
  const input = event.target;
  if (input instanceof HTMLInputElement && input.getAttribute("aria-invalid") === "true" && errorOf(input) !== null) {
    setFieldError(input, "");
  }
});
