//! Server-sent events: `data: {json}` events until `data: [DONE]`.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use futures_util::Stream;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Body;
use realm_protocol::ErrorBody;
use serde::de::DeserializeOwned;

use crate::{Error, describe};

/// A streamed answer: each `data:` event parsed as `T`, ending at `[DONE]`. A stream cut off
/// before `[DONE]` ends with [`Error::Connection`]; a last `data: {"error": …}` event with
/// [`Error::Api`]. Dropping it closes the HTTP connection: the server cancels the request.
pub struct SseStream<T> {
    body: Option<BoxBody<bytes::Bytes, hyper::Error>>,
    buf: BytesMut,
    ready: VecDeque<Result<T, Error>>,
    finished: bool,
    _t: PhantomData<fn() -> T>,
}

// Nothing in it is pinned structurally (the body is boxed); items sit in a plain queue.
impl<T> Unpin for SseStream<T> {}

impl<T> std::fmt::Debug for SseStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseStream").field("finished", &self.finished).finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> SseStream<T> {
    pub(crate) fn new(body: hyper::body::Incoming) -> SseStream<T> {
        SseStream {
            body: Some(body.boxed()),
            buf: BytesMut::new(),
            ready: VecDeque::new(),
            finished: false,
            _t: PhantomData,
        }
    }

    /// Parse every whole event in the buffer.
    fn parse_events(&mut self) {
        while !self.finished {
            let Some((end, sep)) = find_event_end(&self.buf) else { return };
            let event = self.buf.split_to(end);
            self.buf.advance(sep);
            let mut data = String::new();
            for line in String::from_utf8_lossy(&event).lines() {
                if let Some(d) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            if data.is_empty() {
                continue; // a comment (keep-alive) or a field we do not use
            }
            if data == "[DONE]" {
                self.finish();
                return;
            }
            match serde_json::from_str::<T>(&data) {
                Ok(v) => self.ready.push_back(Ok(v)),
                Err(e) => {
                    let err = match serde_json::from_str::<ErrorBody>(&data) {
                        Ok(b) => Error::from_http(
                            b.error
                                .code
                                .as_deref()
                                .map(crate::error::code_from_str)
                                .map_or(500, |c| c.status()),
                            None,
                            data.as_bytes(),
                        ),
                        Err(_) => Error::Protocol(format!("unreadable event: {e}")),
                    };
                    self.ready.push_back(Err(err));
                    self.finish();
                }
            }
        }
    }

    fn finish(&mut self) {
        self.finished = true;
        self.body = None; // closes the connection if anything is left unread
    }
}

/// The end of the first event in `buf` and the length of its blank-line separator.
fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

impl<T: DeserializeOwned> Stream for SseStream<T> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.ready.pop_front() {
                return Poll::Ready(Some(item));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            let Some(body) = this.body.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.buf.extend_from_slice(&data);
                        this.parse_events();
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finish();
                    return Poll::Ready(Some(Err(Error::Connection(describe(&e)))));
                }
                Poll::Ready(None) => {
                    this.finish();
                    return Poll::Ready(Some(Err(Error::Connection(
                        "the stream ended before [DONE]".into(),
                    ))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::find_event_end;

    #[test]
    fn events_end_at_a_blank_line() {
        assert_eq!(find_event_end(b"data: 1\n\ndata: 2"), Some((7, 2)));
        assert_eq!(find_event_end(b"data: 1\r\n\r\n"), Some((8, 3)));
        assert_eq!(find_event_end(b"data: 1\n"), None);
    }
}
