struct Counter(u64);

impl Counter {
    #[cachex::cached(name = "c")]
    fn next(&mut self, step: u64) -> u64 {
        self.0 += step;
        self.0
    }
}

fn main() {}
