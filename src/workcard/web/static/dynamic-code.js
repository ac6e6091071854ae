// Renews the e-card QR code before it expires (it is valid for two minutes). When the server refuses a
// new code (the permit was cancelled meanwhile, the session ended), the page says why and stops.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-dynamic-code]");
  if (!box) return;
  const countdown = box.querySelector("[data-code-countdown]");
  let left = Number(countdown.dataset.seconds);
  const refreshAt = 20; // seconds before expiry
  let renewing = false;
  let timer = null;
  async function renew() {
    if (renewing) return;
    renewing = true;
    try {
      const resp = await fetch(box.dataset.source, { cache: "no-store" });
      if (resp.status < 500 && (resp.headers.get("content-type") || "").startsWith("application/problem+json")) {
        const problem = await resp.json();
        clearInterval(timer);
        box.querySelector("[data-code-image]").hidden = true;
        box.querySelector("[data-code-text]").closest("details").hidden = true;
        countdown.textContent = problem.detail;
        countdown.className = "alert";
        countdown.setAttribute("role", "alert");
        return;
      }
      if (!resp.ok) throw new Error(resp.status);
      const data = await resp.json();
      box.querySelector("[data-code-image]").src = data.image;
      box.querySelector("[data-code-text]").textContent = data.code;
      left = data.expires_in;
    } catch (e) {
      left = Math.min(left, refreshAt + 5); // try again in a few seconds
    } finally {
      renewing = false;
    }
  }
  function show() {
    countdown.textContent = countdown.dataset.label.replace("{n}", Math.max(0, left - refreshAt));
  }
  show(); // the page says when the code expires; the script renews it refreshAt seconds earlier
  timer = setInterval(() => {
    left -= 1;
    if (left <= refreshAt) renew();
    show();
  }, 1000);
});
