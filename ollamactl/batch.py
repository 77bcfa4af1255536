"""The engine of ``ollamactl batch``: many prompts, one answer per line, over several servers.

No click and no printing here: the command passes a function that writes an output line and
a :class:`Listener` that shows progress, bad input lines and notices.

How a run works (threads, queues, sessions):

- A reader thread parses the input one line at a time (:mod:`ollamactl.batch_input`) and
  admits the items to :class:`_Work`. Admission waits while ``window`` items are on their way
  (queued, being answered, or answered and not yet written), so memory stays flat in the
  number of prompts, and ``ordered`` output holds at most ``window`` answers back.
- Each server gets a thread that checks the model once (``/api/show``; ``/api/pull`` first
  when asked) and then runs ``parallel`` workers. Each worker owns a
  :class:`~ollamactl.client.Client`: a requests.Session with one keep-alive connection.
  requests does not promise that a Session is safe to share between threads (cookies,
  redirects, adapters), and ``parallel`` connections per server are exactly what keeps
  ``parallel`` slots (OLLAMA_NUM_PARALLEL) busy, with no pool to size or lock to share.
- Requests are ``stream: false``: the server joins the answer, the client parses one JSON
  object per prompt (the CPU that counts when thousands of prompts share two cores), and
  an answer counts only with ``done: true`` (the client's stream reader checks it).
- Workers take the retries that are due first, then fresh items in input order, and put
  every answered or failed item on a bounded event queue.
- The calling thread writes each finished item as one whole line, keeps the counts and
  calls the listener. Ctrl-C there (KeyboardInterrupt) writes the answers that already
  arrived and stops; the others are left to ``--resume``.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Union

from ollamactl.batch_input import JSON, Id, Item, parse_line
from ollamactl.batch_output import encode
from ollamactl.config import Settings
from ollamactl.errors import (
    APIError,
    AuthFailed,
    ConnectionFailed,
    ExitCode,
    ModelNotFound,
    OllamactlError,
    ServerTimeout,
    StreamBroken,
    TLSFailed,
    UsageError,
)
from ollamactl.params import RequestOptions, profile_request

if TYPE_CHECKING:
    from ollamactl.client import Client

#: The fields of the server's answer that go into an output line, when present.
ANSWER_FIELDS = (
    "response",
    "thinking",
    "message",
    "done_reason",
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)
#: Seconds before the first retry of an item; doubled for each further one, up to the maximum.
RETRY_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 8.0
#: A server that fails this many requests in a row hands its items to the other servers.
SERVER_FAILURE_LIMIT = 3
#: Seconds between two progress calls while nothing finishes.
TICK_SECONDS = 1.0
#: Seconds the threads get to end once the run is over (a request in flight is not waited for).
JOIN_SECONDS = 2.0


# -- servers and progress ---------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A server to send prompts to: its name in the output (profile or URL) and its settings."""

    name: str
    settings: Settings
    redact: Callable[[str], str] = str


@dataclass
class ServerStats:
    """What one server did: answers, failed prompts, generated tokens, why it was dropped."""

    name: str
    host: str
    answered: int = 0
    failed: int = 0
    tokens: int = 0
    error: OllamactlError | None = None
    message: str = ""


@dataclass
class Stats:
    """The counts of a run, kept by the thread that runs it (also its final report)."""

    servers: list[ServerStats]
    answered: int = 0
    failed: int = 0
    bad_lines: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0
    #: Why the run ended early: "interrupted", "no server left", or "" (it did not).
    stopped: str = ""
    #: What interrupted it (Ctrl-C, a signal, or the reader of stdout going away).
    interruption: KeyboardInterrupt | None = None
    #: Items admitted and neither answered nor failed when the run stopped.
    unsent: int = 0
    #: The server whose error left no server to answer (when ``stopped`` says so).
    stopped_by: ServerStats | None = None

    @property
    def tokens(self) -> int:
        """Tokens generated, all servers together."""
        return sum(s.tokens for s in self.servers)

    def exit_code(self) -> ExitCode:
        """The run's exit code.

        0 all answered, 1 some failed or bad lines, 130 interrupted; when no server was left,
        5 if a server lacked the model, else the code of the first server's error.
        """
        if self.stopped == "interrupted":
            return ExitCode.INTERRUPTED
        if self.stopped:
            errors = [s.error for s in self.servers if s.error is not None]
            if any(isinstance(e, ModelNotFound) for e in errors):
                return ExitCode.NOT_FOUND
            return errors[0].exit_code if errors else ExitCode.CONNECTION
        return ExitCode.API_ERROR if self.failed or self.bad_lines else ExitCode.OK


class Listener:
    """What a run reports; every call comes from the thread that runs it. Silent by default."""

    def progress(self, stats: Stats) -> None:
        """The counts changed (or a second passed)."""

    def bad_line(self, number: int, message: str) -> None:
        """Input line ``number`` was skipped: ``message`` says why."""

    def notice(self, message: str, *, warning: bool = False) -> None:
        """Something to tell: a retry, a pull (info), or a server dropped (``warning``)."""


# -- the run ----------------------------------------------------------------------------------


@dataclass(eq=False)
class _Server:
    spec: Server
    stats: ServerStats
    options: JSON
    keep_alive: Any
    alive: bool = True  # changed under the work lock (see _Work.drop)
    failures: int = 0  # requests failed in a row (under Batch._lock)


class _Work:
    """The items between the reader and the workers: fresh ones in order, retries when due."""

    def __init__(self, window: int, servers: int) -> None:
        self.lock = threading.Lock()
        self._space = threading.Condition(self.lock)  # the reader waits here
        self._ready = threading.Condition(self.lock)  # the workers wait here
        self._fresh: deque[Item] = deque()
        self._due: list[tuple[float, int, Item]] = []
        self._window = window
        self._alive = servers  # servers still taking items
        self._open = 0  # admitted and not yet written
        self._next_seq = 0
        self._read_all = False
        self._closed = False

    def admit(self, item: Item) -> bool:
        """Queue a fresh item, waiting while the window is full; False once the run stops."""
        with self.lock:
            while self._open >= self._window and not self._closed:
                self._space.wait()
            if self._closed:
                return False
            item.seq, self._next_seq = self._next_seq, self._next_seq + 1
            self._open += 1
            self._fresh.append(item)
            self._ready.notify()
            return True

    def take(self, server: _Server) -> Item | None:
        """The next item for a worker of ``server``; None when the run is over or it is dropped."""
        with self.lock:
            while True:
                if self._closed or not server.alive or (self._read_all and not self._open):
                    self._ready.notify()  # pass on a wake-up meant for a worker that stays
                    return None
                now = time.monotonic()
                if self._due and self._due[0][0] <= now:
                    item = self._due[0][2]
                    # a retry goes to another server while there is one
                    if item.failed_on is not server or self._alive == 1:
                        return heapq.heappop(self._due)[2]
                    if not self._fresh:
                        self._ready.wait(TICK_SECONDS)
                        continue
                if self._fresh:
                    return self._fresh.popleft()
                self._ready.wait(self._due[0][0] - now if self._due else None)

    def retry(self, item: Item, delay: float) -> None:
        """Queue ``item`` again, to be taken after ``delay`` seconds."""
        with self.lock:
            heapq.heappush(self._due, (time.monotonic() + delay, item.seq, item))
            self._ready.notify_all()  # rare; and a worker of another server may have to take it

    def written(self, count: int) -> None:
        """``count`` items left the run (written, or failed for good)."""
        with self.lock:
            self._open -= count
            self._space.notify()
            if self._read_all and not self._open:
                self._ready.notify_all()

    def read_all(self) -> None:
        """The input has ended."""
        with self.lock:
            self._read_all = True
            self._ready.notify_all()

    def drop(self, server: _Server) -> None:
        """``server`` takes no more items."""
        with self.lock:
            server.alive = False
            self._alive -= 1
            self._ready.notify_all()

    def close(self) -> int:
        """Stop: every wait ends; returns the number of items admitted and not written."""
        with self.lock:
            self._closed = True
            self._space.notify_all()
            self._ready.notify_all()
            return self._open

    def finished(self) -> bool:
        """Whether every item of the input was written."""
        with self.lock:
            return self._read_all and not self._open


@dataclass
class _Finished:
    """An item answered or failed for good: its output line."""

    seq: int
    line: bytes
    server: _Server
    ok: bool
    tokens: int = 0


@dataclass
class _Bad:
    number: int
    message: str


@dataclass
class _Notice:
    message: str
    warning: bool = False


@dataclass
class _Stop:
    """The run cannot go on: no server is left, or a thread failed (``error``)."""

    reason: str
    error: BaseException | None = None


_Event = Union[_Finished, _Bad, _Notice, _Stop, None]  # None: the input has ended


class Batch:
    """One run: ``model`` over ``servers``, ``parallel`` requests in flight on each.

    ``write`` gets every output line (bytes, newline included); ``skip`` holds the ids not
    to send (already answered); ``defaults`` are the request controls of the command line.
    """

    def __init__(
        self,
        model: str,
        servers: list[Server],
        write: Callable[[bytes], None],
        *,
        parallel: int = 1,
        retries: int = 2,
        ordered: bool = False,
        pull: bool = False,
        defaults: RequestOptions | None = None,
        skip: Iterable[Id] = (),
        listener: Listener | None = None,
        window: int | None = None,
    ) -> None:
        self.model = model
        self.parallel = parallel
        self.retries = retries
        self.ordered = ordered
        self.pull = pull
        self.defaults = defaults or RequestOptions()
        self.skip = set(skip)
        self.listener = listener or Listener()
        self._write = write
        self._servers = [_server(spec) for spec in servers]
        self.stats = Stats([s.stats for s in self._servers])
        window = window or max(16, 4 * parallel * len(servers))
        self._work = _Work(window, len(servers))
        self._events: queue.Queue[_Event] = queue.Queue(maxsize=2 * window)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._held: dict[int, _Finished] = {}  # --ordered: finished, waiting for earlier ones
        self._next_to_write = 0

    # -- the calling thread ---------------------------------------------------------------

    def run(self, source: BinaryIO) -> Stats:
        """Send every prompt of ``source``; return the counts (``stopped`` says if it ended early).

        Raises what ``write`` raises, after stopping the threads.
        """
        self.stats.started = time.monotonic()
        self._start(self._read, source)
        for server in self._servers:
            self._start(self._serve, server)
        try:
            self._collect()
        except KeyboardInterrupt as e:
            self.stats.stopped = "interrupted"
            self.stats.interruption = e
            self._drain()
        finally:
            self._stopping.set()
            self.stats.unsent = self._work.close()
            self.stats.elapsed = time.monotonic() - self.stats.started
            deadline = time.monotonic() + JOIN_SECONDS
            for thread in list(self._threads):
                thread.join(max(0.0, deadline - time.monotonic()))
        return self.stats

    def _collect(self) -> None:
        while not self.stats.stopped and not self._work.finished():
            try:
                event = self._events.get(timeout=TICK_SECONDS)
            except queue.Empty:
                self.listener.progress(self.stats)
                continue
            self._handle(event)

    def _drain(self) -> None:
        """Write what finished before Ctrl-C (in --ordered order, what can be)."""
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            if isinstance(event, _Finished):
                self._handle(event)

    def _handle(self, event: _Event) -> None:
        if isinstance(event, _Finished):
            self._finish(event)
            self.listener.progress(self.stats)
        elif isinstance(event, _Bad):
            self.stats.bad_lines += 1
            self.listener.bad_line(event.number, event.message)
        elif isinstance(event, _Notice):
            self.listener.notice(event.message, warning=event.warning)
        elif isinstance(event, _Stop):
            if event.error is not None:
                raise event.error
            self.stats.stopped = event.reason

    def _finish(self, event: _Finished) -> None:
        """Write a finished item's line (--ordered: and the held ones it lets through)."""
        if not self.ordered:
            self._emit_line(event)
            self._work.written(1)
            return
        self._held[event.seq] = event
        count = 0
        while self._next_to_write in self._held:
            self._emit_line(self._held.pop(self._next_to_write))
            self._next_to_write += 1
            count += 1
        if count:
            self._work.written(count)

    def _emit_line(self, event: _Finished) -> None:
        self._write(event.line)
        stats = event.server.stats
        if event.ok:
            self.stats.answered += 1
            stats.answered += 1
            stats.tokens += event.tokens
        else:
            self.stats.failed += 1
            stats.failed += 1

    # -- threads --------------------------------------------------------------------------

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        def guarded() -> None:
            try:
                target(*args)
            except BaseException as e:  # a bug must end the run, not leave it waiting
                self._put(_Stop("error", e))

        thread = threading.Thread(target=guarded, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _put(self, event: _Event) -> None:
        """Queue an event for the calling thread (given up once the run stops)."""
        while not self._stopping.is_set():
            try:
                self._events.put(event, timeout=0.1)
                return
            except queue.Full:
                continue

    def _read(self, source: BinaryIO) -> None:
        try:
            for number, raw in enumerate(source, 1):
                try:
                    item = parse_line(raw.decode("utf-8"), number, self.defaults)
                except UnicodeDecodeError:
                    self._put(_Bad(number, "not UTF-8 text"))
                    continue
                except UsageError as e:
                    self._put(_Bad(number, str(e)))
                    continue
                if item is None:
                    continue
                if item.id in self.skip:
                    self.stats.skipped += 1
                    continue
                if not self._work.admit(item):
                    return
        except OSError as e:
            self._put(_Stop("error", UsageError(f"cannot read the input: {e.strerror or e}")))
        finally:
            self._work.read_all()
            self._put(None)

    def _client(self, server: _Server) -> Client:
        from ollamactl.client import Client

        return Client(server.spec.settings)

    def _serve(self, server: _Server) -> None:
        """Check the model on ``server`` (pull it if asked), then run its workers."""
        client = self._client(server)
        try:
            self._check_model(server, client)
        except OllamactlError as e:
            client.session.close()
            self._drop(server, e)
            return
        for _ in range(self.parallel - 1):
            self._start(self._answer, server, self._client(server))
        self._answer(server, client)

    def _check_model(self, server: _Server, client: Client) -> None:
        try:
            client.show(self.model)
        except ModelNotFound:
            if not self.pull:
                raise
            self._put(_Notice(f"{server.spec.name}: pulling {self.model}"))
            for _ in client.pull(self.model):
                pass
            client.show(self.model)
            self._put(_Notice(f"{server.spec.name}: pulled {self.model}"))

    def _answer(self, server: _Server, client: Client) -> None:
        """A worker: answer items until there are none (or the server is dropped)."""
        with client.session:
            while (item := self._work.take(server)) is not None:
                try:
                    answer = self._ask(client, server, item)
                except OllamactlError as e:
                    self._failed(server, item, _server_fault(e, client) or e)
                    continue
                with self._lock:
                    server.failures = 0
                record = {"id": item.id, "model": self.model, "server": server.spec.name}
                record.update((k, answer[k]) for k in ANSWER_FIELDS if k in answer)
                tokens = answer.get("eval_count")
                count = tokens if isinstance(tokens, int) else 0
                self._put(_Finished(item.seq, encode(record), server, True, count))

    def _ask(self, client: Client, server: _Server, item: Item) -> JSON:
        """One request for ``item``: its answer (complete, or the client raises)."""
        arguments = {**item.body, "stream": False}
        if server.options:
            arguments["options"] = {**server.options, **item.body.get("options", {})}
        if server.keep_alive is not None:
            arguments.setdefault("keep_alive", server.keep_alive)
        call = client.chat if item.chat else client.generate
        last = deque(call(self.model, **arguments), maxlen=1)
        return last[0]

    def _failed(self, server: _Server, item: Item, error: OllamactlError | _ServerFault) -> None:
        """Retry ``item`` (elsewhere if the server is at fault) or record it as failed."""
        if isinstance(error, _ServerFault):
            self._drop(server, error.error)
            self._work.retry(item, 0.0)  # not the item's fault: no retry used
            return
        message = server.spec.redact(str(error))
        if _transient(error):
            item.attempts += 1
            with self._lock:
                server.failures += 1
                others = any(s.alive for s in self._servers if s is not server)
                give_up = others and server.failures >= SERVER_FAILURE_LIMIT
            if give_up:
                self._drop(server, error)
            if item.attempts <= self.retries:
                item.failed_on = server
                retry = f"retry {item.attempts} of {self.retries}"
                self._put(_Notice(f"{server.spec.name}: {message}; {item.id!r}: {retry}"))
                delay = RETRY_BACKOFF_SECONDS * 2 ** (item.attempts - 1)
                self._work.retry(item, min(delay, MAX_BACKOFF_SECONDS))
                return
        record = {"id": item.id, "model": self.model, "server": server.spec.name, "error": message}
        self._put(_Finished(item.seq, encode(record), server, False))

    def _drop(self, server: _Server, error: OllamactlError) -> None:
        """Take ``server`` out of the run; its items go to the others (or the run stops)."""
        with self._lock:
            if not server.alive:
                return
            self._work.drop(server)
            left = any(s.alive for s in self._servers)
        server.stats.error = error
        server.stats.message = server.spec.redact(str(error))
        if not left:
            self.stats.stopped_by = server.stats
            self._put(_Stop("no server left"))
            return
        where = f"{server.spec.name} ({server.stats.host})"
        message = f"{where}: {server.stats.message}; the other servers take its prompts"
        self._put(_Notice(message, warning=True))


def _server(spec: Server) -> _Server:
    """A server's run state, with its profile's default options and keep_alive."""
    profile = profile_request(spec.settings.defaults)
    stats = ServerStats(spec.name, spec.settings.base_url)
    return _Server(spec, stats, profile.options, profile.keep_alive)


@dataclass
class _ServerFault:
    """The server, not the prompt, is the problem: ``error`` says why."""

    error: OllamactlError


def _server_fault(error: OllamactlError, client: Client) -> _ServerFault | None:
    """Whether ``error`` puts the server out of the run (its items then go elsewhere).

    Refused credentials, TLS, the model gone from the server; a failed connection when the
    server does not answer ``/api/version`` either (a connection can also fail because the
    server closed a kept-alive one at the wrong moment: then the prompt is tried again).
    """
    if isinstance(error, (ModelNotFound, AuthFailed, TLSFailed)):
        return _ServerFault(error)
    if isinstance(error, ConnectionFailed) and not isinstance(error, (StreamBroken, ServerTimeout)):
        try:
            client.version()
        except OllamactlError:
            return _ServerFault(error)
    return None


def _transient(error: OllamactlError) -> bool:
    """Errors worth another try: a failed, broken or silent connection, a 5xx answer."""
    if isinstance(error, ConnectionFailed):
        return True
    return isinstance(error, APIError) and error.status is not None and error.status >= 500
