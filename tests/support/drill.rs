//! The fleet drill: several processes of one binary read and write one tiered cache in front
//! of a "database" (a `redis-server` holding the truth, never faulted) while a fault driver
//! kills, pauses and delays the cache's servers and stops workers; every operation is logged
//! on `CLOCK_MONOTONIC` (one clock for every process of the machine) and a checker proves, over
//! the merged history, what a reader could see.
//!
//! Keys `0..16` are read through a sync `#[cached]` function and `16..32` through an async
//! one; any loop updates them (`INCR` of the truth, then `<fn>_invalidate`). Keys `32..64` are
//! written through: their one owner (a loop of one worker) `INCR`s the truth and `set`s the new
//! value; readers `get` them (falling back to the truth on a miss). A loop retries a failed
//! invalidation or `set` until it succeeds: its acknowledgement is the one that did.
//!
//! Used by `tests/fleet_drill.rs` (short runs) and `examples/fleet_drill.rs` (long runs).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cachex::{cached, CacheConfig, CacheHandle, Config, LocalConfig};

use crate::support::proxy::Proxy;
use crate::support::redis_server::{RedisCluster, RedisServer};
use crate::support::scratch_dir;

/// Set in a worker's environment: its [`WorkerSpec`], one line.
const WORKER_ENV: &str = "CACHEX_DRILL_WORKER";
const CACHE: &str = "drill";
/// Read-through keys of the sync side, then of the async side, then written-through keys.
const SYNC_KEYS: std::ops::Range<u32> = 0..16;
const ASYNC_KEYS: std::ops::Range<u32> = 16..32;
const WRITTEN_KEYS: std::ops::Range<u32> = 32..64;
/// Loops per worker: two threads (sync side) and two tasks (async side).
const LOOPS: usize = 4;
/// The cache's per-operation timeout (its invalidation channel pings every half of it).
const TIMEOUT: Duration = Duration::from_millis(500);
/// How long a worker runs before its RSS is taken as the baseline.
const WARM_UP: Duration = Duration::from_secs(2);
/// No fault is injected in the last seconds of a run, so every worker ends caught up.
const QUIET_END: Duration = Duration::from_secs(3);

/// Nanoseconds on `CLOCK_MONOTONIC`.
pub fn now() -> u64 {
    let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut time) };
    time.tv_sec as u64 * 1_000_000_000 + time.tv_nsec as u64
}

/// Where the shared cache lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// One `redis-server`, reached through a TCP proxy that delays or drops replies.
    Standalone,
    /// Three masters.
    Cluster,
    /// A directory (no invalidation channel: the bound is the tier's `ttl`).
    File,
}

impl Topology {
    fn name(self) -> &'static str {
        match self {
            Topology::Standalone => "standalone",
            Topology::Cluster => "cluster",
            Topology::File => "file",
        }
    }

    fn parse(name: &str) -> Topology {
        match name {
            "standalone" => Topology::Standalone,
            "cluster" => Topology::Cluster,
            _ => Topology::File,
        }
    }
}

/// One run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub topology: Topology,
    pub seconds: u64,
    pub seed: u64,
    pub workers: usize,
    /// Whether the fault driver runs.
    pub faults: bool,
    /// The local tier's `ttl`.
    pub local_ttl: Duration,
    /// A read that starts more than this after a write's acknowledgement must see it.
    pub bound: Duration,
}

impl Plan {
    /// Four workers under faults; a tier `ttl` of a minute where invalidations reach (so the
    /// channel, not the `ttl`, bounds staleness) and of half a second on the file backend.
    pub fn new(topology: Topology, seconds: u64, seed: u64) -> Plan {
        Plan {
            topology,
            seconds,
            seed,
            workers: 4,
            faults: true,
            local_ttl: match topology {
                Topology::File => Duration::from_millis(500),
                _ => Duration::from_secs(60),
            },
            bound: Duration::from_secs(1),
        }
    }
}

/// What a worker is told, through [`WORKER_ENV`].
struct WorkerSpec {
    id: usize,
    topology: Topology,
    /// The cache's URL, or its directory.
    target: String,
    truth: String,
    seconds: u64,
    seed: u64,
    workers: usize,
    local_ttl: Duration,
    log: PathBuf,
}

impl WorkerSpec {
    fn encode(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.id,
            self.topology.name(),
            self.target,
            self.truth,
            self.seconds,
            self.seed,
            self.workers,
            self.local_ttl.as_millis(),
            self.log.display()
        )
    }

    fn decode(line: &str) -> WorkerSpec {
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 9, "a drill worker spec: {line}");
        WorkerSpec {
            id: parts[0].parse().unwrap(),
            topology: Topology::parse(parts[1]),
            target: parts[2].to_owned(),
            truth: parts[3].to_owned(),
            seconds: parts[4].parse().unwrap(),
            seed: parts[5].parse().unwrap(),
            workers: parts[6].parse().unwrap(),
            local_ttl: Duration::from_millis(parts[7].parse().unwrap()),
            log: PathBuf::from(parts[8]),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The worker.

static TRUTH: OnceLock<redis::Client> = OnceLock::new();
static TRUTH_ASYNC: tokio::sync::OnceCell<redis::aio::MultiplexedConnection> = tokio::sync::OnceCell::const_new();

thread_local! {
    static TRUTH_CONN: std::cell::RefCell<Option<redis::Connection>> = const { std::cell::RefCell::new(None) };
}

fn truth_key(key: u32) -> String {
    format!("truth:{key}")
}

/// The truth's version of `key` (0 before its first update), blocking.
fn truth_get(key: u32) -> u64 {
    truth_query(redis::cmd("GET").arg(truth_key(key)))
        .map(|version: Option<u64>| version.unwrap_or(0))
        .expect("the truth server is never faulted")
}

fn truth_query<T: redis::FromRedisValue>(cmd: &redis::Cmd) -> redis::RedisResult<T> {
    TRUTH_CONN.with(|conn| {
        let mut conn = conn.borrow_mut();
        if conn.is_none() {
            *conn = Some(TRUTH.get().expect("the truth client").get_connection()?);
        }
        cmd.query(conn.as_mut().unwrap())
    })
}

async fn truth_async() -> redis::aio::MultiplexedConnection {
    TRUTH_ASYNC
        .get_or_init(|| async {
            TRUTH
                .get()
                .expect("the truth client")
                // No response timeout: a worker stopped and continued would time out the
                // request it was waiting for (and an INCR that ran must not run twice).
                .get_multiplexed_async_connection_with_config(
                    &redis::AsyncConnectionConfig::new().set_response_timeout(None),
                )
                .await
                .expect("the truth server is never faulted")
        })
        .await
        .clone()
}

async fn truth_get_async(key: u32) -> u64 {
    let version: Option<u64> = redis::cmd("GET")
        .arg(truth_key(key))
        .query_async(&mut truth_async().await)
        .await
        .expect("the truth server is never faulted");
    version.unwrap_or(0)
}

/// The read-through function of the sync side: the key and its version in the truth.
#[cached(name = "drill")]
fn load(key: u32) -> (u32, u64) {
    (key, truth_get(key))
}

/// The read-through function of the async side.
#[cached(name = "drill")]
async fn load_async(key: u32) -> (u32, u64) {
    (key, truth_get_async(key).await)
}

/// One logged operation, one line: `<kind> <process> <side> <key> <got> <version> <start> <end>`.
/// Kinds: `R` a read (`got` the key it returned), `W` an acknowledged update, `U` an update
/// never acknowledged, `C` a clear (`got` 1 when it succeeded), `E` a `get` that returned an
/// error (the reader then reads the truth, logged as a read of its own).
struct Log {
    out: BufWriter<File>,
    process: usize,
    side: char,
}

impl Log {
    fn open(path: &Path, process: usize, side: char) -> Log {
        Log {
            out: BufWriter::new(File::create(path).unwrap()),
            process,
            side,
        }
    }

    fn op(&mut self, kind: char, key: u32, got: u32, version: u64, start: u64, end: u64) {
        let _ = writeln!(
            self.out,
            "{kind} {} {} {key} {got} {version} {start} {end}",
            self.process, self.side
        );
    }
}

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// What one loop does next.
enum Next {
    Read(u32),
    Update(u32),
    Clear,
}

/// The loop's next operation: mostly reads, an update in eight, a clear in a thousand; an
/// update of a written-through key only by its owner.
fn next(rng: &mut fastrand::Rng, own: &[u32], read_through: std::ops::Range<u32>) -> Next {
    match rng.u32(0..1000) {
        0 => Next::Clear,
        1..=124 => match rng.bool() {
            true if !own.is_empty() => Next::Update(own[rng.usize(0..own.len())]),
            _ => Next::Update(rng.u32(read_through)),
        },
        _ => match rng.bool() {
            true => Next::Read(rng.u32(read_through)),
            false => Next::Read(rng.u32(WRITTEN_KEYS)),
        },
    }
}

/// The written-through keys loop `global` (of `loops`) owns.
fn owned(global: usize, loops: usize) -> Vec<u32> {
    WRITTEN_KEYS.filter(|key| (*key as usize) % loops == global).collect()
}

/// Retries `attempt` every 20 ms until it succeeds or `deadline` (a `now()` reading) passes;
/// returns whether it succeeded.
fn until_done(deadline: u64, mut attempt: impl FnMut() -> bool) -> bool {
    loop {
        if attempt() {
            return true;
        }
        if now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sync_loop(spec: &WorkerSpec, global: usize, end: u64, handle: &CacheHandle, mut log: Log) {
    let mut rng = fastrand::Rng::with_seed(spec.seed ^ (global as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let own = owned(global, spec.workers * LOOPS);
    while now() < end {
        let start = now();
        match next(&mut rng, &own, SYNC_KEYS) {
            Next::Read(key) if SYNC_KEYS.contains(&key) => {
                let (got, version) = load(key);
                log.op('R', key, got, version, start, now());
            }
            Next::Read(key) => match handle.get::<_, (u32, u64)>(&key) {
                Ok(Some((got, version))) => log.op('R', key, got, version, start, now()),
                Ok(None) => log.op('R', key, key, truth_get(key), start, now()),
                Err(_) => {
                    log.op('E', key, 0, 0, start, now());
                    log.op('R', key, key, truth_get(key), start, now());
                }
            },
            Next::Update(key) => {
                let version: u64 = truth_query(redis::cmd("INCR").arg(truth_key(key))).unwrap();
                let done = if SYNC_KEYS.contains(&key) {
                    until_done(end, || load_invalidate(key).is_ok())
                } else {
                    until_done(end, || handle.set(&key, &(key, version)).is_ok())
                };
                log.op(if done { 'W' } else { 'U' }, key, key, version, start, now());
            }
            Next::Clear => {
                let cleared = handle.clear().is_ok();
                log.op('C', 0, u32::from(cleared), 0, start, now());
            }
        }
        std::thread::sleep(Duration::from_micros(rng.u64(0..2000)));
    }
}

async fn async_loop(spec: Arc<WorkerSpec>, global: usize, end: u64, handle: CacheHandle, mut log: Log) {
    let mut rng = fastrand::Rng::with_seed(spec.seed ^ (global as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let own = owned(global, spec.workers * LOOPS);
    while now() < end {
        let start = now();
        match next(&mut rng, &own, ASYNC_KEYS) {
            Next::Read(key) if ASYNC_KEYS.contains(&key) => {
                let (got, version) = load_async(key).await;
                log.op('R', key, got, version, start, now());
            }
            Next::Read(key) => match handle.get_async::<_, (u32, u64)>(&key).await {
                Ok(Some((got, version))) => log.op('R', key, got, version, start, now()),
                Ok(None) => log.op('R', key, key, truth_get_async(key).await, start, now()),
                Err(_) => {
                    log.op('E', key, 0, 0, start, now());
                    log.op('R', key, key, truth_get_async(key).await, start, now());
                }
            },
            Next::Update(key) => {
                let version: u64 = redis::cmd("INCR")
                    .arg(truth_key(key))
                    .query_async(&mut truth_async().await)
                    .await
                    .unwrap();
                let mut done = false;
                while !done && now() < end {
                    done = if ASYNC_KEYS.contains(&key) {
                        load_async_invalidate(key).await.is_ok()
                    } else {
                        handle.set_async(&key, &(key, version)).await.is_ok()
                    };
                    if !done {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                log.op(if done { 'W' } else { 'U' }, key, key, version, start, now());
            }
            Next::Clear => {
                let cleared = handle.clear_async().await.is_ok();
                log.op('C', 0, u32::from(cleared), 0, start, now());
            }
        }
        tokio::time::sleep(Duration::from_micros(rng.u64(0..2000))).await;
    }
}

/// Runs this process as a drill worker when it was started as one; returns whether it was.
/// Call first thing in the test (or `main`) the harness starts workers of.
pub fn as_worker() -> bool {
    let Ok(line) = std::env::var(WORKER_ENV) else {
        return false;
    };
    work(Arc::new(WorkerSpec::decode(&line)));
    true
}

fn work(spec: Arc<WorkerSpec>) {
    TRUTH.set(redis::Client::open(spec.truth.as_str()).unwrap()).unwrap();
    let local = LocalConfig::new(spec.local_ttl).max_entries(10_000);
    let cache = match spec.topology {
        Topology::File => CacheConfig::file(&spec.target),
        _ => CacheConfig::redis(&spec.target).timeout(TIMEOUT),
    };
    cachex::init_with(
        Config::new().cache(
            CACHE,
            cache
                .ttl(Duration::from_secs(600))
                .lock_timeout(Duration::from_secs(2))
                .local(local),
        ),
    )
    .expect("the drill's configuration");
    let handle = cachex::cache(CACHE).unwrap();
    let started = now();
    let end = started + spec.seconds * 1_000_000_000;
    let log = |n: usize, side: char| Log::open(&spec.log.with_extension(format!("{n}.log")), spec.id, side);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let warm = Arc::new(Mutex::new(0));
    std::thread::scope(|scope| {
        for n in 0..LOOPS / 2 {
            let (spec, handle, log) = (&spec, &handle, log(n, 's'));
            scope.spawn(move || sync_loop(spec, spec.id * LOOPS + n, end, handle, log));
        }
        let tasks: Vec<_> = (LOOPS / 2..LOOPS)
            .map(|n| {
                runtime.spawn(async_loop(
                    Arc::clone(&spec),
                    spec.id * LOOPS + n,
                    end,
                    handle.clone(),
                    log(n, 'a'),
                ))
            })
            .collect();
        let warm = Arc::clone(&warm);
        scope.spawn(move || {
            std::thread::sleep(WARM_UP);
            *warm.lock().unwrap() = rss();
        });
        runtime.block_on(async {
            for task in tasks {
                task.await.expect("an async loop panicked");
            }
        });
    });
    let warm = *warm.lock().unwrap();
    let mut memory = File::create(spec.log.with_extension("rss")).unwrap();
    writeln!(memory, "{warm} {}", rss()).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The harness and its fault driver.

/// The faults the driver injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// `kill -9` of the cache's server (a cluster's node), restarted on the same port.
    Kill,
    /// `CLIENT KILL TYPE pubsub`: the invalidation subscribers' connections.
    KillSubscribers,
    /// `CLIENT PAUSE` (all commands) for 0.5-2 s.
    Pause,
    /// Every reply through the proxy delayed by 100-400 ms, for 1-2 s.
    DelayReplies,
    /// Every reply through the proxy thrown away, for 0.5-1.5 s.
    DropReplies,
    /// `SIGSTOP` of one worker for 1-3 s, then `SIGCONT`.
    StopWorker,
}

impl Fault {
    fn available(topology: Topology) -> &'static [Fault] {
        match topology {
            Topology::Standalone => &[
                Fault::Kill,
                Fault::KillSubscribers,
                Fault::Pause,
                Fault::DelayReplies,
                Fault::DropReplies,
                Fault::StopWorker,
            ],
            Topology::Cluster => &[Fault::Kill, Fault::KillSubscribers, Fault::Pause, Fault::StopWorker],
            Topology::File => &[Fault::StopWorker],
        }
    }
}

/// One fault as injected: its kind and when it lasted.
#[derive(Debug, Clone, Copy)]
struct Injected {
    fault: Fault,
    start: u64,
    end: u64,
}

/// The shared cache of a run.
enum Store {
    Standalone { server: RedisServer, proxy: Proxy },
    Cluster(RedisCluster),
    File(PathBuf),
}

impl Store {
    fn start(topology: Topology) -> Store {
        match topology {
            Topology::Standalone => {
                let server = RedisServer::start();
                let proxy = Proxy::start(server.port);
                Store::Standalone { server, proxy }
            }
            Topology::Cluster => Store::Cluster(RedisCluster::start()),
            Topology::File => Store::File(scratch_dir("drill-file-")),
        }
    }

    fn target(&self) -> String {
        match self {
            Store::Standalone { proxy, .. } => format!("redis://127.0.0.1:{}/0", proxy.port()),
            Store::Cluster(cluster) => cluster.url(),
            Store::File(dir) => dir.display().to_string(),
        }
    }

    /// Plain connections to each server (not through the proxy).
    fn servers(&self) -> Vec<u16> {
        match self {
            Store::Standalone { server, .. } => vec![server.port],
            Store::Cluster(cluster) => cluster.ports.clone(),
            Store::File(_) => Vec::new(),
        }
    }

    fn command(&self, port: u16, command: &redis::Cmd) {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        if let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) {
            let _ = command.query::<redis::Value>(&mut conn);
        }
    }

    /// Injects `fault` and waits for it to end.
    fn inject(&mut self, fault: Fault, rng: &mut fastrand::Rng, workers: &[Child]) {
        let millis = |range: std::ops::Range<u64>, rng: &mut fastrand::Rng| Duration::from_millis(rng.u64(range));
        let ports = self.servers();
        match fault {
            Fault::Kill => {
                let down = millis(200..800, rng);
                match self {
                    Store::Standalone { server, .. } => {
                        server.kill();
                        std::thread::sleep(down);
                        server.restart();
                    }
                    Store::Cluster(cluster) => cluster.restart_node(rng.usize(0..cluster.ports.len()), down),
                    Store::File(_) => {}
                }
            }
            Fault::KillSubscribers => {
                for port in ports {
                    self.command(port, redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"));
                }
            }
            Fault::Pause => {
                let pause = millis(500..2000, rng);
                let port = ports[rng.usize(0..ports.len())];
                self.command(
                    port,
                    redis::cmd("CLIENT")
                        .arg("PAUSE")
                        .arg(pause.as_millis() as u64)
                        .arg("ALL"),
                );
                std::thread::sleep(pause);
            }
            Fault::DelayReplies | Fault::DropReplies => {
                if let Store::Standalone { proxy, .. } = self {
                    if fault == Fault::DelayReplies {
                        proxy.delay_replies(millis(100..400, rng));
                        std::thread::sleep(millis(1000..2000, rng));
                        proxy.delay_replies(Duration::ZERO);
                    } else {
                        proxy.drop_replies(true);
                        std::thread::sleep(millis(500..1500, rng));
                        proxy.drop_replies(false);
                    }
                }
            }
            Fault::StopWorker => {
                let pid = workers[rng.usize(0..workers.len())].id() as libc::pid_t;
                // SAFETY: kill(2) on a child this process spawned and has not reaped.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
                std::thread::sleep(millis(1000..3000, rng));
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGCONT) };
            }
        }
    }
}

/// Runs the drill of `plan`; `worker` gives the command that starts this binary again as a
/// worker (the harness adds its environment), and the checker's report is returned.
pub fn run(plan: &Plan, worker: impl Fn() -> Command) -> Report {
    let truth = RedisServer::start();
    let mut store = Store::start(plan.topology);
    let logs = scratch_dir("drill-logs-");
    let started = now();
    let mut workers: Vec<Child> = (0..plan.workers)
        .map(|id| {
            let spec = WorkerSpec {
                id,
                topology: plan.topology,
                target: store.target(),
                truth: truth.url(),
                seconds: plan.seconds,
                seed: plan.seed,
                workers: plan.workers,
                local_ttl: plan.local_ttl,
                log: logs.join(format!("worker-{id}")),
            };
            worker()
                .env(WORKER_ENV, spec.encode())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("a drill worker")
        })
        .collect();
    let mut injected = Vec::new();
    if plan.faults {
        let mut rng = fastrand::Rng::with_seed(plan.seed);
        let kinds = Fault::available(plan.topology);
        // Every kind once, in a random order, then at random.
        let mut first: Vec<Fault> = kinds.to_vec();
        rng.shuffle(&mut first);
        let quiet_from = started + plan.seconds * 1_000_000_000 - QUIET_END.as_nanos() as u64;
        std::thread::sleep(WARM_UP);
        loop {
            std::thread::sleep(Duration::from_millis(rng.u64(300..1500)));
            if now() >= quiet_from {
                break;
            }
            let fault = first.pop().unwrap_or_else(|| kinds[rng.usize(0..kinds.len())]);
            let start = now();
            store.inject(fault, &mut rng, &workers);
            injected.push(Injected {
                fault,
                start,
                end: now(),
            });
        }
    }
    let failed: Vec<(usize, std::process::ExitStatus)> = (0..workers.len())
        .map(|id| (id, workers[id].wait().unwrap()))
        .filter(|(_, status)| !status.success())
        .collect();
    let mut report = check(plan, &logs, &injected);
    report.seconds = (now() - started) as f64 / 1e9;
    for (id, status) in failed {
        report.violations.push(format!("worker {id} failed: {status}"));
    }
    drop(store);
    report
}

// ---------------------------------------------------------------------------------------------
// The checker.

/// What the checker found over a run's history.
#[derive(Debug, Default)]
pub struct Report {
    pub topology: &'static str,
    pub seed: u64,
    pub seconds: f64,
    pub reads: u64,
    pub updates: u64,
    pub unacknowledged: u64,
    pub clears: u64,
    /// `get`s that returned the backend's error (their readers read the truth instead). A
    /// `#[cached]` call has no error to return under `on_error = "bypass"`: one that failed
    /// would fail its worker, a violation.
    pub get_errors: u64,
    pub faults: BTreeMap<String, u64>,
    /// Reads that returned an older version than one acknowledged before they began.
    pub stale_reads: u64,
    /// Of those reads: how long after the newer version's acknowledgement each began (ns).
    pub staleness: Vec<u64>,
    /// The longest staleness seen after each kind of fault (within 5 s of its end), and
    /// with no fault before (`none`), in ns.
    pub staleness_by_fault: BTreeMap<String, u64>,
    /// Each worker's RSS after warm-up and at the end, in bytes.
    pub rss: Vec<(u64, u64)>,
    pub violations: Vec<String>,
}

impl Report {
    pub fn operations(&self) -> u64 {
        self.reads + self.updates + self.unacknowledged + self.clears
    }

    fn quantile(&self, q: f64) -> f64 {
        if self.staleness.is_empty() {
            return 0.0;
        }
        let mut sorted = self.staleness.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() - 1) as f64 * q).round() as usize;
        sorted[index] as f64 / 1e6
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "fleet drill: {} topology, seed {}, {:.0} s",
            self.topology, self.seed, self.seconds
        )?;
        writeln!(
            f,
            "operations: {} ({:.0}/s): {} reads, {} acknowledged updates, {} never acknowledged, {} clears",
            self.operations(),
            self.operations() as f64 / self.seconds.max(1e-9),
            self.reads,
            self.updates,
            self.unacknowledged,
            self.clears
        )?;
        writeln!(f, "faults: {:?}", self.faults)?;
        writeln!(
            f,
            "stale reads: {} (of {}); staleness after the newer write's acknowledgement: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.stale_reads,
            self.reads,
            self.quantile(0.5),
            self.quantile(0.99),
            self.quantile(1.0)
        )?;
        let by_fault: BTreeMap<_, _> = self
            .staleness_by_fault
            .iter()
            .map(|(fault, nanos)| (fault, format!("{:.1} ms", *nanos as f64 / 1e6)))
            .collect();
        writeln!(f, "longest staleness by the fault before it: {by_fault:?}")?;
        writeln!(
            f,
            "errors returned by get (read from the truth instead): {}",
            self.get_errors
        )?;
        let rss: Vec<String> = self
            .rss
            .iter()
            .map(|(warm, end)| format!("{:.1} -> {:.1} MiB", *warm as f64 / 1048576.0, *end as f64 / 1048576.0))
            .collect();
        writeln!(f, "worker RSS (after warm-up -> end): {}", rss.join(", "))?;
        writeln!(f, "violations: {}", self.violations.len())?;
        for violation in self.violations.iter().take(20) {
            writeln!(f, "  {violation}")?;
        }
        Ok(())
    }
}

/// One line of a log.
struct Line {
    kind: char,
    process: usize,
    side: char,
    key: u32,
    got: u32,
    version: u64,
    start: u64,
    end: u64,
}

fn lines(logs: &Path) -> impl Iterator<Item = Line> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(logs)
        .unwrap()
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    files.into_iter().flat_map(|path| {
        BufReader::new(File::open(path).unwrap())
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                (f.len() == 8).then(|| Line {
                    kind: f[0].chars().next().unwrap_or('?'),
                    process: f[1].parse().unwrap_or(0),
                    side: f[2].chars().next().unwrap_or('?'),
                    key: f[3].parse().unwrap_or(0),
                    got: f[4].parse().unwrap_or(0),
                    version: f[5].parse().unwrap_or(0),
                    start: f[6].parse().unwrap_or(0),
                    end: f[7].parse().unwrap_or(0),
                })
            })
    })
}

/// An update as the checker needs it: when it began and when it was acknowledged.
#[derive(Clone, Copy)]
struct Update {
    start: u64,
    acknowledged: u64,
}

fn check(plan: &Plan, logs: &Path, injected: &[Injected]) -> Report {
    let mut report = Report {
        topology: plan.topology.name(),
        seed: plan.seed,
        ..Report::default()
    };
    for fault in injected {
        *report.faults.entry(format!("{:?}", fault.fault)).or_default() += 1;
    }
    // Pass one: the updates of each key, by version (INCR hands out 1, 2, 3, ...).
    let mut updates: BTreeMap<u32, Vec<Option<Update>>> = BTreeMap::new();
    for line in lines(logs).filter(|line| matches!(line.kind, 'W' | 'U')) {
        let versions = updates.entry(line.key).or_default();
        let index = line.version as usize;
        if versions.len() <= index {
            versions.resize(index + 1, None);
        }
        versions[index] = Some(Update {
            start: line.start,
            acknowledged: if line.kind == 'W' { line.end } else { u64::MAX },
        });
        if line.kind == 'W' {
            report.updates += 1;
        } else {
            report.unacknowledged += 1;
        }
    }
    // The earliest acknowledgement of any version above each version: a read of version v
    // that began after it read a value older than one acknowledged.
    let earliest_newer: BTreeMap<u32, Vec<u64>> = updates
        .iter()
        .map(|(key, versions)| {
            let mut earliest = vec![u64::MAX; versions.len() + 1];
            for version in (0..versions.len()).rev() {
                let acknowledged = versions[version].map_or(u64::MAX, |update| update.acknowledged);
                earliest[version] = earliest[version + 1].min(acknowledged);
            }
            (*key, earliest)
        })
        .collect();
    let bound = plan.bound.as_nanos() as u64;
    for line in lines(logs) {
        match line.kind {
            'C' => report.clears += 1,
            'E' => report.get_errors += 1,
            'R' => {
                report.reads += 1;
                let versions = updates.get(&line.key).map(Vec::as_slice).unwrap_or(&[]);
                let written = line.version == 0
                    || versions
                        .get(line.version as usize)
                        .copied()
                        .flatten()
                        .is_some_and(|update| update.start <= line.end);
                if line.got != line.key || !written {
                    report.violations.push(format!(
                        "worker {} ({}) read key {} and got key {} version {}, which was never written before the read ended",
                        line.process, line.side, line.key, line.got, line.version
                    ));
                    continue;
                }
                let newer = earliest_newer
                    .get(&line.key)
                    .and_then(|earliest| earliest.get(line.version as usize + 1).copied())
                    .unwrap_or(u64::MAX);
                if newer >= line.start {
                    continue;
                }
                let staleness = line.start - newer;
                report.stale_reads += 1;
                report.staleness.push(staleness);
                let before = injected
                    .iter()
                    .rev()
                    .find(|fault| fault.start <= line.start && line.start <= fault.end + 5_000_000_000)
                    .map_or("none".to_owned(), |fault| format!("{:?}", fault.fault));
                let longest = report.staleness_by_fault.entry(before.clone()).or_default();
                *longest = (*longest).max(staleness);
                if staleness > bound {
                    report.violations.push(format!(
                        "worker {} ({}) read key {} version {} at {}, {:.1} ms after a newer version's acknowledgement (fault before: {before})",
                        line.process,
                        line.side,
                        line.key,
                        line.version,
                        line.start,
                        staleness as f64 / 1e6
                    ));
                }
            }
            _ => {}
        }
    }
    for id in 0..plan.workers {
        let path = logs.join(format!("worker-{id}.rss"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let numbers: Vec<u64> = text.split_whitespace().filter_map(|n| n.parse().ok()).collect();
        match numbers[..] {
            [warm, end] => {
                report.rss.push((warm, end));
                if end > 2 * warm {
                    report
                        .violations
                        .push(format!("worker {id}'s RSS grew from {warm} to {end} bytes"));
                }
            }
            _ => report.violations.push(format!("worker {id} left no RSS figures")),
        }
    }
    report
}
