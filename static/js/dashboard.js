// Dashboard: open the create-run dialog, fetching its form the first time (the link still works without
// JavaScript: it leads to the New run page).
(function () {
  const dialog = document.getElementById("create-dialog");
  const opener = document.getElementById("open-create");
  const slot = document.getElementById("create-form");
  if (!dialog || !opener || !slot || typeof dialog.showModal !== "function" || !window.htmx) return;
  const focusFirst = () => {
    const first = dialog.querySelector("select, input:not([type=hidden]), textarea");
    if (first) first.focus();
  };
  opener.addEventListener("click", (event) => {
    event.preventDefault();
    dialog.showModal();
    if (slot.dataset.loaded) return focusFirst();
    htmx.ajax("GET", opener.getAttribute("href"), { target: slot, swap: "innerHTML" }).then(() => {
      slot.dataset.loaded = "true";
      focusFirst();
    });
  });
  dialog.addEventListener("click", (event) => {
    if (event.target.matches("[data-close]")) dialog.close();
  });
})();
