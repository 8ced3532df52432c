//! A connection's socket as hyper sees it, with what hyper does not do itself (issue 23 item
//! 1): a write the client does not take within `write_timeout_seconds` fails the connection
//! (hyper has no write timeout: a client that pipelines requests and never reads its answers
//! held its slot for ever), and reads are counted so the service can tell requests that
//! arrived together (pipelined) from one request at a time.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// What the socket and the service share about one connection.
#[derive(Debug, Default)]
pub(crate) struct Pipeline {
    /// Reads that returned bytes.
    reads: AtomicU64,
    /// `reads` when the last request was counted.
    seen: AtomicU64,
    /// Requests counted since `reads` last moved.
    burst: AtomicUsize,
}

impl Pipeline {
    /// Counts a request; returns how many requests arrived since the client last sent
    /// anything, this one included: 1 for a client that waits for each answer, more for one
    /// that pipelines. hyper answers one request at a time, so these calls never overlap.
    pub(crate) fn request(&self) -> usize {
        let reads = self.reads.load(Ordering::Relaxed);
        if self.seen.swap(reads, Ordering::Relaxed) == reads {
            self.burst.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.burst.store(1, Ordering::Relaxed);
            1
        }
    }
}

/// A TCP stream whose stalled writes time out.
pub(crate) struct ConnIo {
    inner: TcpStream,
    write_timeout: Duration,
    /// Armed when a write could not go on (the client's window is full); cleared when hyper
    /// flushes with its buffer emptied (every answer written).
    stall: Option<Pin<Box<Sleep>>>,
    pipeline: Arc<Pipeline>,
    /// Called once when a stalled write times out.
    on_timeout: Option<Box<dyn FnOnce() + Send>>,
}

impl ConnIo {
    pub(crate) fn new(
        inner: TcpStream,
        write_timeout: Duration,
        pipeline: Arc<Pipeline>,
        on_timeout: impl FnOnce() + Send + 'static,
    ) -> Self {
        Self {
            inner,
            write_timeout,
            stall: None,
            pipeline,
            on_timeout: Some(Box::new(on_timeout)),
        }
    }

    /// A write is pending: start (or check) the stall deadline. An error once it passed.
    fn stalled(&mut self, cx: &mut Context<'_>) -> io::Error {
        let timeout = self.write_timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => {
                if let Some(f) = self.on_timeout.take() {
                    f();
                }
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client did not read its answer within write_timeout_seconds",
                )
            }
            // The sleep now wakes this task at the deadline; hyper then writes again.
            Poll::Pending => io::Error::from(io::ErrorKind::WouldBlock),
        }
    }

    fn pending_write<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let e = self.stalled(cx);
        if e.kind() == io::ErrorKind::WouldBlock {
            Poll::Pending
        } else {
            Poll::Ready(Err(e))
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.pipeline.reads.fetch_add(1, Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => this.pending_write(cx),
            done => done,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.pending_write(cx),
            done => done,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                // hyper flushes the socket only once its own buffer is written out.
                this.stall = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.pending_write(cx),
            err => err,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_together_are_a_burst() {
        let p = Pipeline::default();
        p.reads.fetch_add(1, Ordering::Relaxed);
        assert_eq!(p.request(), 1);
        p.reads.fetch_add(1, Ordering::Relaxed);
        assert_eq!(p.request(), 1);
        assert_eq!(p.request(), 2);
        assert_eq!(p.request(), 3);
        p.reads.fetch_add(1, Ordering::Relaxed);
        assert_eq!(p.request(), 1);
    }
}
