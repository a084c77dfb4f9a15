//! Driving the engine's futures. The engine is written once, as async code: the CPU backend's
//! readbacks are ready at once, a GPU backend's complete when the device has mapped the data.
//! Natively the synchronous API drives them here ([`block_on`]); in the browser nothing may
//! block, so a future that is not ready at its first poll is an error there, and callers use the
//! `*_async` methods, awaited on the page's event loop.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::error::Result;

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drive a future to completion on the current thread.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// The synchronous API's driver: natively [`block_on`]; on wasm32 one poll, and a future that
/// would have to wait (a GPU readback) is an error naming the async method to use instead.
pub(crate) fn run_sync<T>(what: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = what;
        block_on(f)
    }
    #[cfg(target_family = "wasm")]
    {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(f).poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => Err(crate::error::RuntimeError::Invalid(format!(
                "{what} must wait for the GPU, which blocking code cannot do in the browser: \
                 use {what}_async"
            ))),
        }
    }
}
