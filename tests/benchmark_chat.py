"""Benchmark of the chat in Debian's Chromium: is the page as quick as the model?

    .venv/bin/python tests/benchmark_chat.py [--runs 5] [--tokens 1000]

1. Time to first token: from pressing Enter to the first answer text painted in the page (a
   MutationObserver, then the end of the frame that paints the change), against the endpoint's
   own time to first token for the same conversation (the openai client, straight to the
   runtime). Target: at most 50 ms more.
2. Fast stream: a model streaming hundreds of tokens/s for `--tokens` tokens; how long after the
   model finished (the chat server got its last token, from the server's log, same clock) is the
   last token painted. Target: within 100 ms.
3. The chat server's memory (RSS) at idle, after a page has loaded and answered, and the page's
   own: its JavaScript heap, and the bytes it loaded.
4. Enter pressed at once after "New chat": how long the message waits for the new chat to be
   ready (it is sent then, never lost).
5. Stop (fast stream only): the runtime host's CPU over a second while it streams a long answer,
   and over the second after Stop is pressed: the model stops too, not only the page. Target:
   idle again (< 30 % of a core).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import psutil
from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop.config import Settings
from tests.conftest import free_port
from tests.support.chat_browser import ChatStack, open_chat, send, wait_for_answer, wait_idle
from tests.support.webgpu_browser import launch
from tests.tinymodel import build_model

OBSERVER = """
() => {
  // When text is painted: a change made in an animation frame callback is painted at the end of
  // that frame, any other change at the end of the next one; a task posted then runs just after
  // that paint. (The page's frame callbacks are marked to tell the two apart.)
  let inFrame = false;
  const requestFrame = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (callback) => requestFrame((time) => {
    inFrame = true;
    try { callback(time); } finally { queueMicrotask(() => { inFrame = false; }); }
  });
  const afterPaint = (record) => inFrame ? setTimeout(record, 0) : requestFrame(() => setTimeout(record, 0));
  window.bench = {sent: null, first: null, last: null, done: null};
  const answers = () => [...document.querySelectorAll('[data-step-type="assistant_message"]')];
  document.querySelector('#chat-input').addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      window.bench = {sent: performance.now(), first: null, last: null, done: null,
                      count: answers().length};
    }
  }, {capture: true});
  new MutationObserver(() => {
    const b = window.bench;
    if (b.sent === null || b.done !== null) return;
    const fresh = answers().slice(b.count).map(e => e.innerText).join('');
    if (!fresh.trim()) return;
    afterPaint(() => {
      const now = performance.now();
      if (b.first === null) b.first = now;
      if (fresh.includes('computed ')) { if (b.done === null) b.done = now; }
      else b.last = now;
    });
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""


def endpoint_timing(stack: ChatStack, max_tokens: int) -> tuple[float, float]:
    """The endpoint's own time to first token and total time, in ms, for a one-message chat."""
    status = stack.ready()
    client = openai.OpenAI(base_url=status.base_url, api_key="x", max_retries=0)
    messages: Any = [
        {"role": "system", "content": Settings().system_prompt},
        {"role": "user", "content": "Hi there"},
    ]
    started = time.perf_counter()
    first = None
    for chunk in client.chat.completions.create(
        model=status.model_id or "", messages=messages, max_tokens=max_tokens, stream=True
    ):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    total = time.perf_counter() - started
    return ((first or started) - started) * 1000, total * 1000


PAGE_LOAD = """
() => {
  const resources = performance.getEntriesByType('resource');
  const navigation = performance.getEntriesByType('navigation')[0];
  return {
    page_kb: (navigation.transferSize + resources.reduce((n, r) => n + r.transferSize, 0)) / 1000,
    page_requests: resources.length + 1,
    page_heap_mb: performance.memory.usedJSHeapSize / 2 ** 20,
  };
}
"""
"""What opening the chat cost the browser: bytes and requests (a fresh profile), JavaScript heap."""

ENTER_AFTER_NEW_CHAT = """
(text) => new Promise((resolve) => {
  document.getElementById('new-chat').click();
  const input = document.getElementById('chat-input');
  input.value = text;
  const start = performance.now();
  new MutationObserver((records, observer) => {
    if (!document.querySelector('[data-step-type="user_message"]')) return;
    observer.disconnect();
    resolve(performance.now() - start);
  }).observe(document.getElementById('messages'), { childList: true, subtree: true });
  input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
})
"""
"""Click "New chat", press Enter at once; ms until the message is sent (shown in the chat)."""


ANSWER_LOG = re.compile(r"answer \S+ in chat \S+: .* first token at ([0-9.]+), (?:done|cut) at ([0-9.]+)")


def browser_timing(page: Page, text: str, chat_log: Path, timeout_ms: int = 120_000) -> dict[str, float]:
    """The page's times (ms from its own clock) plus, on the same clock, when the chat server got
    the model's first token and its last (from the chat server's log line for the answer)."""
    send(page, text)
    page.wait_for_function("() => window.bench.done !== null", timeout=timeout_ms)
    page.wait_for_selector("#stop-button", state="hidden", timeout=timeout_ms)
    bench: dict[str, float] = page.evaluate("({...window.bench, origin: performance.timeOrigin})")
    found = ANSWER_LOG.findall(chat_log.read_text(encoding="utf-8"))
    assert found, "the chat server logged no answer"
    first, last = (float(epoch) * 1000 - bench["origin"] for epoch in found[-1])
    return {**bench, "model_first": first, "model_done": last}


def tree_rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


def cpu_around_stop(stack: ChatStack, page: Page) -> dict[str, float]:
    """The runtime host's CPU (percent of a core) over a second while the endless model streams an
    answer of up to 4096 tokens (in a new chat), and over the second after Stop."""
    page.click("#new-chat")
    page.wait_for_url(f"{stack.url}/")
    page.click("#chat-settings-open-modal")
    page.fill("#max_tokens", "4096")
    page.get_by_role("button", name="Confirm").click()
    host = psutil.Process(stack.runtime.status.pid)
    send(page, "Go on, until I stop you")
    wait_for_answer(page, "and on and on")
    streaming = host.cpu_percent(interval=1.0)
    page.click("#stop-button")
    wait_for_answer(page, "(stopped)")
    stopped = host.cpu_percent(interval=1.0)
    wait_idle(page)
    return {"runtime_cpu_streaming": streaming, "runtime_cpu_after_stop": stopped}


def run(root: Path, model: Path, runs: int, max_tokens: int, stop: bool = False) -> dict[str, Any]:
    settings = Settings(model_path=model, runtime_port=free_port(), max_tokens=max_tokens)
    stack = ChatStack.start(root, replace(settings))
    try:
        stack.ready()
        endpoint = [endpoint_timing(stack, max_tokens) for _ in range(runs + 1)][1:]
        with sync_playwright() as driver:
            browser = launch(driver)
            page = browser.new_page()
            open_chat(page, stack.link())
            page_load = page.evaluate(PAGE_LOAD)
            page.evaluate(OBSERVER)
            chat_log = stack.paths.log_dir / "chat.log"
            browser_timing(page, "warm up", chat_log)
            seen = []
            for _ in range(runs):
                page.reload()
                page.wait_for_selector("#app[data-connection='connected']")
                page.evaluate(OBSERVER)
                seen.append(browser_timing(page, "Hi there", chat_log))
            new_chat_waits = []
            for count in range(runs):
                wait_idle(page)
                new_chat_waits.append(page.evaluate(ENTER_AFTER_NEW_CHAT, f"Quick {count}"))
            wait_idle(page)
            around_stop = cpu_around_stop(stack, page) if stop else {}
            time.sleep(2)
            assert stack.chat.supervisor is not None and stack.chat.supervisor.status.pid is not None
            rss = tree_rss_mb(stack.chat.supervisor.status.pid)
            browser.close()
    finally:
        stack.stop()
    ttft_endpoint = statistics.median(e[0] for e in endpoint)
    total_endpoint = statistics.median(e[1] for e in endpoint)
    ttft_page = statistics.median(b["first"] - b["sent"] for b in seen)
    # The final update (whole answer and footer) is when the last token is surely painted.
    last_page = statistics.median(b["done"] - b["sent"] for b in seen)
    return {
        "endpoint_ttft_ms": ttft_endpoint,
        "page_ttft_ms": ttft_page,
        # In the chat itself: from the chat server getting the model's first token to its paint.
        "first_token_to_paint_ms": statistics.median(b["first"] - b["model_first"] for b in seen),
        "endpoint_total_ms": total_endpoint,
        "chat_model_ms": statistics.median(b["model_done"] - b["sent"] for b in seen),
        "page_last_token_ms": last_page,
        # The target: from the model finishing (the chat server got its last token) to the paint.
        "last_token_lag_ms": statistics.median(b["done"] - b["model_done"] for b in seen),
        "chat_server_rss_mb": rss,
        "new_chat_wait_ms": statistics.median(new_chat_waits),
        **page_load,
        **around_stop,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        quick = build_model(root / "models" / "alpha", "Hello from the tiny model.")
        fast = build_model(
            root / "models" / "fast", "and on", endless=True, width=1024, depth=8, context_length=8192
        )
        print("time to first token (tiny model, one-sentence answer):")
        result = run(root / "ttft", quick, args.runs, 64)
        print(
            f"  endpoint {result['endpoint_ttft_ms']:.1f} ms, page {result['page_ttft_ms']:.1f} ms, "
            f"added {result['page_ttft_ms'] - result['endpoint_ttft_ms']:.1f} ms; the chat server "
            f"got the first token, the page painted it {result['first_token_to_paint_ms']:.1f} ms later"
        )
        print(f"  chat server RSS at idle: {result['chat_server_rss_mb']:.0f} MB")
        print(
            f"  Enter at once after New chat: the message went {result['new_chat_wait_ms']:.0f} ms "
            "later, once the new chat was ready"
        )
        print(
            f"  the chat page: {result['page_kb']:.0f} kB in {result['page_requests']} requests, "
            f"JavaScript heap {result['page_heap_mb']:.1f} MB"
        )
        result = run(root / "stream", fast, max(1, args.runs // 2), args.tokens, stop=True)
        rate = args.tokens / result["endpoint_total_ms"] * 1000
        print(
            f"fast stream, {args.tokens} tokens (the endpoint alone: {rate:.0f} tokens/s): in the "
            f"chat the model finished {result['chat_model_ms']:.0f} ms after send, the last token "
            f"was painted at {result['page_last_token_ms']:.0f} ms: "
            f"{result['last_token_lag_ms']:.0f} ms after the model finished"
        )
        print(
            f"Stop: the runtime host used {result['runtime_cpu_streaming']:.0f} % CPU while answering, "
            f"{result['runtime_cpu_after_stop']:.0f} % in the second after Stop (target < 30 %)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
