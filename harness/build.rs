//! `tests/scenarios.rs` turns every file under `scenarios/` into a test case
//! when it is compiled (rstest's `#[files]`). Tell cargo to recompile when a
//! scenario is added, removed or changed, or `cargo test` would silently keep
//! running the old list.

fn main() {
    println!("cargo:rerun-if-changed=../scenarios");
    println!("cargo:rerun-if-changed=tests/fixtures");
}
