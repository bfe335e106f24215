//! What one Machine runs besides its image: its processes and its files (Fly's Machine
//! config `processes` and `files`), as the desired and the observed state hold them.
//!
//! A file's content is never part of a resource's serialized form: plans, saved plans
//! and state documents carry its digest and size ([`FileContent`]), the bytes live only
//! in memory between reading the spec (or its `local_file`) and sending the config.
//! `secret_name` files name an app secret; Fly writes its value into the file.

use std::sync::Arc;

use super::StrMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A Machine's processes and files, each `None` when the spec does not declare it (then
/// it is not managed: not compared, and sent back as the Machine has it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineRun {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<Process>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<MachineFile>>,
}

impl MachineRun {
    pub fn is_empty(&self) -> bool {
        self.processes.is_none() && self.files.is_none()
    }
}

/// One process of a Machine (Fly's `config.processes[]`). Empty fields are unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    #[serde(default, skip_serializing_if = "StrMap::is_empty")]
    pub env: StrMap,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<String>,
}

/// One file written into a Machine (Fly's `config.files[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineFile {
    pub guest_path: String,
    #[serde(flatten)]
    pub source: FileSource,
}

/// Where a file's content comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    /// Content sent with the config (`raw_value` in the spec, or a `local_file` read
    /// from the spec's tree; both go to Fly as `raw_value`).
    Content(FileContent),
    /// An app secret Fly writes into the file.
    SecretName(String),
}

/// A file's content as resources carry it: its digest and size, and, in memory only,
/// its bytes. Equality is that of the digest and size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileContent {
    /// The `local_file` reference it is read from (`None`: the spec's `raw_value`, or
    /// an observed file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_file: Option<String>,
    /// `sha256:` and the first 16 hex digits of the content's SHA-256; empty while a
    /// `local_file` has not been read.
    pub digest: String,
    pub size: u64,
    /// Never serialized: a saved plan or a state document holds no content.
    #[serde(skip)]
    pub bytes: Option<Arc<[u8]>>,
}

impl PartialEq for FileContent {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest && self.size == other.size
    }
}
impl Eq for FileContent {}

impl FileContent {
    /// Content known now (a `raw_value`, a file just read, an observed value).
    pub fn of(bytes: &[u8], local_file: Option<String>) -> FileContent {
        FileContent {
            local_file,
            digest: content_digest(bytes),
            size: bytes.len() as u64,
            bytes: Some(Arc::from(bytes)),
        }
    }

    /// A `local_file` not read yet (the spec's expansion does no I/O).
    pub fn unread(reference: &str) -> FileContent {
        FileContent {
            local_file: Some(reference.to_string()),
            digest: String::new(),
            size: 0,
            bytes: None,
        }
    }

    /// What a plan shows of it: digest and size, never the content.
    pub fn shown(&self) -> String {
        format!("{} ({} bytes)", self.digest, self.size)
    }
}

/// `sha256:` and the first 16 hex digits of the SHA-256 of `bytes`.
pub fn content_digest(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    format!("sha256:{}", hex::encode(&d[..8]))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (Fly's `raw_value`).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional, whitespace ignored); `None` when it is not.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|x| *x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("hello\nworld", "aGVsbG8Kd29ybGQ="),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
        assert_eq!(base64_decode("not*base64"), None);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)).unwrap(), all);
    }

    #[test]
    fn content_serializes_without_its_bytes() {
        let f = MachineFile {
            guest_path: "/etc/app.conf".into(),
            source: FileSource::Content(FileContent::of(b"secret-ish text", None)),
        };
        let json = serde_json::to_string(&f).unwrap();
        assert!(!json.contains("secret-ish"), "{json}");
        assert!(json.contains("\"digest\":\"sha256:"), "{json}");
        let back: MachineFile = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
        let FileSource::Content(c) = back.source else {
            panic!("content")
        };
        assert!(c.bytes.is_none());
        let s = MachineFile {
            guest_path: "/k".into(),
            source: FileSource::SecretName("TLS_KEY".into()),
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"guest_path":"/k","secret_name":"TLS_KEY"}"#);
    }
}
