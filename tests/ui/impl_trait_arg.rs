#[cachex::cached(name = "c")]
fn length(text: impl AsRef<str>) -> usize {
    text.as_ref().len()
}

fn main() {}
