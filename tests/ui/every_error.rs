// Every mistake is reported at once, and the function is kept as written: its callers compile.
#[cachex::cached(name = "c", ttl = "5m", skip = "clinet")]
fn fetch(items: &mut Vec<u32>, client: &str) -> usize {
    items.push(client.len() as u32);
    items.len()
}

#[cachex::singleton(eager)]
fn client() -> String {
    "client".to_owned()
}

fn main() {
    let mut items = Vec::new();
    let length: usize = fetch(&mut items, "x");
    let client: String = client();
    println!("{length} {client}");
}
