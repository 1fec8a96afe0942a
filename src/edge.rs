//! The HTTP edge against stalled clients: a request body that stops arriving ends the
//! request, and the process may hold as many connections as the system allows.
//!
//! actix bounds the time for a request's headers (`client_request_timeout`) and idle
//! keep-alive connections, but not a body: a client that announces 1,000 bytes, sends
//! 200 and stops would hold its connection (an open file) until it gives up. Every
//! request's body is read through [`PausingBody`], which fails once no byte arrived for
//! `http.body_timeout_secs`; the handler answers 408 and actix closes the connection,
//! since the body was not read to its end.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;

/// The text of the error a paused body ends with (the HTTP edge answers 408 with it).
pub const BODY_PAUSED: &str = "the request body stopped arriving";

/// A request body that fails when no byte arrived for `pause`.
pub struct PausingBody {
    inner: Payload,
    pause: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    ended: bool,
}

impl PausingBody {
    /// Wraps `inner`; the first byte must come within `pause` from now.
    pub fn new(inner: Payload, pause: Duration) -> Self {
        PausingBody {
            inner,
            pause,
            timer: Box::pin(tokio::time::sleep(pause)),
            ended: false,
        }
    }
}

impl Stream for PausingBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let next = tokio::time::Instant::now() + this.pause;
                this.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(other) => {
                this.ended = true;
                Poll::Ready(other)
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.ended = true;
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "{BODY_PAUSED}: nothing came for {} s (http.body_timeout_secs)",
                            this.pause.as_secs()
                        ),
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Puts the request's body behind a [`PausingBody`].
pub fn limit_body_pauses(req: &mut ServiceRequest, pause: Duration) {
    let (_, payload) = req.parts_mut();
    let inner = std::mem::replace(payload, Payload::None);
    if matches!(inner, Payload::None) {
        return;
    }
    let body: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
        Box::pin(PausingBody::new(inner, pause));
    req.set_payload(Payload::Stream { payload: body });
}

/// Was this payload error a body that stopped arriving?
pub fn is_paused(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// The limit of open files, before and after [`raise_open_file_limit`].
#[derive(Debug, Clone, Copy)]
pub struct OpenFiles {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now.
    pub now: u64,
    /// The hard limit (what the soft one may be raised to without privileges).
    pub hard: u64,
}

/// Raises the soft limit of open files to the hard limit: every connection, stalled or
/// not, is an open file, and the common soft limit of 1,024 runs out long before the
/// machine does. (systemd: `LimitNOFILE=` in the unit, see `docs/tafel.service`.)
pub fn raise_open_file_limit() -> std::io::Result<OpenFiles> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given, which lives on this stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    // "Unlimited" is not a value the kernel takes for open files (fs.nr_open caps it).
    let target = if limit.rlim_max == libc::RLIM_INFINITY {
        1 << 20
    } else {
        limit.rlim_max
    };
    if limit.rlim_cur < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit.rlim_cur = target;
    }
    Ok(OpenFiles {
        before,
        now: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}
