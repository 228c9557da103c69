//! Response bodies written on a blocking thread: tar archives of folders and log files, produced
//! as they are read and sent in chunks through a bounded channel, so no download is held in
//! memory and a slow client slows the writer down instead of filling memory.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::io::ReaderStream;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;
/// Chunks that may wait for the client; the writer blocks when they are all taken.
const CHUNKS_IN_FLIGHT: usize = 4;

/// A body that `write` fills on a blocking thread. An error while writing ends the body with
/// that error, so the client sees a broken transfer rather than a short archive; `what` names
/// the download in the log line about it.
pub(crate) fn streamed<F>(what: String, write: F) -> Body
where
    F: FnOnce(&mut ChannelWriter) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let result = write(&mut writer).and_then(|()| writer.flush());
        match result {
            Ok(()) => {}
            // The client went away; nobody is left to tell.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                tracing::debug!(download = %what, "client left before the end of a download");
            }
            Err(e) => {
                tracing::warn!(download = %what, error = %e, "download ended early");
                let _ = writer.tx.blocking_send(Err(e));
            }
        }
    });
    let reader = ChannelReader {
        rx,
        chunk: Bytes::new(),
    };
    Body::from_stream(ReaderStream::with_capacity(reader, CHUNK))
}

/// The writing end: buffers to [`CHUNK`] and sends, blocking while the channel is full.
pub(crate) struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The reading end, as the `AsyncRead` that `ReaderStream` turns into a body.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    /// What is left of the chunk being read.
    chunk: Bytes,
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.chunk.is_empty() {
            match ready!(self.rx.poll_recv(cx)) {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                // The writer is done: end of the body.
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = buf.remaining().min(self.chunk.len());
        let taken = self.chunk.split_to(n);
        buf.put_slice(&taken);
        Poll::Ready(Ok(()))
    }
}
