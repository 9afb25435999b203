"""Annotators labeling through the HTTP API while something breaks underneath.

Each annotator is a thread with its own token doing next + submit in a closed loop. Every
submission the server acknowledged (201) is recorded, with every error the clients saw
and when, so a test can check that nothing acknowledged was lost and measure recovery.
"""

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

REQUEST_TIMEOUT_S = 10.0


@dataclass
class LoadReport:
    acknowledged: list[tuple[int, int]] = field(default_factory=list)  # (item, annotator)
    ack_times: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_times: list[float] = field(default_factory=list)
    non_json_errors: int = 0

    def first_ack_after(self, moment: float) -> float | None:
        later = [t for t in self.ack_times if t >= moment]
        return min(later) if later else None

    def longest_gap(self, start: float, end: float) -> float:
        """The longest stretch in [start, end] with no acknowledged submission."""
        times = sorted(t for t in self.ack_times if start <= t <= end)
        points = [start, *times, end]
        return max(b - a for a, b in zip(points, points[1:], strict=False))


class AnnotatorLoad:
    def __init__(self, base_url: str, project_id: int, annotators: list[tuple[int, str]]):
        self.base_url = base_url
        self.project_id = project_id
        self.annotators = annotators
        self.report = LoadReport()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> "AnnotatorLoad":
        for annotator_id, token in self.annotators:
            thread = threading.Thread(target=self._loop, args=(annotator_id, token), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadReport:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT_S + 5)
        return self.report

    def _error(self, what: str, response: requests.Response | None = None) -> None:
        with self._lock:
            self.report.errors[what] += 1
            self.report.error_times.append(time.monotonic())
            if response is not None and response.status_code >= 500:
                if not response.headers.get("Content-Type", "").startswith("application/json"):
                    self.report.non_json_errors += 1

    def _loop(self, annotator_id: int, token: str) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        next_url = f"{self.base_url}/api/v1/projects/{self.project_id}/next/"
        submit_url = f"{self.base_url}/api/v1/annotations/"
        while not self._stop.is_set():
            try:
                response = session.post(next_url, timeout=REQUEST_TIMEOUT_S)
                if response.status_code == 204:
                    time.sleep(0.2)
                    continue
                if response.status_code != 200:
                    self._error(f"next {response.status_code}", response)
                    time.sleep(0.05)
                    continue
                item_id = response.json()["item"]["id"]
                response = session.post(
                    submit_url,
                    json={"item": item_id, "value": "neither"},
                    timeout=REQUEST_TIMEOUT_S,
                )
                if response.status_code == 201:
                    with self._lock:
                        self.report.acknowledged.append((item_id, annotator_id))
                        self.report.ack_times.append(time.monotonic())
                else:
                    self._error(f"submit {response.status_code}", response)
                    time.sleep(0.05)
            except requests.RequestException as error:
                self._error(type(error).__name__)
                time.sleep(0.05)
