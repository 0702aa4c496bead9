// Run page: keep the newest event in view (Follow), filter the log by type, tick the duration,
// and ask before destructive actions. Everything else is htmx and plain forms.
(function () {
  const log = document.getElementById("event-log");
  const follow = document.getElementById("follow");
  const filter = document.getElementById("type-filter");

  function applyFilter(root) {
    const wanted = filter.value;
    for (const row of (root || log).querySelectorAll("li.event")) {
      row.hidden = Boolean(wanted) && row.dataset.type !== wanted;
    }
  }
  function keepNewestInView() {
    if (follow.checked && log.lastElementChild) log.lastElementChild.scrollIntoView({ block: "nearest" });
  }
  filter.addEventListener("change", () => applyFilter());
  follow.addEventListener("change", keepNewestInView);
  document.body.addEventListener("htmx:afterSettle", () => { applyFilter(); keepNewestInView(); });
  keepNewestInView();

  function format(seconds) {
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = Math.floor(seconds % 60);
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + s + "s";
  }
  setInterval(() => {
    const header = document.getElementById("run-header");
    const duration = header && header.querySelector("[data-tick]");
    if (!duration || !header.dataset.started) return;
    const end = header.dataset.finished ? Date.parse(header.dataset.finished) : Date.now();
    duration.textContent = format(Math.max(0, (end - Date.parse(header.dataset.started)) / 1000));
  }, 1000);

  document.addEventListener("submit", (event) => {
    const message = event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
