//! The `concierge` binary.

fn main() {
    println!("concierge {}", env!("CARGO_PKG_VERSION"));
}
