// Editing a message in place: its text is replaced by a form with a textarea
// labelled "Edit message", Save and Cancel; Escape cancels, and Enter saves
// where Enter sends. Focus returns to the message afterwards.

/**
 * @param {HTMLElement} item the message (its `.msg-text` is edited)
 * @param {object} options
 * @param {(text: string) => Promise<string | null>} options.save resolves to an error sentence, or null when saved
 * @param {() => boolean} options.enterSaves
 */
export function editInPlace(item, { save, enterSaves }) {
  if (item.querySelector(".msg-editor") !== null) return;
  const body = item.querySelector(":scope > .msg-text");
  const id = `edit-${item.dataset.seq}`;
  const form = document.createElement("form");
  form.className = "msg-editor";
  const label = document.createElement("label");
  label.className = "visually-hidden";
  label.htmlFor = id;
  label.textContent = "Edit message";
  const area = document.createElement("textarea");
  area.id = id;
  area.value = body.textContent;
  area.rows = Math.min(8, area.value.split("\n").length + 1);
  const error = document.createElement("p");
  error.className = "field-error";
  const saveButton = document.createElement("button");
  saveButton.type = "submit";
  saveButton.className = "plain-button";
  saveButton.textContent = "Save";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "plain-button";
  cancel.textContent = "Cancel";
  form.append(label, area, saveButton, " ", cancel, error);
  body.hidden = true;
  body.after(form);
  area.focus();

  const close = () => {
    form.remove();
    body.hidden = false;
    item.focus();
  };
  cancel.addEventListener("click", close);
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      close();
    } else if (event.key === "Enter" && !event.shiftKey && enterSaves()) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const problem = await save(area.value);
    if (problem === null) close();
    else error.textContent = problem;
  });
}
