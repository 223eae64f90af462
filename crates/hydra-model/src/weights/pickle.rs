//! A pickle reader that never executes code.
//!
//! It understands the opcodes of protocols 0–5 needed for plain data (numbers, strings,
//! bytes, lists, tuples, dicts, sets) and a short allow-list of callables that PyTorch uses to
//! describe tensors (`torch._utils._rebuild_tensor_v2`, `collections.OrderedDict`, the
//! `torch.*Storage` types, ...). Those callables are never called: they are recognised by name
//! and turned into data. Any other global (`os.system`, `builtins.eval`, a user class, ...) is
//! refused with an error naming it, before anything is built from it.
//!
//! Limits keep a hostile file from using unbounded memory, time or stack: the stack, memo and
//! container sizes are bounded by the input length; string and byte lengths are checked
//! against the remaining input before allocation; containers may nest at most [`MAX_DEPTH`]
//! levels and never inside themselves; and nothing walks a value recursively (building,
//! checking and dropping use explicit stacks).
//!
//! - [`value`]: the values and the allow-list;
//! - `machine`: the opcodes;
//! - `graph`: the depth and cycle check, and freeing what a pickle leaves behind.

mod graph;
mod machine;
pub mod value;

pub use graph::MAX_DEPTH;
pub use machine::unpickle;
pub use value::{as_tensor_dict, describe_entries, dict_get, AllowedGlobal, PickleError, StorageDType, StorageRef, TensorRef, Value};

#[cfg(test)]
mod tests {
    use super::*;

    fn no_pid(_: Value) -> Result<Value, PickleError> {
        Err(PickleError("no persistent ids expected".into()))
    }

    fn load(bytes: &[u8]) -> Result<Value, PickleError> {
        let mut pos = 0;
        unpickle(bytes, &mut pos, &mut no_pid)
    }

    #[test]
    fn reads_a_protocol2_dict_of_ints() {
        // pickle.dumps({'a': 1, 'b': 300}, protocol=2)
        let bytes = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02M,\x01u.";
        let v = load(bytes).unwrap();
        assert!(matches!(dict_get(&v, "a"), Some(Value::Int(1))));
        assert!(matches!(dict_get(&v, "b"), Some(Value::Int(300))));
    }

    #[test]
    fn refuses_os_system_without_running_it() {
        // pickle.dumps of an object whose __reduce__ is (os.system, ('echo hi',)), protocol 0
        let bytes = b"cposix\nsystem\np0\n(Vecho hi\np1\ntp2\nRp3\n.";
        let e = load(bytes).unwrap_err();
        assert!(e.0.contains("posix.system"), "{e}");
        assert!(e.0.contains("never executes"), "{e}");
    }

    #[test]
    fn refuses_builtins_eval_via_stack_global() {
        let bytes = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.";
        let e = load(bytes).unwrap_err();
        assert!(e.0.contains("builtins.eval"), "{e}");
    }

    #[test]
    fn truncated_input_is_an_error() {
        let bytes = b"\x80\x02}q\x00(X\x05\x00\x00\x00ab";
        let e = load(bytes).unwrap_err();
        assert!(e.0.contains("truncated"), "{e}");
    }

    #[test]
    fn memo_shares_mutated_containers() {
        // d = {}; l = [d, d]; d['x'] = 1 → pickled as list with memoised dict
        // ]q\x00(}q\x01h\x01e  then setitem on memo 1 — emulate: EMPTY_LIST, MARK, EMPTY_DICT,
        // BINPUT 1, BINGET 1, APPENDS, then BINGET 1, 'x', 1, SETITEM, POP, STOP.
        let bytes = b"\x80\x02](}q\x01h\x01eh\x01X\x01\x00\x00\x00xK\x01s0.";
        let v = load(bytes).unwrap();
        let Value::List(l) = &v else { panic!() };
        let l = l.borrow();
        assert_eq!(l.len(), 2);
        for item in l.iter() {
            assert!(matches!(dict_get(item, "x"), Some(Value::Int(1))));
        }
    }

    #[test]
    fn big_long1_is_kept_as_bytes() {
        // PyTorch's legacy magic number 0x1950a86a20f9469cfc6c as LONG1.
        let bytes = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.";
        match &load(bytes).unwrap() {
            Value::BigInt(b) => assert_eq!(*b, vec![0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]),
            other => panic!("{other:?}"),
        }
    }

    /// Run `f` on a thread with the default 2 MiB stack: a recursion per level would overflow.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(f).join().expect("no stack overflow or panic")
    }

    /// A pickle of `n` containers, each inside the previous: `first` opens the outermost,
    /// `open` each further one, `close` (n - 1 times) puts each inside its parent.
    fn deep(first: &[u8], open: &[u8], close: &[u8], n: usize) -> Vec<u8> {
        let mut b = b"\x80\x02".to_vec();
        b.extend_from_slice(first);
        for _ in 1..n {
            b.extend_from_slice(open);
        }
        for _ in 1..n {
            b.extend_from_slice(close);
        }
        b.push(b'.');
        b
    }

    fn deep_lists(n: usize) -> Vec<u8> {
        deep(b"]", b"]", b"a", n)
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let payloads = [
            deep_lists(100_000),
            // MARK×n, an empty tuple, then TUPLE×n.
            {
                let mut b = deep(b"(", b"(", b"t", 100_000);
                b.pop();
                b.extend_from_slice(b"t.");
                b
            },
            // d0 = {}, then `1: {}` n - 1 times, then SETITEM n - 1 times.
            deep(b"}", b"K\x01}", b"s", 100_000),
            // Tuples of one: EMPTY_TUPLE, then TUPLE1 n - 1 times.
            deep(b")", b"", b"\x85", 100_000),
        ];
        for b in payloads {
            let e = on_small_stack(move || load(&b).map(|_| ()).unwrap_err());
            assert!(e.0.contains("nested more than 1000 levels"), "{e}");
        }
        // Exactly the limit is fine; one more is not.
        assert!(on_small_stack(|| load(&deep_lists(MAX_DEPTH)).is_ok()));
        assert!(on_small_stack(|| load(&deep_lists(MAX_DEPTH + 1)).is_err()));
    }

    #[test]
    fn deep_garbage_left_in_the_memo_is_freed_without_recursion() {
        // 100 000 nested lists, memoised, popped; the result is a small int.
        let mut b = deep_lists(100_000);
        b.pop();
        b.extend_from_slice(b"q\x000K\x07.");
        let v = on_small_stack(move || matches!(load(&b), Ok(Value::Int(7))));
        assert!(v);
    }

    #[test]
    fn containers_that_hold_themselves_are_refused() {
        // l = []; l.append(l)
        let e = load(b"\x80\x02]q\x00h\x00a.").unwrap_err();
        assert!(e.0.contains("holds itself"), "{e}");
        // Through a tuple: l = []; l.append((l,))
        let e = load(b"\x80\x02]q\x00h\x00\x85a.").unwrap_err();
        assert!(e.0.contains("holds itself"), "{e}");
    }

    #[test]
    fn shared_containers_are_checked_once() {
        // x0 = []; x(i+1) = [x(i), x(i)]: 2^60 paths through 61 containers.
        let mut b = b"\x80\x02]".to_vec();
        for _ in 0..60 {
            b.extend_from_slice(b"q\x00](h\x00h\x00e");
        }
        b.push(b'.');
        let t = std::time::Instant::now();
        let v = load(&b).unwrap();
        assert!(t.elapsed().as_secs() < 2);
        // The bounded Debug does not print 2^60 items either.
        assert!(format!("{v:?}").len() < 10_000);
    }
}

