// Renews the e-card QR code before it expires (it is valid for two minutes).
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-dynamic-code]");
  if (!box) return;
  const countdown = box.querySelector("[data-code-countdown]");
  let left = Number(countdown.dataset.seconds);
  const refreshAt = 20; // seconds before expiry
  let renewing = false;
  async function renew() {
    if (renewing) return;
    renewing = true;
    try {
      const resp = await fetch(box.dataset.source, { cache: "no-store" });
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
  setInterval(() => {
    left -= 1;
    if (left <= refreshAt) renew();
    show();
  }, 1000);
});
