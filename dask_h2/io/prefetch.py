"""Read a binary stream ahead on a background thread, so that decompression (ISA-L, bz2 and
lzma all release the GIL) runs on one core while the reader parses and narrows on another."""
from __future__ import annotations

import io
import queue
import threading
from typing import BinaryIO

BLOCK = 1 << 20  # bytes read ahead at a time
DEPTH = 4  # blocks read ahead at most


class Prefetched(io.RawIOBase):
    """``stream`` read ahead by a thread in blocks of ``BLOCK`` bytes, at most ``DEPTH`` blocks ahead.

    An exception of the stream (a corrupt or truncated file) is raised by the read that
    reaches it. Wrap in :class:`io.BufferedReader` for small reads.
    """

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._blocks: queue.Queue[bytes | BaseException] = queue.Queue(DEPTH)
        self._current = memoryview(b"")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="dask-h2-prefetch", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        item: bytes | BaseException = b""
        while not self._stop.is_set():
            try:
                item = self._stream.read(BLOCK)
            except BaseException as exc:  # handed to the reader, which raises it
                item = exc
            while not self._stop.is_set():
                try:
                    self._blocks.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not isinstance(item, bytes) or not item:
                return

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        if not self._current:
            item = self._blocks.get()
            if isinstance(item, BaseException):
                self._blocks.put(item)  # every later read fails the same way
                raise item
            if not item:
                self._blocks.put(item)
                return 0
            self._current = memoryview(item)
        size = min(len(buffer), len(self._current))
        buffer[:size] = self._current[:size]
        self._current = self._current[size:]
        return size

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._stream.close()
        super().close()
