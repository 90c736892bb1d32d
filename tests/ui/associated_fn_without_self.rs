// A function without a receiver is bound as a free function (a macro cannot see the `impl`
// block around it): in an `impl` block, rustc points at the shared binding to reach through
// `Self`. Give the function a receiver, or move it out of the block.
pub struct Repo;

impl Repo {
    #[cachex::cached(name = "c")]
    fn load(id: u32) -> u32 {
        id
    }
}

fn main() {}
