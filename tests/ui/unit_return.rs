#[cachex::cached(name = "c")]
fn log(line: String) {
    println!("{line}");
}

fn main() {}
