// Run page: keep the newest event in view (Follow), filter the log by type, tick the duration,
// and ask before destructive actions. Everything else is htmx and plain forms.
(function () {
  const log = document.getElementById("event-log");
  const follow = document.getElementById("follow");
  const filter = document.getElementById("type-filter");

  function applyFilter() {
    const wanted = filter.value;
    for (const row of log.querySelectorAll("li.event")) {
      row.hidden = Boolean(wanted) && row.dataset.type !== wanted;
    }
  }
  // Follow scrolls the log itself, never the page: reading the header while events stream stays possible.
  function keepNewestInView() {
    if (!follow.checked) return;
    log.scrollTop = log.scrollHeight;
  }
  // Scrolling back through the log turns Follow off; scrolling to the end turns it on again.
  log.addEventListener("scroll", () => {
    follow.checked = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
  });
  // Opening the newest event's payload while following keeps it in view.
  log.addEventListener("toggle", (event) => {
    if (event.target.open && event.target.closest("li") === log.lastElementChild) keepNewestInView();
  }, true);
  filter.addEventListener("change", () => { applyFilter(); keepNewestInView(); });
  follow.addEventListener("change", keepNewestInView);
  // A narrower window wraps rows and makes the log taller: the newest event stays in view.
  window.addEventListener("resize", keepNewestInView);
  // Loading older events shows them: Follow goes off, and once they are in, the log starts at its top.
  // (The new #older link settles after the events it brought, whatever polls settle in between.)
  document.body.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.elt.closest("#older")) follow.checked = false;
  });
  document.body.addEventListener("htmx:afterSettle", (event) => {
    applyFilter();
    if (event.target.id === "older") log.scrollTop = 0; else keepNewestInView();
  });
  keepNewestInView();

  function format(seconds) {
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = Math.floor(seconds % 60);
    return h ? h + "h " + m + "m" : m ? m + "m " + s + "s" : s + "s";
  }
  setInterval(() => {
    const live = document.getElementById("run-live");
    const duration = live && live.querySelector("[data-tick]");
    if (!duration || !live.dataset.started || live.dataset.finished) return;
    duration.textContent = format(Math.max(0, (Date.now() - Date.parse(live.dataset.started)) / 1000));
  }, 1000);

  document.addEventListener("submit", (event) => {
    const message = event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
