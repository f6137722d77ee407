//! Build script shared by every Lambda binary (and the bench's floor, so the
//! comparison stays like for like): link the executable at a fixed address
//! (`-no-pie`) on Linux.
//!
//! Why: a position-independent Rust executable carries ~20,000 relative
//! relocations that ld.so applies at every start, copying ~85 pages of
//! `.data.rel.ro` on write. A fixed-address executable has none, so each
//! cold start takes ~100 fewer page faults and ~0.24M fewer instructions
//! (`make bench`'s page-fault column; callgrind). The trade-off: the
//! executable's own code is not address-randomised (libraries, stack, heap
//! and mmap still are), which is how Go builds Lambda binaries by default.
//! Delete the `build = ...` line of a function's Cargo.toml to go back.
//!
//! The code stays position-independent: only the final link of this
//! package's binaries changes, never proc-macros or build scripts (a
//! workspace-wide `-C relocation-model=static` breaks proc-macro dylibs).

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
