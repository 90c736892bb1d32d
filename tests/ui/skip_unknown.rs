#[cachex::cached(name = "c", skip = "client")]
fn fetch(id: u32, _clinet: &str) -> u32 {
    id
}

fn main() {
    fetch(1, "x");
}
