// The verifier page's camera scanner: every half second a frame goes to the server, which reads the
// QR code (one decoder for camera frames and uploaded photos); the text found is submitted as a check.
document.addEventListener("DOMContentLoaded", () => {
  const start = document.querySelector("[data-start-camera]");
  const form = document.querySelector("[data-verify-form]");
  if (!start || !form || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  start.hidden = false;
  const box = document.querySelector("[data-scanner]");
  const video = box.querySelector("video");
  const status = box.querySelector("[data-scanner-status]");
  const token = form.querySelector("input[name=csrf_token]").value;
  let busy = false;

  async function tick(stream) {
    if (busy || video.videoWidth === 0) return;
    busy = true;
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((done) => canvas.toBlob(done, "image/jpeg", 0.9));
    const body = new FormData();
    body.append("frame", blob, "frame.jpg");
    try {
      const resp = await fetch("/verify/frame", { method: "POST", body, headers: { "X-CSRF-Token": token } });
      const answer = await resp.json();
      if (answer.found) {
        stream.getTracks().forEach((t) => t.stop());
        form.querySelector("textarea[name=qr_text]").value = answer.text;
        form.querySelector("input[name=photo]").value = ""; // the camera's code is the one to check
        form.submit();
        return;
      }
    } catch (e) {
      status.textContent = String(e);
    }
    busy = false;
  }

  start.addEventListener("click", async () => {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      box.hidden = false;
      start.hidden = true;
      video.srcObject = stream;
      await video.play();
      setInterval(() => tick(stream), 500);
    } catch (e) {
      status.textContent = String(e);
      box.hidden = false;
    }
  });
});
