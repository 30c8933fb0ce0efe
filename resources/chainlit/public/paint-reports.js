// Foundry Desk: tell the chat server which answers this page has painted, so that it sends the
// next piece of a streaming answer only when the page is ready for it (desktop/chat/streaming.py).
(() => {
  const ANSWER = '[data-step-type="assistant_message"] [id^="step-"]';
  const painted = new Set();
  let scheduled = false;

  const report = () => {
    scheduled = false;
    for (const id of painted) {
      fetch("/foundry-desk/painted", { method: "POST", body: id, keepalive: true }).catch(() => {});
    }
    painted.clear();
  };

  new MutationObserver((records) => {
    for (const record of records) {
      const node = record.target.nodeType === Node.ELEMENT_NODE ? record.target : record.target.parentElement;
      const answer = node && node.closest(ANSWER);
      if (answer) painted.add(answer.id.slice("step-".length));
    }
    if (painted.size && !scheduled) {
      scheduled = true;
      // After the next frame is drawn: the animation frame comes before the paint, the task after it.
      requestAnimationFrame(() => setTimeout(report, 0));
    }
  }).observe(document.documentElement, { subtree: true, childList: true, characterData: true });
})();
