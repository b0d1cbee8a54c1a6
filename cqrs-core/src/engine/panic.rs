//! Panics in user code (handlers, `Apply` impls) caught where the engine
//! calls it, so that they come back as errors instead of unwinding through
//! the caller of `execute`.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::task::Poll;

/// Runs `f`, catching a panic as its message.
///
/// Unwind safety is asserted: whatever `f` touched (an aggregate's state
/// half-way through an `Apply`) is dropped by the caller after a panic,
/// never used again.
pub(super) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(message)
}

/// Makes a future with `make` and awaits it, catching a panic in `make`
/// (a sync handler runs there: the generated `dispatch` calls it and wraps
/// the result in a ready future) or in any poll, as its message. Pinned on
/// the stack, not boxed: no allocation per command.
pub(super) async fn catch_future<F: Future>(make: impl FnOnce() -> F) -> Result<F::Output, String> {
    let mut future = pin!(catch(make)?);
    std::future::poll_fn(move |cx| {
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(message(payload))),
        }
    })
    .await
}

/// The text a panic was raised with (`panic!("..")` gives a `&str` or a
/// `String`; anything else has none to show).
fn message(payload: Box<dyn Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        String::from("(a panic without a message)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(catch(|| 1), Ok(1));
        assert_eq!(catch(|| -> u8 { panic!("boom") }), Err("boom".to_owned()));
        let n = 7;
        assert_eq!(
            catch(|| -> u8 { panic!("boom {n}") }),
            Err("boom 7".to_owned())
        );
        assert_eq!(
            catch(|| std::panic::panic_any(5_u8)),
            Err("(a panic without a message)".to_owned())
        );
    }

    #[tokio::test]
    async fn a_panic_in_a_later_poll_is_caught_too() {
        let ok = catch_future(|| async { 2 }).await;
        assert_eq!(ok, Ok(2));
        let early = catch_future(|| -> std::future::Ready<()> { panic!("before the future") });
        assert_eq!(early.await, Err("before the future".to_owned()));
        let late = catch_future(|| async {
            tokio::task::yield_now().await;
            panic!("after a yield")
        })
        .await;
        assert_eq!(late, Err::<(), _>("after a yield".to_owned()));
    }
}
