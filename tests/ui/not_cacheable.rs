#[derive(Clone)]
pub struct Frame {
    pub rows: Vec<u32>,
}

#[cachex::cached(name = "c")]
fn load(id: u32) -> Frame {
    Frame { rows: vec![id] }
}

fn main() {}
