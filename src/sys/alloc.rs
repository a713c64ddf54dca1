//! berth's memory allocator: size classes on a bump arena, large blocks straight from mmap.
//!
//! berth is a short-lived, single-threaded process whose cost is dominated by start-up, and its
//! static musl build would otherwise use musl's malloc, which maps and unmaps pages on almost every
//! call (a third of a `berth state`'s CPU time measured with perf). Here:
//! - a request of up to [`MAX_SMALL`] bytes is rounded up to a power of two (at least 16) and served
//!   from that class's free list, or else carved from a 4 MiB arena chunk (mapped once, its pages
//!   touched only when used); a freed block goes back to its class's list, so loops (`events`, a
//!   terminal relay) reuse memory instead of growing;
//! - a larger request is its own anonymous mapping, grown in place or moved by `mremap` (no copy of
//!   a big vector's contents when it doubles) and unmapped when freed.
//!
//! Alignment: a small block of class `c` is aligned to `min(c, 4096)`, and `c` is at least the
//! requested alignment; mappings are page-aligned. A request aligned to more than a page fails (berth
//! makes none). A spin lock makes it sound should a thread ever allocate; berth has none.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

const PAGE: usize = 4096;
const MIN_CLASS: usize = 16;
/// The largest small block (a power of two).
pub const MAX_SMALL: usize = 64 * 1024;
const CLASSES: usize = (MAX_SMALL.trailing_zeros() - MIN_CLASS.trailing_zeros() + 1) as usize;
const CHUNK: usize = 4 * 1024 * 1024;

struct State {
    /// Next free byte of the current chunk, and its end.
    next: usize,
    end: usize,
    /// Free lists by class: each free block's first word points to the next one.
    free: [*mut u8; CLASSES],
}

/// The global allocator (`#[global_allocator]` in main.rs).
#[derive(Debug)]
pub struct Arena {
    lock: AtomicBool,
    state: UnsafeCell<State>,
}

// SAFETY: every access to `state` happens with `lock` held (see `with`), so sharing is sound.
unsafe impl Sync for Arena {}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena {
    /// An empty arena; its first small request maps a chunk.
    pub const fn new() -> Arena {
        Arena {
            lock: AtomicBool::new(false),
            state: UnsafeCell::new(State {
                next: 0,
                end: 0,
                free: [ptr::null_mut(); CLASSES],
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: the lock is held, so this is the only reference to the state until it is released.
        let r = f(unsafe { &mut *self.state.get() });
        self.lock.store(false, Ordering::Release);
        r
    }
}

/// The class index and block size of a small layout, or None for a large one.
fn class(layout: Layout) -> Option<(usize, usize)> {
    let want = layout.size().max(layout.align()).max(MIN_CLASS);
    if want > MAX_SMALL {
        return None;
    }
    let size = want.next_power_of_two();
    Some((
        (size.trailing_zeros() - MIN_CLASS.trailing_zeros()) as usize,
        size,
    ))
}

fn pages(size: usize) -> usize {
    size.max(1).div_ceil(PAGE) * PAGE
}

fn map(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address the kernel chooses aliases no Rust object.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

impl State {
    fn small(&mut self, idx: usize, size: usize) -> *mut u8 {
        let head = self.free[idx];
        if !head.is_null() {
            // SAFETY: a block on the free list is at least 16 bytes, 16-aligned, owned by the list,
            // and its first word was written by `release` (the next block or null).
            self.free[idx] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let align = size.min(PAGE);
        let mut start = self.next.next_multiple_of(align);
        if self.next == 0 || start + size > self.end {
            let chunk = map(CHUNK);
            if chunk.is_null() {
                return ptr::null_mut();
            }
            self.next = chunk as usize;
            self.end = self.next + CHUNK;
            start = self.next.next_multiple_of(align);
        }
        self.next = start + size;
        start as *mut u8
    }

    fn release(&mut self, p: *mut u8, idx: usize) {
        // SAFETY: `p` is a block of this class that the caller gives up; it is at least 16 bytes and
        // 16-aligned, so its first word can hold the list link.
        unsafe { p.cast::<*mut u8>().write(self.free[idx]) };
        self.free[idx] = p;
    }
}

// SAFETY: blocks handed out never overlap (each comes from the bump pointer once, or from a free list
// it was returned to), are at least `layout.size()` bytes and aligned as the module comment says;
// large blocks are whole mappings of `pages(size)` bytes, unmapped only by `dealloc`/`realloc` with
// the same layout, which GlobalAlloc's contract guarantees.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > PAGE {
            return ptr::null_mut();
        }
        match class(layout) {
            Some((idx, size)) => self.with(|s| s.small(idx, size)),
            None => map(pages(layout.size())),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if class(layout).is_none() {
            // A fresh anonymous mapping is already zero: no page is touched.
            // SAFETY: forwarded with the caller's layout.
            return unsafe { self.alloc(layout) };
        }
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { self.alloc(layout) };
        if !p.is_null() {
            // SAFETY: `p` points to at least `layout.size()` writable bytes just allocated.
            unsafe { ptr::write_bytes(p, 0, layout.size()) };
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match class(layout) {
            Some((idx, _)) => self.with(|s| s.release(p, idx)),
            // SAFETY: a large block is a whole mapping of pages(size) bytes made by `map` or mremap.
            None => unsafe {
                libc::munmap(p.cast(), pages(layout.size()));
            },
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees new_size, rounded to the alignment, does not overflow isize.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new)) {
            // Same class: the block already has room.
            (Some((a, _)), Some((b, _))) if a == b => p,
            (None, None) => {
                let (old_len, new_len) = (pages(layout.size()), pages(new_size));
                if old_len == new_len {
                    return p;
                }
                // SAFETY: `p` is a whole mapping of old_len bytes; MREMAP_MAYMOVE may move it, and
                // the old address is not used again on success.
                let q = unsafe { libc::mremap(p.cast(), old_len, new_len, libc::MREMAP_MAYMOVE) };
                if q == libc::MAP_FAILED {
                    ptr::null_mut()
                } else {
                    q.cast()
                }
            }
            _ => {
                // SAFETY: forwarded with a valid layout.
                let q = unsafe { self.alloc(new) };
                if !q.is_null() {
                    // SAFETY: both blocks are valid for the smaller size and do not overlap (q is new).
                    unsafe {
                        ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                        self.dealloc(p, layout);
                    }
                }
                q
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_to_powers_of_two_and_alignment() {
        let l = |s, a| Layout::from_size_align(s, a).unwrap();
        assert_eq!(class(l(1, 1)), Some((0, 16)));
        assert_eq!(class(l(17, 8)), Some((1, 32)));
        assert_eq!(class(l(8, 64)), Some((2, 64)));
        assert_eq!(class(l(MAX_SMALL, 8)), Some((CLASSES - 1, MAX_SMALL)));
        assert_eq!(class(l(MAX_SMALL + 1, 8)), None);
    }

    #[test]
    fn blocks_are_aligned_distinct_reused_and_resizable() {
        let a = Arena::new();
        let mut seen = Vec::new();
        // SAFETY: every block is used within its layout and freed once, with that layout.
        unsafe {
            for size in [
                1usize,
                16,
                24,
                100,
                4096,
                5000,
                MAX_SMALL,
                MAX_SMALL + 1,
                1 << 20,
            ] {
                for align in [1usize, 8, 64, 4096] {
                    let l = Layout::from_size_align(size, align).unwrap();
                    let p = a.alloc(l);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    ptr::write_bytes(p, 0xab, size);
                    seen.push((p, l));
                }
            }
            let mut starts: Vec<usize> = seen.iter().map(|(p, _)| *p as usize).collect();
            starts.sort();
            starts.dedup();
            assert_eq!(starts.len(), seen.len(), "two live blocks share an address");
            let (p, l) = seen[2];
            a.dealloc(p, l);
            assert_eq!(a.alloc(l), p, "a freed block is reused by its class");
            for (p, l) in seen {
                a.dealloc(p, l);
            }
            // Growing keeps the contents, through the small and large paths and mremap.
            let l = Layout::from_size_align(10, 8).unwrap();
            let mut p = a.alloc(l);
            ptr::copy_nonoverlapping(b"0123456789".as_ptr(), p, 10);
            let mut size = 10;
            for new_size in [20, 1000, MAX_SMALL * 2, 1 << 22, 50] {
                p = a.realloc(p, Layout::from_size_align(size, 8).unwrap(), new_size);
                assert!(!p.is_null());
                assert_eq!(std::slice::from_raw_parts(p, 10), b"0123456789");
                size = new_size;
            }
            a.dealloc(p, Layout::from_size_align(size, 8).unwrap());
            let z = a.alloc_zeroed(Layout::from_size_align(1 << 20, 8).unwrap());
            assert!(
                std::slice::from_raw_parts(z, 1 << 20)
                    .iter()
                    .all(|b| *b == 0)
            );
            a.dealloc(z, Layout::from_size_align(1 << 20, 8).unwrap());
        }
    }
}
