//! What a per-shape cache keeps (CSS inlining in `render::inline`, MJML compilation
//! in `render::mjml_shape`): per shape key, the work done on its first email, or
//! `None` when that shape must be done in full every time; a byte budget per process;
//! and per template, a run of new shapes that turns the cache off for a while.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use foldhash::fast::RandomState;

/// Shapes (keys and values) kept per process before a cache starts over.
const CACHE_BYTES: usize = 4 << 20;
/// After this many new shapes of a template in a row...
pub(crate) const MISS_RUN: u32 = 32;
/// ...this many of the template's emails skip the cache.
const SKIP_AFTER_MISS_RUN: u32 = 256;

struct State<V> {
    /// With the bytes the entry was counted for. A key is a whole document's shape
    /// (kilobytes): foldhash, seeded per process, hashes it several times faster than
    /// SipHash.
    shapes: HashMap<String, (Option<Arc<V>>, usize), RandomState>,
    bytes: usize,
    /// Per template: a template whose shape changes with every email (a per-recipient
    /// value where the key keeps values) gains nothing from the cache and pays for it.
    runs: HashMap<String, Run, RandomState>,
}

impl<V> Default for State<V> {
    fn default() -> Self {
        State { shapes: HashMap::default(), bytes: 0, runs: HashMap::default() }
    }
}

#[derive(Default)]
struct Run {
    /// New shapes in a row.
    misses: u32,
    /// Emails left to skip the cache after such a run.
    skip: u32,
}

/// Shape key to the work of its first email.
pub(crate) struct ShapeMemo<V> {
    state: Mutex<Option<State<V>>>,
    /// `MISS_RUN`; tests that count on hits use a memo without it.
    miss_run: u32,
}

impl<V> ShapeMemo<V> {
    pub(crate) const fn new(miss_run: u32) -> Self {
        ShapeMemo { state: Mutex::new(None), miss_run }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State<V>) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(state.get_or_insert_with(State::default))
    }

    pub(crate) fn forget(&self) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether this email of `template` skips the cache (after a run of new shapes).
    pub(crate) fn skips(&self, template: &str) -> bool {
        self.with(|s| match s.runs.get_mut(template) {
            Some(run) if run.skip > 0 => {
                run.skip -= 1;
                true
            }
            _ => false,
        })
    }

    /// The shape's entry: `Some(None)` for a shape done in full every time, `None` for
    /// a shape not seen yet.
    pub(crate) fn get(&self, key: &str, template: &str) -> Option<Option<Arc<V>>> {
        self.with(|s| {
            let found = s.shapes.get(key).map(|(value, _)| value.clone());
            if found.is_some()
                && let Some(run) = s.runs.get_mut(template)
            {
                run.misses = 0;
            }
            found
        })
    }

    /// Keeps a new shape's entry, `bytes` being what its value holds. Counts a miss of
    /// `template`; at the end of a run of misses, keeps nothing and skips instead.
    pub(crate) fn insert(&self, mut key: String, template: &str, value: Option<Arc<V>>, bytes: usize) {
        key.shrink_to_fit();
        self.with(|s| {
            let run = s.runs.entry(template.to_owned()).or_default();
            run.misses += 1;
            if run.misses >= self.miss_run {
                *run = Run { misses: 0, skip: SKIP_AFTER_MISS_RUN };
                return;
            }
            let bytes = key.len() + bytes;
            if bytes > CACHE_BYTES {
                return;
            }
            if s.bytes + bytes > CACHE_BYTES {
                s.shapes.clear();
                s.bytes = 0;
            }
            s.bytes += bytes;
            // Two emails of a new shape at once: the second replaces the first's.
            if let Some((_, old)) = s.shapes.insert(key, (value, bytes)) {
                s.bytes -= old;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_new_shapes_skips_the_template_and_spares_the_others() {
        let memo: ShapeMemo<u8> = ShapeMemo::new(3);
        for i in 0..2 {
            memo.insert(format!("a{i}"), "a", Some(Arc::new(1)), 1);
        }
        memo.insert("b".into(), "b", Some(Arc::new(2)), 1);
        assert!(!memo.skips("a"), "two misses: not yet a run");
        memo.insert("a2".into(), "a", Some(Arc::new(1)), 1);
        assert!(memo.get("a2", "a").is_none(), "the third miss is not kept");
        assert!(memo.skips("a"));
        assert!(!memo.skips("b"));
        assert_eq!(memo.get("b", "b").flatten().as_deref(), Some(&2));
        for _ in 1..SKIP_AFTER_MISS_RUN {
            assert!(memo.skips("a"));
        }
        assert!(!memo.skips("a"), "the skip ends");
    }

    #[test]
    fn a_hit_ends_the_run_and_a_duplicate_is_counted_once() {
        let memo: ShapeMemo<u8> = ShapeMemo::new(3);
        memo.insert("a0".into(), "a", None, 0);
        memo.insert("a1".into(), "a", Some(Arc::new(1)), 10);
        assert_eq!(memo.get("a0", "a"), Some(None));
        memo.insert("a2".into(), "a", Some(Arc::new(1)), 10);
        memo.insert("a2".into(), "a", Some(Arc::new(1)), 20);
        assert!(!memo.skips("a"), "a hit in between: no run of three");
        assert_eq!(memo.with(|s| s.bytes), 2 + (2 + 10) + (2 + 20), "the replaced entry's bytes are given back");
        // An entry over the whole budget is not kept.
        memo.insert("big".into(), "b", Some(Arc::new(1)), CACHE_BYTES);
        assert!(memo.get("big", "b").is_none());
    }
}
