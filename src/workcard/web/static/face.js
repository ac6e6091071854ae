// Facial recognition with liveness (SPEC E2): shows each action the server chose, takes a camera picture
// a moment after each, puts the pictures into the form's file fields and sends the form. The preview is
// mirrored, as a person expects; the pictures are not.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-face]");
  const form = document.querySelector("[data-face-form]");
  if (!box || !form) return;
  const video = box.querySelector("video");
  const say = box.querySelector("[data-face-instruction]");
  const words = box.querySelector("template[data-words]").content;
  const word = (key) => words.querySelector(`[data-action="${key}"]`).textContent;
  const steps = box.dataset.steps.split(" ");
  const start = form.querySelector("[data-face-start]");
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function picture() {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
  }

  start.addEventListener("click", async () => {
    start.disabled = true;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user", width: { ideal: 640 } }, audio: false });
    } catch (e) {
      say.textContent = word("no_camera");
      say.className = "alert";
      start.disabled = false;
      return;
    }
    video.srcObject = stream;
    await video.play();
    await wait(800);
    for (let i = 0; i < steps.length; i++) {
      say.textContent = word(steps[i]);
      box.dataset.current = steps[i];
      await wait(2500);
      say.textContent = word("hold");
      const blob = await picture();
      const files = new DataTransfer();
      files.items.add(new File([blob], `step${i + 1}.jpg`, { type: "image/jpeg" }));
      form.querySelector(`input[name="frame${i}"]`).files = files.files;
    }
    stream.getTracks().forEach((t) => t.stop());
    say.textContent = word("sending");
    form.submit();
  });
});
