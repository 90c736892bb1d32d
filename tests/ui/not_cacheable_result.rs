#[derive(Clone, serde::Serialize)]
pub struct Frame {
    pub rows: Vec<u32>,
}

#[cachex::cached(name = "c")]
async fn load(id: u32) -> Result<Frame, String> {
    Ok(Frame { rows: vec![id] })
}

#[cachex::cached(name = "c")]
fn load_sync(id: u32) -> Option<Frame> {
    Some(Frame { rows: vec![id] })
}

#[cachex::cached(name = "c")]
async fn load_plain(id: u32) -> Frame {
    Frame { rows: vec![id] }
}

fn main() {}
