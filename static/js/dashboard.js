// Dashboard: open the create-run dialog (the link still works without JavaScript).
(function () {
  const dialog = document.getElementById("create-dialog");
  const opener = document.getElementById("open-create");
  if (!dialog || !opener || typeof dialog.showModal !== "function") return;
  opener.addEventListener("click", (event) => {
    event.preventDefault();
    dialog.showModal();
    const first = dialog.querySelector("select, input, textarea");
    if (first) first.focus();
  });
  dialog.addEventListener("click", (event) => {
    if (event.target.matches("[data-close]")) dialog.close();
  });
})();
