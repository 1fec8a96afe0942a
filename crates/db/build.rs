//! The migrations are embedded at compile time: a new or changed migration must rebuild
//! this crate even when no Rust source changed (a merge that only adds a directory).
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
