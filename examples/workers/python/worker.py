#!/usr/bin/env python3
"""A Troupe worker in Python, standard library only.

It runs jobs of the types it is given through Troupe's worker protocol:

  POST /workers/claim        take up to N jobs, long-polling when none is ready
  POST /jobs/{id}/heartbeat  every lease/3: extend the lease, report progress,
                             learn of a cancel (cancelRequested)
  POST /jobs/{id}/complete   the attempt succeeded, with a JSON result
  POST /jobs/{id}/fail       the attempt failed: retry later, or permanently

Environment:

  TROUPE_URL                 the server, default http://127.0.0.1:8080
  TROUPE_TOKEN               bearer token (an API or a worker token), if any
  TROUPE_WORKER_TYPES        job types to run, comma-separated (default word_count)
  TROUPE_WORKER_CONCURRENCY  jobs run at once (default 4)
  TROUPE_WORKER_LEASE        lease per claim, 5s to 10m (default 30s)
  TROUPE_WORKER_WAIT         long-poll of a claim, 0s to 60s (default 10s)
  TROUPE_WORKER_NAME         name shown in the server's log (default host/pid-N)

On SIGTERM or SIGINT it claims no more jobs, finishes the jobs it holds
(heartbeating them), reports their outcome and exits 0; a claim in flight
is waited for (at most TROUPE_WORKER_WAIT) and its jobs are run too. A
second signal exits at once with status 1: the jobs it held are not
reported, their leases lapse, and the server runs them again (at least
once). It never fails a job because it is stopping.

It logs one JSON object per line on stderr.
"""

import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request


def log(level, msg, **fields):
    rec = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": level, "msg": msg}
    rec.update(fields)
    sys.stderr.write(json.dumps(rec) + "\n")
    sys.stderr.flush()


def parse_duration(text):
    """Parses "500ms", "30s", "5m" into seconds."""
    text = text.strip()
    for unit, factor in (("ms", 0.001), ("s", 1), ("m", 60)):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * factor
    raise ValueError("want a duration such as 500ms, 30s or 5m, got %r" % text)


class PermanentError(Exception):
    """The job can never succeed (bad input): fail it without retries."""


class Stopped(Exception):
    """The job was canceled, or its lease was lost: stop working on it."""


class API:
    """The few calls of the worker protocol, as JSON over HTTP."""

    def __init__(self, base, token):
        self.base = base.rstrip("/")
        self.token = token

    def post(self, path, body, timeout):
        """Returns (status, decoded JSON or None). Raises OSError when the
        server cannot be reached."""
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("User-Agent", "troupe-python-worker")
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            data = err.read()
            try:
                return err.code, json.loads(data or b"null")
            except ValueError:
                return err.code, {"detail": data[:200].decode(errors="replace")}


class Attempt:
    """One claimed job while this worker runs it."""

    def __init__(self, job, lease_seconds):
        self.job = job
        self.id = job["id"]
        self.token = job["leaseToken"]
        self.lease = lease_seconds
        self.done = threading.Event()  # the handler returned
        self.cancel = threading.Event()  # a user canceled the job
        self.lost = threading.Event()  # the lease is gone: the job is not ours
        self._lock = threading.Lock()
        self._progress = None

    def progress(self, percent, message=""):
        """Records progress; the next heartbeat sends the latest."""
        with self._lock:
            self._progress = {"percent": percent, "message": message}

    def take_progress(self):
        with self._lock:
            p, self._progress = self._progress, None
            return p

    def check(self):
        """Raises Stopped when the handler should give up the job."""
        if self.lost.is_set():
            raise Stopped("lease lost")
        if self.cancel.is_set():
            raise Stopped("canceled")


# ---- the handlers: payload and attempt in, a JSON-able result out --------


def word_count(payload, attempt):
    """Counts the words of payload["text"]. "sleepMs" stretches the work,
    to show heartbeats, progress and cancellation."""
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
        raise PermanentError('payload must be an object with a "text" string')
    sleep_ms = payload.get("sleepMs", 0)
    if not isinstance(sleep_ms, int) or sleep_ms < 0:
        raise PermanentError('"sleepMs" must be a whole number of milliseconds')
    steps = max(1, sleep_ms // 100)
    for i in range(steps):
        attempt.check()
        time.sleep(sleep_ms / 1000 / steps)
        attempt.progress(100 * (i + 1) / steps, "counting")
    attempt.check()
    text = payload["text"]
    return {"words": len(text.split()), "chars": len(text), "worker": WORKER_NAME}


HANDLERS = {"word_count": word_count}


# ---- the worker ------------------------------------------------------------


WORKER_NAME = os.environ.get("TROUPE_WORKER_NAME") or "%s/pid-%d" % (socket.gethostname(), os.getpid())


class Worker:
    def __init__(self, api, types, concurrency, lease, wait):
        self.api = api
        self.types = types
        self.lease = lease
        self.wait = wait
        self.slots = threading.Semaphore(concurrency)
        self.concurrency = concurrency
        self.running = 0
        self.running_lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []

    def run(self):
        log("info", "worker started", worker=WORKER_NAME, types=self.types, lease=self.lease)
        while not self.stopping.is_set():
            # Claim only as many jobs as there are free slots.
            if not self.slots.acquire(timeout=0.2):
                continue
            free = 1
            while free < self.concurrency and self.slots.acquire(blocking=False):
                free += 1
            jobs = self.claim(free)
            for _ in range(free - len(jobs)):
                self.slots.release()
            for job in jobs:
                t = threading.Thread(target=self.run_job, args=(job,), daemon=True)
                t.start()
                self.threads.append(t)
            self.threads = [t for t in self.threads if t.is_alive()]
        log("info", "worker stopping: finishing the jobs it holds", running=len(self.threads))
        for t in self.threads:
            t.join()
        log("info", "worker stopped")

    def claim(self, n):
        body = {
            "types": self.types,
            "max": n,
            "wait": "%ds" % self.wait,
            "worker": WORKER_NAME,
            "lease": "%ds" % self.lease,
        }
        try:
            status, data = self.api.post("/workers/claim", body, timeout=self.wait + 10)
        except OSError as err:
            log("warn", "claim failed; retrying", error=str(err))
            time.sleep(1)
            return []
        if status != 200:
            # A 400 (bad type) or 401/403 (token) will not get better:
            # say so loudly and slow down, rather than hammer the server.
            log("error", "claim refused", status=status, problem=data)
            time.sleep(5)
            return []
        return data["jobs"]

    def run_job(self, job):
        attempt = Attempt(job, self.lease)
        fields = {"jobID": attempt.id, "type": job["type"], "attempt": job.get("attempt")}
        log("info", "job started", **fields)
        hb = threading.Thread(target=self.heartbeat, args=(attempt,), daemon=True)
        hb.start()
        try:
            outcome = self.execute(attempt)
        finally:
            attempt.done.set()
            hb.join()
        try:
            if attempt.lost.is_set():
                # Someone else owns the job now; any report would get 409.
                log("warn", "lease lost: dropping the job without reporting", **fields)
                return
            self.report(attempt, outcome, fields)
        finally:
            self.slots.release()

    def execute(self, attempt):
        handler = HANDLERS.get(attempt.job["type"])
        if handler is None:
            return ("fail", {"error": "this worker has no handler for %s" % attempt.job["type"], "permanent": True})
        try:
            return ("complete", {"result": handler(attempt.job.get("payload"), attempt)})
        except PermanentError as err:
            return ("fail", {"error": str(err), "permanent": True})
        except Stopped as err:
            # After a cancel, a failure makes the job canceled.
            return ("fail", {"error": str(err)})
        except Exception as err:  # noqa: BLE001 - any other error is retryable
            return ("fail", {"error": "%s: %s" % (type(err).__name__, err)})

    def heartbeat(self, attempt):
        # Every lease/3: two heartbeats may fail before the lease lapses.
        interval = attempt.lease / 3
        while not attempt.done.wait(interval):
            body = {"leaseToken": attempt.token}
            progress = attempt.take_progress()
            if progress is not None:
                body["progress"] = progress
            try:
                status, data = self.api.post("/jobs/%s/heartbeat" % attempt.id, body, timeout=interval)
            except OSError as err:
                log("warn", "heartbeat failed; retrying", jobID=attempt.id, error=str(err))
                continue
            if status == 200:
                if data.get("cancelRequested") and not attempt.cancel.is_set():
                    log("info", "job canceled by a user: stopping it", jobID=attempt.id)
                    attempt.cancel.set()
            elif status in (404, 409):
                attempt.lost.set()
                return
            else:
                log("warn", "heartbeat refused", jobID=attempt.id, status=status, problem=data)

    def report(self, attempt, outcome, fields):
        kind, body = outcome
        body["leaseToken"] = attempt.token
        deadline = time.monotonic() + attempt.lease
        while True:
            try:
                status, data = self.api.post("/jobs/%s/%s" % (attempt.id, kind), body, timeout=10)
            except OSError as err:
                # The outcome may or may not have been applied; sending it
                # again is safe: a second one gets 409.
                if time.monotonic() > deadline:
                    log("error", "could not report; the lease will lapse and the job run again", error=str(err), **fields)
                    return
                log("warn", "report failed; retrying", error=str(err), **fields)
                time.sleep(1)
                continue
            if status == 200:
                log("info", "job reported", outcome=kind, status=data.get("status"), **fields)
            elif status == 409:
                log("warn", "lease lost: the outcome was not applied; the job is someone else's now", outcome=kind, **fields)
            elif status == 413 and kind == "complete":
                # The result is over the server's limit: the attempt is
                # still ours, so fail it instead of letting it lapse.
                kind, body = "fail", {"leaseToken": attempt.token, "error": "result too large", "permanent": True}
                continue
            else:
                log("error", "report refused", outcome=kind, status=status, problem=data, **fields)
            return


def main():
    types = [t.strip() for t in os.environ.get("TROUPE_WORKER_TYPES", "word_count").split(",") if t.strip()]
    try:
        lease = parse_duration(os.environ.get("TROUPE_WORKER_LEASE", "30s"))
        wait = parse_duration(os.environ.get("TROUPE_WORKER_WAIT", "10s"))
        concurrency = int(os.environ.get("TROUPE_WORKER_CONCURRENCY", "4"))
    except ValueError as err:
        log("error", "bad configuration", error=str(err))
        return 2
    api = API(os.environ.get("TROUPE_URL", "http://127.0.0.1:8080"), os.environ.get("TROUPE_TOKEN", ""))
    worker = Worker(api, types, max(1, concurrency), int(lease), int(wait))

    def on_signal(signum, _frame):
        if worker.stopping.is_set():
            log("warn", "second signal: exiting at once; the leases of the jobs held will lapse")
            os._exit(1)
        log("info", "signal received: claiming no more jobs", signal=signal.Signals(signum).name)
        worker.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
