// Placeholder so the manifest parses; the scheduling micro-benchmark replaces it.
fn main() {}
