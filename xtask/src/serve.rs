//! The static file server for the built web demo: GET and HEAD, on 127.0.0.1 only, for
//! `cargo xtask demo` and the page's browser tests and measurements.

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

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
}
