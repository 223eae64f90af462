//! Containing a panic in a third-party decoder: [`contain`] runs a closure and turns a panic
//! inside it into an error message, so that a hostile file that trips a bug in a decoder we
//! do not own (e.g. an assertion in a JPEG library's IDCT) is refused like any other damaged
//! file instead of aborting the process. While a closure runs contained, [`is_contained`] is
//! true on its thread: the binary's panic hook stays silent for such panics.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is inside [`contain`].
pub fn is_contained() -> bool {
    CONTAINED.with(Cell::get)
}

/// Run `f`; a panic inside it becomes `Err` with the panic's message.
pub fn contain<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let before = CONTAINED.with(|c| c.replace(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(before));
    r.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_and_the_flag_is_restored() {
        assert!(!is_contained());
        assert_eq!(contain(|| 7), Ok(7));
        let e = contain(|| -> u8 {
            assert!(is_contained());
            panic!("decoder bug {}", 3)
        });
        assert_eq!(e, Err("decoder bug 3".to_string()));
        assert!(!is_contained());
        let nested = contain(|| contain(|| -> () { panic!("inner") }).unwrap_err());
        assert_eq!(nested.as_deref(), Ok("inner"));
        assert!(!is_contained());
    }
}
