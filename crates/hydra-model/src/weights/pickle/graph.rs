//! A decoded value seen as a graph of containers: its nesting depth is bounded and it holds
//! no cycle, checked without recursion; and containers left over from a refused or finished
//! pickle are emptied, so that a container holding itself is freed too.

use std::collections::HashMap;
use std::rc::{Rc, Weak};

use super::value::{PickleError, SharedList, SharedPairs, Value};

/// Deepest nesting of containers accepted (a state dict nests three or four).
pub const MAX_DEPTH: usize = 1000;

/// The identity of a container (its allocation), `None` for other values.
fn node_id(v: &Value) -> Option<usize> {
    match v {
        Value::Tuple(t) => Some(Rc::as_ptr(t) as *const () as usize),
        Value::List(l) | Value::Set(l) => Some(Rc::as_ptr(l) as *const () as usize),
        Value::Dict(d) => Some(Rc::as_ptr(d) as *const () as usize),
        _ => None,
    }
}

/// Child `i` of a container (a dict's keys and values alternate).
fn child(v: &Value, i: usize) -> Option<Value> {
    match v {
        Value::Tuple(t) => t.get(i).cloned(),
        Value::List(l) | Value::Set(l) => l.borrow().get(i).cloned(),
        Value::Dict(d) => d.borrow().get(i / 2).map(|(k, v)| if i % 2 == 0 { k.clone() } else { v.clone() }),
        _ => None,
    }
}

enum Mark {
    /// On the current path: meeting it again is a cycle.
    Open,
    /// Finished, with the number of container levels it spans.
    Done(usize),
}

struct Frame {
    node: Value,
    id: usize,
    next: usize,
    height: usize,
}

fn too_deep() -> PickleError {
    PickleError(format!("containers nested more than {MAX_DEPTH} levels deep; refused (a PyTorch checkpoint nests a few)"))
}

/// Check that `root` nests at most [`MAX_DEPTH`] containers and that no container holds
/// itself. Each container is visited once (shared ones too), with an explicit stack.
/// Returns the identities of the containers reachable from `root`.
pub fn check(root: &Value) -> Result<Reachable, PickleError> {
    let mut marks: HashMap<usize, Mark> = HashMap::new();
    let Some(id) = node_id(root) else { return Ok(Reachable(marks)) };
    marks.insert(id, Mark::Open);
    let mut path = vec![Frame { node: root.clone(), id, next: 0, height: 1 }];
    while let Some(top) = path.last_mut() {
        let Some(c) = child(&top.node, top.next) else {
            let done = path.pop().expect("non-empty");
            marks.insert(done.id, Mark::Done(done.height));
            if let Some(parent) = path.last_mut() {
                parent.height = parent.height.max(done.height + 1);
            }
            continue;
        };
        top.next += 1;
        let Some(cid) = node_id(&c) else { continue };
        match marks.get(&cid) {
            Some(Mark::Open) => {
                return Err(PickleError("a container holds itself (a recursive structure); refused (a checkpoint holds none)".into()));
            }
            Some(&Mark::Done(h)) => {
                if path.len() + h > MAX_DEPTH {
                    return Err(too_deep());
                }
                let top = path.last_mut().expect("non-empty");
                top.height = top.height.max(h + 1);
            }
            None => {
                if path.len() >= MAX_DEPTH {
                    return Err(too_deep());
                }
                marks.insert(cid, Mark::Open);
                path.push(Frame { node: c, id: cid, next: 0, height: 1 });
            }
        }
    }
    Ok(Reachable(marks))
}

/// The containers reachable from a checked root.
#[derive(Default)]
pub struct Reachable(HashMap<usize, Mark>);

impl Reachable {
    fn contains(&self, id: usize) -> bool {
        self.0.contains_key(&id)
    }
}

/// Every mutable container a pickle created (only these can close a cycle).
#[derive(Default)]
pub struct Registry {
    lists: Vec<Weak<std::cell::RefCell<Vec<Value>>>>,
    dicts: Vec<Weak<std::cell::RefCell<Vec<(Value, Value)>>>>,
}

impl Registry {
    /// Remember a new list or set.
    pub fn list(&mut self, l: &SharedList) {
        self.lists.push(Rc::downgrade(l));
    }

    /// Remember a new dict.
    pub fn dict(&mut self, d: &SharedPairs) {
        self.dicts.push(Rc::downgrade(d));
    }

    /// Empty every container still alive that `keep` does not reach: they are garbage once
    /// the pickle is read, and emptying them frees any that hold themselves.
    pub fn clear_except(self, keep: &Reachable) {
        for w in self.lists {
            if let Some(l) = w.upgrade().filter(|l| !keep.contains(Rc::as_ptr(l) as *const () as usize)) {
                let items = l.try_borrow_mut().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
                drop(items);
            }
        }
        for w in self.dicts {
            if let Some(d) = w.upgrade().filter(|d| !keep.contains(Rc::as_ptr(d) as *const () as usize)) {
                let pairs = d.try_borrow_mut().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
                drop(pairs);
            }
        }
    }
}
